"""Security alerts (issue 12 item 3): the channel each tenant's operators made the security channel.

- security_channels: one row per tenant, written by `/tap alerts here` (who registered it, when). Alerts themselves
  are audit rows (action "alert"), and the velocity limit counts issued passes from the audit rows, so neither needs
  a table of its own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "security_channels",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("conversation_id", sa.String(length=500), nullable=False),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("security_channels")
