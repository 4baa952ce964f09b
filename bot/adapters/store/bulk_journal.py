"""The bulk jobs' journal: each job, its rows' states, and which replica holds the right to run it (a lease)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, or_, select, update

from bot.adapters.store.schema import BulkJobRow, BulkRowRow, requester_columns, requester_of
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.bulk import BulkJob, BulkKind, JobStatus, JournalRow, RowState


class SqlBulkJournal:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def create_job(self, job: BulkJob, rows: list[JournalRow]) -> BulkJob:
        async with self._db.session() as session:
            record = BulkJobRow(
                kind=job.kind.value,
                status=job.status.value,
                **requester_columns(job.requester),
                file_name=job.file_name,
                timezone=job.timezone,
                created_at=job.created_at,
                replace_existing=job.replace_existing,
                source_job_id=job.source_job_id,
                reason=job.reason,
            )
            session.add(record)
            await session.flush()
            session.add_all(BulkRowRow(**_row_values(replace(row, job_id=record.id))) for row in rows)
            return _job(record)

    async def job(self, job_id: int) -> BulkJob | None:
        async with self._db.session() as session:
            record = await session.get(BulkJobRow, job_id)
            return _job(record) if record else None

    async def set_job_status(
        self, job_id: int, status: JobStatus, at: datetime, *, only_from: tuple[JobStatus, ...] = ()
    ) -> bool:
        values: dict[str, object] = {"status": status.value}
        if status is JobStatus.RUNNING:
            # A run resumed after its requester's sign-in is the same job: it keeps its first start.
            values["started_at"] = func.coalesce(BulkJobRow.started_at, at)
            values["finished_at"] = None
        if status in (JobStatus.FINISHED, JobStatus.CANCELLED, JobStatus.DISCARDED, JobStatus.WAITING_SIGN_IN):
            values["finished_at"] = at  # while waiting: when it paused
        query = update(BulkJobRow).where(BulkJobRow.id == job_id)
        if only_from:
            query = query.where(BulkJobRow.status.in_([state.value for state in only_from]))
        async with self._db.session() as session:
            result = await session.execute(query.values(**values))
            return changed_one(result)

    async def set_job_progress_card(
        self, job_id: int, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        async with self._db.session() as session:
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
        async with self._db.session() as session:
            await session.execute(
                update(BulkJobRow)
                .where(BulkJobRow.id == job_id)
                .values(replace_existing=replace_existing, approval_request_id=approval_request_id)
            )

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[JournalRow]:
        query = select(BulkRowRow).where(BulkRowRow.job_id == job_id).order_by(BulkRowRow.line)
        if states:
            query = query.where(BulkRowRow.state.in_([state.value for state in states]))
        async with self._db.session() as session:
            return [_bulk_row(record) for record in (await session.scalars(query)).all()]

    async def save_rows(self, rows: list[JournalRow]) -> None:
        if not rows:
            return
        ordered = sorted(rows, key=lambda row: (row.job_id, row.line))  # one lock order: no deadlock
        async with self._db.session() as session:
            await session.execute(_SAVE_ROW, [_saved_row(row) for row in ordered])

    async def row_counts(self, job_id: int) -> dict[RowState, int]:
        query = select(BulkRowRow.state, func.count()).where(BulkRowRow.job_id == job_id).group_by(BulkRowRow.state)
        async with self._db.session() as session:
            return {RowState(state): count for state, count in (await session.execute(query)).all()}

    async def claim_job(self, job_id: int, owner: str, now: datetime, lease: timedelta) -> bool:
        """Takes (or renews) the right to run an active job: only one replica holds it until the lease ends."""
        async with self._db.session() as session:
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
            return changed_one(result)

    async def release_job(self, job_id: int, owner: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(BulkJobRow)
                .where(BulkJobRow.id == job_id, BulkJobRow.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    async def active_jobs(self) -> list[BulkJob]:
        query = (
            select(BulkJobRow)
            .where(BulkJobRow.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value]))
            .order_by(BulkJobRow.id)
        )
        async with self._db.session() as session:
            return [_job(record) for record in (await session.scalars(query)).all()]

    async def jobs_waiting_sign_in(self) -> list[BulkJob]:
        query = (
            select(BulkJobRow)
            .where(BulkJobRow.status == JobStatus.WAITING_SIGN_IN.value)
            .order_by(BulkJobRow.finished_at, BulkJobRow.id)
        )
        async with self._db.session() as session:
            return [_job(record) for record in (await session.scalars(query)).all()]


def _job(record: BulkJobRow) -> BulkJob:
    return BulkJob(
        id=record.id,
        kind=BulkKind(record.kind),
        status=JobStatus(record.status),
        requester=requester_of(record),
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
        reason=record.reason,
    )


_ROWS = cast(Table, BulkRowRow.__table__)
# Built once: a bulk run saves every row two or three times, and an ORM UPDATE built per call cost more of the bot's
# CPU per row than the row's Graph requests (bench.bulk_issue --profile). Executed with one parameter set per row.
_SAVE_ROW = update(_ROWS).where(_ROWS.c.job_id == bindparam("key_job_id"), _ROWS.c.line == bindparam("key_line"))


def _saved_row(row: JournalRow) -> dict[str, object]:
    values = _row_values(row)
    values["key_job_id"] = values.pop("job_id")
    values["key_line"] = values.pop("line")
    return values


def _row_values(row: JournalRow) -> dict[str, object]:
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
        "request_reason": row.request_reason,
    }


def _bulk_row(record: BulkRowRow) -> JournalRow:
    return JournalRow(
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
        request_reason=record.request_reason,
    )
