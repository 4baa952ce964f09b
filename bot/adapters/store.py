"""All state in SQL (SQLAlchemy 2 async): audit log, delivered pass cards, personal conversations.

SQLite by default, PostgreSQL when replicas share one database. The tables are made by the migrations in
``bot/adapters/migrations`` (``create_schema`` runs them at start); a change to a model here needs a new revision
there (``python -m bot.adapters.migrate --new "what changed"``). Nothing here ever holds a pass value: the tables
have no column that could.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import Executable

from bot.adapters.database import DatabaseSettings, TokenCredential, create_engine
from bot.adapters.migrate import MigrationResult, migrate_engine
from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalsChannel, ApprovalStatus
from bot.domain.audit import AuditEvent
from bot.domain.bulk import BulkJob, BulkKind, BulkRow, JobStatus, RowState
from bot.domain.model import Recipient
from bot.domain.records import AuditEntry, PassCard, PersonalConversation, RedactionReason


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
    pass_method_id: Mapped[str | None] = mapped_column(String(64))
    graph_request_id: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")


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


class ApprovalsChannelRow(Base):
    __tablename__ = "approvals_channels"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_url: Mapped[str] = mapped_column(String(500))
    conversation_id: Mapped[str] = mapped_column(String(500))
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)


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

    __table_args__ = (Index("ix_bulk_rows_state", "job_id", "state"),)


class SqlStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite takes one writer at a time and answers "database is locked" to a transaction that cannot
        # upgrade to writing, busy timeout or not; one transaction at a time per process avoids that.
        self._sqlite_turn: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def from_url(cls, url: str | DatabaseSettings, *, credential: TokenCredential | None = None) -> SqlStore:
        """The store at a URL, or with the full database settings (Entra sign-in, verified TLS: database.py)."""
        parsed = make_url(url.url if isinstance(url, DatabaseSettings) else url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, credential=credential, pool_pre_ping=parsed.get_backend_name() != "sqlite")
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    async def create_schema(self) -> MigrationResult:
        """Migrates the database to this version's schema (bot/adapters/migrations); a no-op when it is there."""
        return await migrate_engine(self._engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        if self._sqlite_turn is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._sqlite_turn, self._sessions() as session, session.begin():
            yield session

    # --- audit (append-only) ------------------------------------------------------------------------------

    async def record(self, event: AuditEvent) -> None:
        async with self._session() as session:
            session.add(
                AuditRow(
                    at=event.at,
                    action=event.action.value,
                    outcome=event.outcome.value,
                    actor_id=event.actor_id,
                    actor_name=event.actor_name,
                    target_id=event.target_id,
                    target_upn=event.target_upn,
                    lifetime_minutes=event.lifetime_minutes,
                    start_at=event.start_at,
                    one_time=event.one_time,
                    pass_method_id=event.pass_method_id,
                    graph_request_id=event.graph_request_id,
                    rule=event.rule,
                    detail=event.detail,
                )
            )

    async def audit_rows(self, since: datetime | None = None) -> list[AuditEntry]:
        query = select(AuditRow).order_by(AuditRow.id)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        async with self._session() as session:
            return [_audit_entry(row) for row in (await session.scalars(query)).all()]

    # --- pass cards ---------------------------------------------------------------------------------------

    async def save_pass_card(self, card: PassCard) -> None:
        async with self._session() as session:
            session.add(PassCardRow(**card.__dict__))

    async def save_pass_cards(self, cards: Sequence[PassCard]) -> None:
        """Several cards in one transaction: a results page and the entry row of each pass on it."""
        async with self._session() as session:
            session.add_all(PassCardRow(**card.__dict__) for card in cards)

    async def set_card_activity(self, card_id: str, activity_id: str) -> None:
        async with self._session() as session:
            await session.execute(update(PassCardRow).where(PassCardRow.id == card_id).values(activity_id=activity_id))

    async def pass_card(self, card_id: str) -> PassCard | None:
        async with self._session() as session:
            row = await session.get(PassCardRow, card_id)
            return _card(row) if row else None

    async def claim_redaction(self, card_id: str, reason: RedactionReason, at: datetime) -> bool:
        """Marks the card redacted; False when it already was (a second click, or another replica)."""
        async with self._session() as session:
            result = await session.execute(
                update(PassCardRow)
                .where(PassCardRow.id == card_id, PassCardRow.redacted_at.is_(None))
                .values(redacted_at=at, redaction_reason=reason.value)
            )
            return (getattr(result, "rowcount", 0) or 0) == 1

    async def cards_due_for_redaction(self, now: datetime, limit: int = 50) -> list[PassCard]:
        query = (
            select(PassCardRow)
            .where(PassCardRow.redacted_at.is_(None), PassCardRow.expires_at <= now)
            .order_by(PassCardRow.expires_at, PassCardRow.id)
            .limit(limit)
        )
        async with self._session() as session:
            return [_card(row) for row in (await session.scalars(query)).all()]

    async def unredacted_cards_for_pass(self, pass_method_id: str) -> list[PassCard]:
        query = (
            select(PassCardRow)
            .where(PassCardRow.pass_method_id == pass_method_id, PassCardRow.redacted_at.is_(None))
            .order_by(PassCardRow.created_at, PassCardRow.id)
        )
        async with self._session() as session:
            return [_card(row) for row in (await session.scalars(query)).all()]

    async def unredacted_cards_for_user(self, target_id: str) -> list[PassCard]:
        query = (
            select(PassCardRow)
            .where(PassCardRow.target_id == target_id, PassCardRow.redacted_at.is_(None))
            .order_by(PassCardRow.created_at, PassCardRow.id)
        )
        async with self._session() as session:
            return [_card(row) for row in (await session.scalars(query)).all()]

    # --- approval requests --------------------------------------------------------------------------------

    async def save_approval(self, request: ApprovalRequest) -> None:
        async with self._session() as session:
            session.add(ApprovalRow(**_approval_values(request)))

    async def approval(self, request_id: str) -> ApprovalRequest | None:
        async with self._session() as session:
            row = await session.get(ApprovalRow, request_id)
            return _approval(row) if row else None

    async def settle_approval(self, decided: ApprovalRequest) -> bool:
        async with self._session() as session:
            result = await session.execute(
                update(ApprovalRow)
                .where(ApprovalRow.id == decided.id, ApprovalRow.status == ApprovalStatus.PENDING.value)
                .values(
                    status=decided.status.value,
                    decided_by_id=decided.decided_by_id,
                    decided_by_name=decided.decided_by_name,
                    decided_at=decided.decided_at,
                    decision_note=decided.decision_note,
                )
            )
            return (getattr(result, "rowcount", 0) or 0) == 1

    async def set_approval_card(
        self, request_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        async with self._session() as session:
            await session.execute(
                update(ApprovalRow)
                .where(ApprovalRow.id == request_id)
                .values(
                    card_service_url=service_url, card_conversation_id=conversation_id, card_activity_id=activity_id
                )
            )

    async def set_approval_timezone(self, request_id: str, timezone: str) -> None:
        async with self._session() as session:
            await session.execute(update(ApprovalRow).where(ApprovalRow.id == request_id).values(timezone=timezone))

    async def pending_approvals(self, now: datetime) -> list[ApprovalRequest]:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.status == ApprovalStatus.PENDING.value, ApprovalRow.expires_at > now)
            .order_by(ApprovalRow.created_at, ApprovalRow.id)
        )
        async with self._session() as session:
            return [_approval(row) for row in (await session.scalars(query)).all()]

    async def approvals_of(self, requester_id: str, since: datetime) -> list[ApprovalRequest]:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.requester_id == requester_id, ApprovalRow.created_at >= since)
            .order_by(ApprovalRow.created_at.desc(), ApprovalRow.id.desc())
        )
        async with self._session() as session:
            return [_approval(row) for row in (await session.scalars(query)).all()]

    async def overdue_approvals(self, now: datetime) -> list[ApprovalRequest]:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.status == ApprovalStatus.PENDING.value, ApprovalRow.expires_at <= now)
            .order_by(ApprovalRow.expires_at, ApprovalRow.id)
        )
        async with self._session() as session:
            return [_approval(row) for row in (await session.scalars(query)).all()]

    async def save_approvals_channel(self, channel: ApprovalsChannel) -> None:
        async with self._session() as session:
            await session.execute(_upsert(self._engine.dialect.name, ApprovalsChannelRow, dict(channel.__dict__)))

    async def approvals_channel(self, tenant_id: str) -> ApprovalsChannel | None:
        async with self._session() as session:
            row = await session.get(ApprovalsChannelRow, tenant_id)
            if row is None:
                return None
            return ApprovalsChannel(
                row.service_url, row.conversation_id, row.tenant_id, row.registered_by, row.registered_at
            )

    # --- bulk jobs ----------------------------------------------------------------------------------------

    async def create_job(self, job: BulkJob, rows: list[BulkRow]) -> BulkJob:
        async with self._session() as session:
            record = BulkJobRow(
                kind=job.kind.value,
                status=job.status.value,
                requester_id=job.requester.object_id,
                requester_tenant_id=job.requester.tenant_id,
                requester_name=job.requester.name,
                requester_channel_account_id=job.requester.channel_account_id,
                requester_service_url=job.requester.service_url,
                bot_id=job.requester.bot_id,
                file_name=job.file_name,
                timezone=job.timezone,
                created_at=job.created_at,
                replace_existing=job.replace_existing,
                source_job_id=job.source_job_id,
            )
            session.add(record)
            await session.flush()
            session.add_all(BulkRowRow(**_row_values(replace(row, job_id=record.id))) for row in rows)
            return _job(record)

    async def job(self, job_id: int) -> BulkJob | None:
        async with self._session() as session:
            record = await session.get(BulkJobRow, job_id)
            return _job(record) if record else None

    async def set_job_status(
        self, job_id: int, status: JobStatus, at: datetime, *, only_from: tuple[JobStatus, ...] = ()
    ) -> bool:
        values: dict[str, object] = {"status": status.value}
        if status is JobStatus.RUNNING:
            values["started_at"] = at
        if status in (JobStatus.FINISHED, JobStatus.CANCELLED, JobStatus.DISCARDED):
            values["finished_at"] = at
        query = update(BulkJobRow).where(BulkJobRow.id == job_id)
        if only_from:
            query = query.where(BulkJobRow.status.in_([state.value for state in only_from]))
        async with self._session() as session:
            result = await session.execute(query.values(**values))
            return (getattr(result, "rowcount", 0) or 0) == 1

    async def set_job_progress_card(
        self, job_id: int, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        async with self._session() as session:
            await session.execute(
                update(BulkJobRow)
                .where(BulkJobRow.id == job_id)
                .values(
                    progress_service_url=service_url,
                    progress_conversation_id=conversation_id,
                    progress_activity_id=activity_id,
                )
            )

    async def set_job_options(
        self, job_id: int, *, replace_existing: bool, approval_request_id: str | None = None
    ) -> None:
        async with self._session() as session:
            await session.execute(
                update(BulkJobRow)
                .where(BulkJobRow.id == job_id)
                .values(replace_existing=replace_existing, approval_request_id=approval_request_id)
            )

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[BulkRow]:
        query = select(BulkRowRow).where(BulkRowRow.job_id == job_id).order_by(BulkRowRow.line)
        if states:
            query = query.where(BulkRowRow.state.in_([state.value for state in states]))
        async with self._session() as session:
            return [_bulk_row(record) for record in (await session.scalars(query)).all()]

    async def save_rows(self, rows: list[BulkRow]) -> None:
        if not rows:
            return
        async with self._session() as session:
            for row in sorted(rows, key=lambda row: (row.job_id, row.line)):  # one lock order: no deadlock
                values = _row_values(row)
                await session.execute(
                    update(BulkRowRow)
                    .where(BulkRowRow.job_id == row.job_id, BulkRowRow.line == row.line)
                    .values(**{key: value for key, value in values.items() if key not in ("job_id", "line")})
                )

    async def row_counts(self, job_id: int) -> dict[RowState, int]:
        query = select(BulkRowRow.state, func.count()).where(BulkRowRow.job_id == job_id).group_by(BulkRowRow.state)
        async with self._session() as session:
            return {RowState(state): count for state, count in (await session.execute(query)).all()}

    async def claim_job(self, job_id: int, owner: str, now: datetime, lease: timedelta) -> bool:
        """Takes (or renews) the right to run an active job: only one replica holds it until the lease ends."""
        async with self._session() as session:
            result = await session.execute(
                update(BulkJobRow)
                .where(
                    BulkJobRow.id == job_id,
                    BulkJobRow.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value]),
                    or_(
                        BulkJobRow.lease_owner.is_(None),
                        BulkJobRow.lease_owner == owner,
                        BulkJobRow.lease_until < now,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + lease)
            )
            return (getattr(result, "rowcount", 0) or 0) == 1

    async def release_job(self, job_id: int, owner: str) -> None:
        async with self._session() as session:
            await session.execute(
                update(BulkJobRow)
                .where(BulkJobRow.id == job_id, BulkJobRow.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Takes the user's check-and-create lock, or one whose time ran out: one statement, so of several replicas
        asking at once exactly one gets it (INSERT, or UPDATE only where the lock expired)."""
        values = {"target_id": target_id, "holder": holder, "expires_at": now + ttl}
        table = postgresql_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        statement = (
            table(TargetLockRow)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["target_id"],
                set_={"holder": holder, "expires_at": now + ttl},
                where=or_(TargetLockRow.expires_at < now, TargetLockRow.holder == holder),
            )
        )
        async with self._session() as session:
            result = await session.execute(statement)
            return (getattr(result, "rowcount", 0) or 0) == 1

    async def unlock_target(self, target_id: str, holder: str) -> None:
        async with self._session() as session:
            await session.execute(
                delete(TargetLockRow).where(TargetLockRow.target_id == target_id, TargetLockRow.holder == holder)
            )

    async def first_delivery(self, key: str, now: datetime, keep: timedelta) -> bool:
        """Records an incoming activity; False when it was seen before (a retried delivery)."""
        if len(key) > PROCESSED_KEY_LENGTH:  # kept whole up to the column's length, beyond it by its digest
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        async with self._session() as session:
            await session.execute(delete(ProcessedActivityRow).where(ProcessedActivityRow.at < now - keep))
            inserted = await session.execute(
                _insert_ignoring_duplicates(self._engine.dialect.name, ProcessedActivityRow, {"key": key, "at": now})
            )
            return (getattr(inserted, "rowcount", 0) or 0) == 1

    async def active_jobs(self) -> list[BulkJob]:
        query = (
            select(BulkJobRow)
            .where(BulkJobRow.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value]))
            .order_by(BulkJobRow.id)
        )
        async with self._session() as session:
            return [_job(record) for record in (await session.scalars(query)).all()]

    # --- personal conversations ---------------------------------------------------------------------------

    async def save_personal_conversation(self, conversation: PersonalConversation, at: datetime) -> None:
        values = {**conversation.__dict__, "updated_at": at}
        async with self._session() as session:
            await session.execute(_upsert(self._engine.dialect.name, PersonalConversationRow, values))

    async def personal_conversation(self, user_id: str) -> PersonalConversation | None:
        async with self._session() as session:
            row = await session.get(PersonalConversationRow, user_id)
            if row is None:
                return None
            return PersonalConversation(row.user_id, row.tenant_id, row.service_url, row.conversation_id)


def _approval_values(request: ApprovalRequest) -> dict[str, object]:
    requester = request.requester
    return {
        "id": request.id,
        "kind": request.kind.value,
        "status": request.status.value,
        "requester_id": requester.object_id,
        "requester_tenant_id": requester.tenant_id,
        "requester_name": requester.name,
        "requester_channel_account_id": requester.channel_account_id,
        "requester_service_url": requester.service_url,
        "bot_id": requester.bot_id,
        "target_id": request.target_id,
        "target_label": request.target_label,
        "start_at": request.start_at,
        "lifetime_minutes": request.lifetime_minutes,
        "one_time": request.one_time,
        "reason": request.reason,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "decided_by_id": request.decided_by_id,
        "decided_by_name": request.decided_by_name,
        "decided_at": request.decided_at,
        "decision_note": request.decision_note,
        "card_service_url": request.card_service_url,
        "card_conversation_id": request.card_conversation_id,
        "card_activity_id": request.card_activity_id,
        "timezone": request.timezone,
    }


def _approval(row: ApprovalRow) -> ApprovalRequest:
    return ApprovalRequest(
        id=row.id,
        kind=ApprovalKind(row.kind),
        requester=Recipient(
            object_id=row.requester_id,
            tenant_id=row.requester_tenant_id,
            name=row.requester_name,
            channel_account_id=row.requester_channel_account_id,
            service_url=row.requester_service_url,
            bot_id=row.bot_id,
        ),
        target_id=row.target_id,
        target_label=row.target_label,
        start_at=row.start_at,
        lifetime_minutes=row.lifetime_minutes,
        one_time=row.one_time,
        reason=row.reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=ApprovalStatus(row.status),
        decided_by_id=row.decided_by_id,
        decided_by_name=row.decided_by_name,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        card_conversation_id=row.card_conversation_id,
        card_activity_id=row.card_activity_id,
        card_service_url=row.card_service_url,
        timezone=row.timezone,
    )


def _insert_ignoring_duplicates(dialect: str, table: type[Base], values: dict[str, object]) -> Executable:
    if dialect == "postgresql":
        return postgresql_insert(table).values(**values).on_conflict_do_nothing()
    return sqlite_insert(table).values(**values).on_conflict_do_nothing()


def _upsert(dialect: str, table: type[Base], values: dict[str, object]) -> Executable:
    """INSERT, or UPDATE the row with the same primary key: one statement, so two replicas saving the same key at
    once both succeed (a read-then-insert lets the second fail on the primary key)."""
    keys = [column.name for column in inspect(table).primary_key]
    changes = {name: value for name, value in values.items() if name not in keys}
    if dialect == "postgresql":
        return postgresql_insert(table).values(**values).on_conflict_do_update(index_elements=keys, set_=changes)
    return sqlite_insert(table).values(**values).on_conflict_do_update(index_elements=keys, set_=changes)


def _job(record: BulkJobRow) -> BulkJob:
    return BulkJob(
        id=record.id,
        kind=BulkKind(record.kind),
        status=JobStatus(record.status),
        requester=Recipient(
            object_id=record.requester_id,
            tenant_id=record.requester_tenant_id,
            name=record.requester_name,
            channel_account_id=record.requester_channel_account_id,
            service_url=record.requester_service_url,
            bot_id=record.bot_id,
        ),
        file_name=record.file_name,
        timezone=record.timezone,
        created_at=record.created_at,
        replace_existing=record.replace_existing,
        source_job_id=record.source_job_id,
        started_at=record.started_at,
        finished_at=record.finished_at,
        progress_conversation_id=record.progress_conversation_id,
        progress_activity_id=record.progress_activity_id,
        progress_service_url=record.progress_service_url,
        approval_request_id=record.approval_request_id,
    )


def _row_values(row: BulkRow) -> dict[str, object]:
    return {
        "job_id": row.job_id,
        "line": row.line,
        "target": row.target[:400],
        "state": row.state.value,
        "user_id": row.user_id,
        "user_label": row.user_label,
        "lifetime_minutes": row.lifetime_minutes,
        "one_time": row.one_time,
        "start_at": row.start_at,
        "reason": row.reason,
        "pass_method_id": row.pass_method_id,
        "expires_at": row.expires_at,
        "attempts": row.attempts,
    }


def _bulk_row(record: BulkRowRow) -> BulkRow:
    return BulkRow(
        job_id=record.job_id,
        line=record.line,
        target=record.target,
        state=RowState(record.state),
        user_id=record.user_id,
        user_label=record.user_label,
        lifetime_minutes=record.lifetime_minutes,
        one_time=record.one_time,
        start_at=record.start_at,
        reason=record.reason,
        pass_method_id=record.pass_method_id,
        expires_at=record.expires_at,
        attempts=record.attempts,
    )


def _card(row: PassCardRow) -> PassCard:
    return PassCard(
        id=row.id,
        requester_id=row.requester_id,
        target_id=row.target_id,
        target_label=row.target_label,
        pass_method_id=row.pass_method_id,
        start_at=row.start_at,
        expires_at=row.expires_at,
        one_time=row.one_time,
        timezone=row.timezone,
        service_url=row.service_url,
        conversation_id=row.conversation_id,
        activity_id=row.activity_id,
        created_at=row.created_at,
        redacted_at=row.redacted_at,
        redaction_reason=row.redaction_reason,
    )


def _audit_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        action=row.action,
        outcome=row.outcome,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        target_id=row.target_id,
        target_upn=row.target_upn,
        lifetime_minutes=row.lifetime_minutes,
        start_at=row.start_at,
        one_time=row.one_time,
        pass_method_id=row.pass_method_id,
        graph_request_id=row.graph_request_id,
        rule=row.rule,
        detail=row.detail,
    )


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
