"""Reasons (issue 11): why each pass was issued, revoked or requested, and the ticket number it names.

- audit_events.reason: the reason the requester gave for the action the row records ('' when none was given).
- audit_events.pass_method_id gets an index: `/tap status` finds the reason the current pass was issued with.
- approval_requests.request_reason: the requester's reason, carried through to the pass an approval issues (the
  existing `reason` column says why the request needs an approval).
- bulk_jobs.reason: one reason for the whole file (the text of the message the file came with).
- bulk_rows.request_reason: the row's own reason (a `reason` column in the file), else the file's (the existing
  `reason` column says why a row was refused or failed).

Existing rows get '' (no reason was asked for before this revision). Columns are added in place (no table is
rebuilt), so the audit table's append-only triggers stay as they are.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("audit_events", "reason"),
    ("approval_requests", "request_reason"),
    ("bulk_jobs", "reason"),
    ("bulk_rows", "request_reason"),
)


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.add_column(table, sa.Column(column, sa.Text(), nullable=False, server_default=sa.text("''")))
    op.create_index("ix_audit_events_pass_method_id", "audit_events", ["pass_method_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_pass_method_id", table_name="audit_events")
    for table, column in reversed(_COLUMNS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
