"""Follow-through (issue 12 item 4): every live pass the bot issued, watched until it ends.

- pass_watches: one row per pass the bot issued (enrolled from pass_cards), with when the user's methods were last
  read, the strong methods already seen at the first read, a lease (holder, until) so one replica checks or notifies
  at a time, and the notice for the requester with when it was delivered (never the pass).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pass_watches",
        sa.Column("pass_method_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("target_label", sa.String(length=600), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("conversation_id", sa.String(length=500), nullable=False),
        sa.Column("one_time", sa.Boolean(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("known_method_ids", sa.Text(), nullable=True),
        sa.Column("seen_used", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("lease_holder", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pass_method_id"),
    )
    op.create_index("ix_pass_watches_due", "pass_watches", ["state", "checked_at"])
    op.create_index("ix_pass_watches_notice", "pass_watches", ["notified_at"])


def downgrade() -> None:
    op.drop_index("ix_pass_watches_notice", table_name="pass_watches")
    op.drop_index("ix_pass_watches_due", table_name="pass_watches")
    op.drop_table("pass_watches")
