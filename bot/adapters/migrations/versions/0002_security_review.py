"""The security review's schema: the requester's time zone on approval requests, and per-target locks.

- approval_requests.timezone: the requester's Teams time zone when they asked, so a pass delivered after an approval
  shows its times as the requester reads them (NULL for requests made before this revision: the bot's default).
- target_locks: one row per user a pass is being checked-and-created for, so two operators (or a double click, or
  two replicas) never create two passes for one user at once; a lock whose holder died runs out at expires_at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    op.create_table(
        "target_locks",
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target_id"),
    )


def downgrade() -> None:
    op.drop_table("target_locks")
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("timezone")
