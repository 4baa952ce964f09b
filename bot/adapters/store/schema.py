"""The tables (SQLAlchemy 2 models) of everything the bot keeps: audit log, pass cards, approvals, bulk journal,
personal conversations, processed activities, target locks.

The tables are made by the migrations in ``bot/adapters/migrations`` (``SqlStore.create_schema`` runs them at
start); a change to a model here needs a new revision there (``python -m bot.adapters.migrate --new "what
changed"``). No column can hold a pass value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain.model import Recipient


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always gives them back aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ClippedString(TypeDecorator[str]):
    """A VARCHAR(n) for text people or files supply (names, labels, typed targets): clipped to n characters.

    SQLite ignores a VARCHAR's length and PostgreSQL refuses a longer value, so without the clip a long display name
    or a mistyped 400-character user would fail the write (and the audit record) on PostgreSQL only. The clip also
    applies to the values compared with the column, so equality keeps working for clipped values.
    """

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        length: int | None = getattr(self.impl, "length", None)
        return value[:length] if value is not None and length is not None else value


class Base(DeclarativeBase):
    pass


class AuditRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    actor_name: Mapped[str] = mapped_column(ClippedString(256), default="")
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    target_upn: Mapped[str | None] = mapped_column(ClippedString(320))
    lifetime_minutes: Mapped[int | None] = mapped_column(Integer)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    one_time: Mapped[bool | None] = mapped_column(Boolean)
    pass_method_id: Mapped[str | None] = mapped_column(String(64), index=True)  # status reads a pass's reason (0003)
    graph_request_id: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))  # the requester's reason (0003)
    # The verification of the person, and its evidence on the row of the pass it was used for (0004).
    verification_id: Mapped[str | None] = mapped_column(String(36))
    evidence_method: Mapped[str | None] = mapped_column(String(32))
    evidence_by_id: Mapped[str | None] = mapped_column(String(128))
    evidence_by: Mapped[str | None] = mapped_column(ClippedString(300))
    evidence_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    evidence_score: Mapped[float | None] = mapped_column(Float)


class PassCardRow(Base):
    """A pass card sent to a requester: where it is, so it can be redacted later. Never the pass."""

    __tablename__ = "pass_cards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    requester_id: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(ClippedString(600))
    pass_method_id: Mapped[str] = mapped_column(String(64), index=True)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    one_time: Mapped[bool] = mapped_column(Boolean)
    timezone: Mapped[str] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    activity_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    redacted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    redaction_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_pass_cards_due", "redacted_at", "expires_at"),)


class PersonalConversationRow(Base):
    """The 1:1 chat between the bot and a user, so private messages need not create it again."""

    __tablename__ = "personal_conversations"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApprovalRow(Base):
    """An approval request and its decision. Never a pass: a pass is created only once it is approved."""

    __tablename__ = "approval_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    requester_id: Mapped[str] = mapped_column(String(64), index=True)
    requester_tenant_id: Mapped[str] = mapped_column(String(64))
    requester_name: Mapped[str] = mapped_column(ClippedString(256))
    requester_channel_account_id: Mapped[str] = mapped_column(String(200))
    requester_service_url: Mapped[str] = mapped_column(String(500))
    bot_id: Mapped[str] = mapped_column(String(200))
    target_id: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(ClippedString(600))
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lifetime_minutes: Mapped[int] = mapped_column(Integer)
    one_time: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    decided_by_id: Mapped[str | None] = mapped_column(String(64))
    decided_by_name: Mapped[str | None] = mapped_column(ClippedString(256))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    card_service_url: Mapped[str | None] = mapped_column(String(500))
    card_conversation_id: Mapped[str | None] = mapped_column(String(500))
    card_activity_id: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    # The requester's own reason (a ticket number), carried to the pass; `reason` says why approval is needed (0003).
    request_reason: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    # The verification of the person the request was opened with, bound to it (0004).
    verification_id: Mapped[str | None] = mapped_column(String(36))


class ApprovalsChannelRow(Base):
    __tablename__ = "approvals_channels"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SecurityChannelRow(Base):
    """The channel operators made the security channel with `/tap alerts here` (0006)."""

    __tablename__ = "security_channels"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PassWatchRow(Base):
    """A live pass the bot issued, watched for the user's own new sign-in method (0007). Never the pass."""

    __tablename__ = "pass_watches"

    pass_method_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(ClippedString(600))
    requester_id: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    one_time: Mapped[bool] = mapped_column(Boolean)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(20))
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    known_method_ids: Mapped[str | None] = mapped_column(Text)
    seen_used: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    notice: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_pass_watches_due", "state", "checked_at"),
        Index("ix_pass_watches_notice", "notified_at"),
    )


class BulkJobRow(Base):
    __tablename__ = "bulk_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), index=True)
    requester_id: Mapped[str] = mapped_column(String(64))
    requester_tenant_id: Mapped[str] = mapped_column(String(64))
    requester_name: Mapped[str] = mapped_column(ClippedString(256))
    requester_channel_account_id: Mapped[str] = mapped_column(String(200))
    requester_service_url: Mapped[str] = mapped_column(String(500))
    bot_id: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(ClippedString(300))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    replace_existing: Mapped[bool] = mapped_column(Boolean, default=False)
    source_job_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    progress_conversation_id: Mapped[str | None] = mapped_column(String(500))
    progress_activity_id: Mapped[str | None] = mapped_column(String(200))
    progress_service_url: Mapped[str | None] = mapped_column(String(500))
    approval_request_id: Mapped[str | None] = mapped_column(String(36))
    lease_owner: Mapped[str | None] = mapped_column(ClippedString(100))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(
        Text, default="", server_default=text("''")
    )  # one reason for the whole file (0003)


class TargetLockRow(Base):
    """A pass being checked and created for this user: one holder at a time, across replicas (0002)."""

    __tablename__ = "target_locks"

    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


PROCESSED_KEY_LENGTH = 600


class ProcessedActivityRow(Base):
    """Activities already handled: Teams retries a delivery it thinks failed, with the same activity id."""

    __tablename__ = "processed_activities"

    key: Mapped[str] = mapped_column(String(PROCESSED_KEY_LENGTH), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class BulkRowRow(Base):
    """One row of a bulk job's journal. No column can hold a pass value."""

    __tablename__ = "bulk_rows"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(ClippedString(400))
    state: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(64))
    user_label: Mapped[str | None] = mapped_column(ClippedString(600))
    lifetime_minutes: Mapped[int | None] = mapped_column(Integer)
    one_time: Mapped[bool] = mapped_column(Boolean, default=False)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    pass_method_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The row's reason for the pass (its own column, else the file's); `reason` says why it was refused (0003).
    request_reason: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))

    __table_args__ = (Index("ix_bulk_rows_state", "job_id", "state"),)


class VerificationRow(Base):
    """A verification of the person before a pass, and the request it was made for (0004). Never a pass value."""

    __tablename__ = "verifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    requester_id: Mapped[str] = mapped_column(String(64))
    requester_tenant_id: Mapped[str] = mapped_column(String(64))
    requester_name: Mapped[str] = mapped_column(ClippedString(256))
    requester_channel_account_id: Mapped[str] = mapped_column(String(200))
    requester_service_url: Mapped[str] = mapped_column(String(500))
    bot_id: Mapped[str] = mapped_column(String(200))
    target_id: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(ClippedString(600))
    lifetime_minutes: Mapped[int | None] = mapped_column(Integer)
    one_time: Mapped[bool] = mapped_column(Boolean)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    replace: Mapped[bool] = mapped_column(Boolean)
    replace_method_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    attester_ids: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))  # comma list
    attester_label: Mapped[str] = mapped_column(ClippedString(600), default="", server_default=text("''"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    settled_by_id: Mapped[str | None] = mapped_column(String(128))
    settled_by: Mapped[str | None] = mapped_column(ClippedString(300))
    score: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    progress: Mapped[str | None] = mapped_column(String(32))
    external_ref: Mapped[str | None] = mapped_column(String(128))
    external_url: Mapped[str | None] = mapped_column(Text)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_for: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    card_service_url: Mapped[str | None] = mapped_column(String(500))
    card_conversation_id: Mapped[str | None] = mapped_column(String(500))
    card_activity_id: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_verifications_state_expires", "state", "expires_at"),
        Index("ix_verifications_external_ref", "external_ref", unique=True),
    )


class VerificationPromptRow(Base):
    """A card asking someone "Is this really <user>?", to update when the verification settles (0004)."""

    __tablename__ = "verification_prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    verification_id: Mapped[str] = mapped_column(String(36), index=True)
    attester_id: Mapped[str] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    activity_id: Mapped[str | None] = mapped_column(String(200))


class _RequesterColumns(Protocol):
    """The columns that say how to reach the person who asked (approval requests and bulk jobs both have them)."""

    requester_id: Mapped[str]
    requester_tenant_id: Mapped[str]
    requester_name: Mapped[str]
    requester_channel_account_id: Mapped[str]
    requester_service_url: Mapped[str]
    bot_id: Mapped[str]


def requester_columns(requester: Recipient) -> dict[str, object]:
    return {
        "requester_id": requester.object_id,
        "requester_tenant_id": requester.tenant_id,
        "requester_name": requester.name,
        "requester_channel_account_id": requester.channel_account_id,
        "requester_service_url": requester.service_url,
        "bot_id": requester.bot_id,
    }


def requester_of(row: _RequesterColumns) -> Recipient:
    return Recipient(
        object_id=row.requester_id,
        tenant_id=row.requester_tenant_id,
        name=row.requester_name,
        channel_account_id=row.requester_channel_account_id,
        service_url=row.requester_service_url,
        bot_id=row.bot_id,
    )


class SignInUserRow(Base):
    """How the token service knows a person (issue 14, delegated writes, 0008): their channel account. Never a token."""

    __tablename__ = "sign_in_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_user_id: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SignInWaitRow(Base):
    """An action paused until its person signs in (0008): taken once, before it expires. Never a token."""

    __tablename__ = "sign_in_waits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(Text)  # a command's canonical text, a verification, approval or job id
    ref_key: Mapped[str] = mapped_column(String(64))  # sha256 of ref: unique per action whatever ref's length
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ux_sign_in_waits_action", "user_id", "kind", "ref_key", unique=True),)
