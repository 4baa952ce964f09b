"""Verification of the person before a pass (issue 12 item 1): the verifications a pass waits for, the cards that
ask people to attest, and the evidence on each audit row.

- verifications: one per pass waiting for a verification of its user (manager attestation, Verified ID). Holds the
  request it was made for (replayed when it succeeds), who may answer, its state (pending, confirmed, refused,
  failed, expired, cancelled, used), the evidence (who or what confirmed, when, a score) and the technician's
  tracking card. Never a pass value: a pass is created only once the verification is consumed.
- verification_prompts: the cards that ask a manager (or a fallback approver) "Is this really <user>?", so they can
  be updated in place when the verification settles.
- audit_events.verification_id / evidence_*: the evidence behind each pass issued after a verification (method,
  who confirmed, when, score). Added in place (nullable), so the append-only triggers stay as they are.
- approval_requests.verification_id: the verification a request waiting for approval was opened with (bound to it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIT_COLUMNS = (
    sa.Column("verification_id", sa.String(36), nullable=True),
    sa.Column("evidence_method", sa.String(32), nullable=True),
    sa.Column("evidence_by_id", sa.String(128), nullable=True),
    sa.Column("evidence_by", sa.String(300), nullable=True),
    sa.Column("evidence_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("evidence_score", sa.Float(), nullable=True),
)


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requester_id", sa.String(64), nullable=False),
        sa.Column("requester_tenant_id", sa.String(64), nullable=False),
        sa.Column("requester_name", sa.String(256), nullable=False),
        sa.Column("requester_channel_account_id", sa.String(200), nullable=False),
        sa.Column("requester_service_url", sa.String(500), nullable=False),
        sa.Column("bot_id", sa.String(200), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("target_label", sa.String(600), nullable=False),
        sa.Column("lifetime_minutes", sa.Integer(), nullable=True),
        sa.Column("one_time", sa.Boolean(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replace", sa.Boolean(), nullable=False),
        sa.Column("replace_method_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("attester_ids", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("attester_label", sa.String(600), nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_by_id", sa.String(128), nullable=True),
        sa.Column("settled_by", sa.String(300), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=sa.text("''")),
        sa.Column("progress", sa.String(32), nullable=True),
        sa.Column("external_ref", sa.String(128), nullable=True),
        sa.Column("external_url", sa.Text(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_for", sa.String(64), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("card_service_url", sa.String(500), nullable=True),
        sa.Column("card_conversation_id", sa.String(500), nullable=True),
        sa.Column("card_activity_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_verifications_state_expires", "verifications", ["state", "expires_at"])
    op.create_index("ix_verifications_external_ref", "verifications", ["external_ref"], unique=True)
    op.create_table(
        "verification_prompts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("verification_id", sa.String(36), nullable=False, index=True),
        sa.Column("attester_id", sa.String(64), nullable=False),
        sa.Column("service_url", sa.String(500), nullable=False),
        sa.Column("conversation_id", sa.String(500), nullable=False),
        sa.Column("activity_id", sa.String(200), nullable=True),
    )
    for column in _AUDIT_COLUMNS:
        op.add_column("audit_events", column)
    op.add_column("approval_requests", sa.Column("verification_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("verification_id")
    for column in reversed(_AUDIT_COLUMNS):
        with op.batch_alter_table("audit_events") as batch:
            batch.drop_column(column.name)
    op.drop_table("verification_prompts")
    op.drop_index("ix_verifications_external_ref", table_name="verifications")
    op.drop_index("ix_verifications_state_expires", table_name="verifications")
    op.drop_table("verifications")
