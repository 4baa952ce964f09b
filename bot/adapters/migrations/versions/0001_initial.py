"""The initial schema: every table of bot/adapters/store.py as of the first migration, and audit_events append-only.

The append-only protection: SQLite triggers that abort UPDATE and DELETE; on PostgreSQL a trigger function that
raises, fired before UPDATE or DELETE of any row and before TRUNCATE.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_MESSAGE = "audit_events is append-only"


def append_only_statements(dialect: str) -> list[str]:
    """The statements that make audit_events append-only; each can run again (the adoption of an old database)."""
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            for verb in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END $$",
            "DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events",
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
            "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
        ]
    raise NotImplementedError(f"tapbot keeps its state in SQLite or PostgreSQL, not {dialect}")


def _drop_append_only_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return ["DROP TRIGGER IF EXISTS audit_events_no_update", "DROP TRIGGER IF EXISTS audit_events_no_delete"]
    return [
        "DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events",
        "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
        "DROP FUNCTION IF EXISTS audit_events_append_only()",
    ]


def schema() -> sa.MetaData:
    """The tables as this revision creates them (also used to adopt a database made before migrations)."""
    metadata = sa.MetaData()
    sa.Table(
        "approval_requests",
        metadata,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("requester_tenant_id", sa.String(length=64), nullable=False),
        sa.Column("requester_name", sa.String(length=256), nullable=False),
        sa.Column("requester_channel_account_id", sa.String(length=200), nullable=False),
        sa.Column("requester_service_url", sa.String(length=500), nullable=False),
        sa.Column("bot_id", sa.String(length=200), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("target_label", sa.String(length=600), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifetime_minutes", sa.Integer(), nullable=False),
        sa.Column("one_time", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.String(length=64), nullable=True),
        sa.Column("decided_by_name", sa.String(length=256), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("card_service_url", sa.String(length=500), nullable=True),
        sa.Column("card_conversation_id", sa.String(length=500), nullable=True),
        sa.Column("card_activity_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_approval_requests_expires_at", "expires_at"),
        sa.Index("ix_approval_requests_requester_id", "requester_id"),
        sa.Index("ix_approval_requests_status", "status"),
    )
    sa.Table(
        "approvals_channels",
        metadata,
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("conversation_id", sa.String(length=500), nullable=False),
        sa.Column("registered_by", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    sa.Table(
        "audit_events",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=256), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("target_upn", sa.String(length=320), nullable=True),
        sa.Column("lifetime_minutes", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("one_time", sa.Boolean(), nullable=True),
        sa.Column("pass_method_id", sa.String(length=64), nullable=True),
        sa.Column("graph_request_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_audit_events_actor_id", "actor_id"),
        sa.Index("ix_audit_events_at", "at"),
        sa.Index("ix_audit_events_target_id", "target_id"),
    )
    sa.Table(
        "bulk_jobs",
        metadata,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("requester_tenant_id", sa.String(length=64), nullable=False),
        sa.Column("requester_name", sa.String(length=256), nullable=False),
        sa.Column("requester_channel_account_id", sa.String(length=200), nullable=False),
        sa.Column("requester_service_url", sa.String(length=500), nullable=False),
        sa.Column("bot_id", sa.String(length=200), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replace_existing", sa.Boolean(), nullable=False),
        sa.Column("source_job_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress_conversation_id", sa.String(length=500), nullable=True),
        sa.Column("progress_activity_id", sa.String(length=200), nullable=True),
        sa.Column("progress_service_url", sa.String(length=500), nullable=True),
        sa.Column("approval_request_id", sa.String(length=36), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_bulk_jobs_status", "status"),
    )
    sa.Table(
        "bulk_rows",
        metadata,
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=400), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("user_label", sa.String(length=600), nullable=True),
        sa.Column("lifetime_minutes", sa.Integer(), nullable=True),
        sa.Column("one_time", sa.Boolean(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("pass_method_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "line"),
        sa.Index("ix_bulk_rows_state", "job_id", "state"),
    )
    sa.Table(
        "pass_cards",
        metadata,
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("target_label", sa.String(length=600), nullable=False),
        sa.Column("pass_method_id", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("one_time", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("conversation_id", sa.String(length=500), nullable=False),
        sa.Column("activity_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redaction_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_pass_cards_due", "redacted_at", "expires_at"),
        sa.Index("ix_pass_cards_pass_method_id", "pass_method_id"),
    )
    sa.Table(
        "personal_conversations",
        metadata,
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("service_url", sa.String(length=500), nullable=False),
        sa.Column("conversation_id", sa.String(length=500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    sa.Table(
        "processed_activities",
        metadata,
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        sa.Index("ix_processed_activities_at", "at"),
    )
    return metadata


def upgrade() -> None:
    for table in schema().sorted_tables:
        op.execute(CreateTable(table))
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            op.execute(CreateIndex(index))
    for statement in append_only_statements(op.get_context().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_append_only_statements(op.get_context().dialect.name):
        op.execute(statement)
    for table in reversed(schema().sorted_tables):
        op.drop_table(table.name)
