"""Delegated writes (issue 14): how the token service knows each person, and the actions waiting for a sign-in.

- sign_in_users: a person's object id -> their channel account id and channel, which the token service's GetToken
  needs to give the bot that person's Graph token outside their own turn (a bulk run, a confirmed verification).
- sign_in_waits: one row per (person, kind, ref) paused until they sign in; expires, and is consumed once.

Neither table has a column that could hold a token.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_users",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("channel_user_id", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "sign_in_waits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("ref_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_sign_in_waits_action", "sign_in_waits", ["user_id", "kind", "ref_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_sign_in_waits_action", table_name="sign_in_waits")
    op.drop_table("sign_in_waits")
    op.drop_table("sign_in_users")
