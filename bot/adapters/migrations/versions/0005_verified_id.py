"""Verified ID with Face Check (issue 12): the presentation requests the bot created, one per verification.

- verified_id_requests: the callback's correlation state (unique), the SHA-256 of the per-request api-key secret
  (never the secret, never a token), target and its user principal name, the authority and threshold asked for, the
  Request Service's requestId and link, and how it went (created, scanned, verified, failed, expired, cancelled),
  with the bot's own expiry (the service sends no callback when a request expires).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verified_id_requests",
        sa.Column("verification_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("target_upn", sa.String(length=320), nullable=False),
        sa.Column("authority", sa.Text(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("verification_id"),
        sa.UniqueConstraint("state"),
    )
    op.create_index("ix_verified_id_requests_expires_at", "verified_id_requests", ["expires_at"])
    op.create_index("ix_verified_id_requests_status", "verified_id_requests", ["status"])


def downgrade() -> None:
    op.drop_index("ix_verified_id_requests_status", table_name="verified_id_requests")
    op.drop_index("ix_verified_id_requests_expires_at", table_name="verified_id_requests")
    op.drop_table("verified_id_requests")
