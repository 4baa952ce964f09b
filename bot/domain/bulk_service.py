"""Checking, confirming, running and cancelling bulk jobs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalKind, ApprovalRequest
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor, Subject
from bot.domain.bulk import (
    UNFINISHED_RUN_STATES,
    BulkJob,
    BulkKind,
    BulkRow,
    BulkStore,
    JobStatus,
    Progress,
    RowState,
)
from bot.domain.bulk_file import BulkFile
from bot.domain.bulk_file import BulkRow as FileRow
from bot.domain.eligibility import resolve_lifetime, resolve_one_time
from bot.domain.errors import GraphUnavailable, Refused, Rule, TapError, Throttled
from bot.domain.model import Caller, DirectoryUser, IssuedPass, TapPolicy
from bot.domain.ports import AuditLog, Clock, Directory, PassMethods
from bot.domain.service import TapService
from bot.domain.throttle import AdaptiveLimiter

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_SIZE = 50  # passes per results card: well inside Teams' message size budget
PROGRESS_EVERY_SECONDS = 2.0  # Teams allows about one message or update per second and chat; stay below
MAX_WORKERS = 48
MAX_THROTTLED_ATTEMPTS = 12
CANCEL_POLL_SECONDS = 1.0


class BulkSink(Protocol):
    """Where a running job reports: the requester's private chat (the Teams edge implements it)."""

    async def deliver_page(self, job: BulkJob, page: list[tuple[BulkRow, IssuedPass]]) -> str | None:
        """Shows these passes to the requester; returns None when delivered, else a reason safe to show."""
        ...

    async def progress(self, progress: Progress) -> None: ...

    async def finished(self, job: BulkJob, counts: dict[RowState, int]) -> None: ...


@dataclass(frozen=True)
class Checked:
    job: BulkJob
    counts: dict[RowState, int]
    problems: list[BulkRow]
    duplicates: int
    ignored_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Started:
    job: BulkJob


@dataclass(frozen=True)
class WaitingForApproval:
    job: BulkJob
    request: ApprovalRequest


class NotYourJob(TapError):
    def __init__(self) -> None:
        super().__init__("Only the operator who started this bulk job can do that.")


class NothingToRetry(TapError):
    def __init__(self) -> None:
        super().__init__("No row of this job failed; nothing to retry.")


class UnknownJob(TapError):
    def __init__(self, job_id: int | str) -> None:
        super().__init__(f"I don't know bulk job {job_id}. Use the number shown on the job's cards.")


class JobNotWaiting(TapError):
    def __init__(self, job: BulkJob) -> None:
        super().__init__(f"Bulk job {job.id} is already {job.status.value.replace('_', ' ')}; nothing was changed.")


class BulkService:
    def __init__(
        self,
        *,
        tap: TapService,
        directory: Directory,
        passes: PassMethods,
        store: BulkStore,
        desk: ApprovalDesk,
        clock: Clock,
        audit: AuditLog,
    ) -> None:
        self._tap = tap
        self._directory = directory
        self._passes = passes
        self._store = store
        self._desk = desk
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    # --- preflight ----------------------------------------------------------------------------------------

    async def check_file(self, caller: Caller, kind: BulkKind, file: BulkFile, file_name: str, tz: str) -> Checked:
        """Checks every row with the same rules as a single command, before anything is written."""
        work = lambda: self._check_file(caller, kind, file, file_name, tz)  # noqa: E731
        action = AuditAction.ISSUE if kind is BulkKind.ISSUE else AuditAction.REVOKE
        return await self._auditor.audited(action, caller, Subject(f"file {file_name}"), work)

    async def _check_file(self, caller: Caller, kind: BulkKind, file: BulkFile, file_name: str, tz: str) -> Checked:
        await self._tap.require_operator(caller)
        if caller.address is None:
            raise Refused(Rule.UNKNOWN_CALLER, "I can't tell where to send the results; use Microsoft Teams.")
        policy = await self._directory.tap_policy()
        limiter = AdaptiveLimiter(initial=8)
        job_stub = BulkJob(0, kind, JobStatus.CHECKED, caller.address, file_name, tz, self._clock.now())
        drafts = [
            BulkRow(
                0,
                row.line,
                row.target,
                RowState.READY,
                None,
                None,
                row.lifetime_minutes,
                bool(row.one_time),
                row.start_at,
            )
            for row in file.rows
        ]
        checker = self._check_issue_row if kind is BulkKind.ISSUE else self._check_revoke_row
        checked = await _each(drafts, lambda row: _patiently(limiter, lambda: checker(caller, row, policy)))
        checked += [
            BulkRow(0, problem.line, problem.text or f"line {problem.line}", RowState.REFUSED, reason=problem.reason)
            for problem in file.problems
        ]
        checked.sort(key=lambda row: row.line)
        job = await self._store.create_job(job_stub, checked)
        counts = Counter(row.state for row in checked)
        await self._auditor.record(
            AuditAction.ISSUE if kind is BulkKind.ISSUE else AuditAction.REVOKE,
            AuditOutcome.NEEDS_CONFIRMATION,
            caller,
            target=f"bulk job {job.id}",
            detail=f"{kind.value} file {file_name} checked: "
            + ", ".join(f"{state.value} {count}" for state, count in sorted(counts.items())),
        )
        problems = [row for row in checked if row.state in (RowState.REFUSED, RowState.NOT_FOUND, RowState.NO_PASS)]
        return Checked(job, dict(counts), problems, len(file.duplicates), file.ignored_columns)

    async def check_job_revocation(self, caller: Caller, source_job_id: int) -> Checked:
        """`revoke everything from job N`: the users job N delivered passes to, checked like a revoke file."""
        source = await self._store.job(source_job_id)
        if source is None or source.kind is not BulkKind.ISSUE:
            raise UnknownJob(source_job_id)
        delivered = await self._store.rows(source_job_id, (RowState.DELIVERED,))
        file = _file_of(delivered, with_options=False)
        return await self.check_file(caller, BulkKind.REVOKE, file, f"job {source_job_id}", source.timezone)

    async def check_failed_rows(self, caller: Caller, job_id: int) -> Checked:
        """`Retry failed rows`: the rows job N failed, checked again as a new job of the same kind."""
        job = await self._own_job(caller, job_id)
        failed = await self._store.rows(job_id, (RowState.FAILED,))
        if not failed:
            raise NothingToRetry()
        return await self.check_file(caller, job.kind, _file_of(failed), f"retry of job {job.id}", job.timezone)

    async def _check_issue_row(self, caller: Caller, row: BulkRow, policy: TapPolicy) -> BulkRow:
        user = await self._directory.find_user(row.target)
        if user is None:
            return row.moved(RowState.NOT_FOUND, reason="No such user in this tenant.")
        labelled = row.moved(row.state, user_id=user.object_id, user_label=user.label)
        try:
            check = await self._tap.check_target(caller, user, policy=policy)
            lifetime = resolve_lifetime(row.lifetime_minutes, policy)
            one_time = resolve_one_time(row.one_time, policy)
        except Refused as refusal:
            return labelled.moved(RowState.REFUSED, reason=refusal.user_message)
        if row.start_at is not None and row.start_at < self._clock.now() - timedelta(minutes=1):
            return labelled.moved(RowState.REFUSED, reason="The start time has already passed.")
        existing = check.existing
        if existing is not None and existing.is_live(self._clock.now()):
            return labelled.moved(
                RowState.HOLDS_PASS,
                lifetime_minutes=lifetime,
                one_time=one_time,
                reason=f"Holds a pass until {existing.expires_at:%Y-%m-%d %H:%M} UTC.",
            )
        return labelled.moved(RowState.READY, lifetime_minutes=lifetime, one_time=one_time)

    async def _check_revoke_row(self, caller: Caller, row: BulkRow, policy: TapPolicy) -> BulkRow:
        user = await self._directory.find_user(row.target)
        if user is None:
            return row.moved(RowState.NOT_FOUND, reason="No such user in this tenant.")
        current = await self._passes.current_pass(user.object_id)
        labelled = row.moved(row.state, user_id=user.object_id, user_label=user.label)
        if current is None:
            return labelled.moved(RowState.NO_PASS, reason="Holds no pass.")
        return labelled.moved(RowState.READY, pass_method_id=current.method_id)

    # --- confirmation, approval, cancel -------------------------------------------------------------------

    async def confirm(self, caller: Caller, job_id: int, *, replace_existing: bool) -> Started | WaitingForApproval:
        job = await self._own_job(caller, job_id)
        if job.status is not JobStatus.CHECKED:
            raise JobNotWaiting(job)
        rows = await self._store.rows(job_id, (RowState.READY, RowState.HOLDS_PASS))
        queued = [
            row.moved(RowState.PENDING)
            if row.state is RowState.READY or replace_existing
            else row.moved(RowState.SKIPPED, reason="Already holds a pass; you chose not to replace it.")
            for row in rows
        ]
        to_run = sum(1 for row in queued if row.state is RowState.PENDING)
        threshold = self._desk.rules.bulk_row_threshold
        if job.kind is BulkKind.ISSUE and threshold is not None and to_run > threshold:
            request = await self._desk.open_request(
                ApprovalKind.BULK,
                caller,
                DirectoryUser(f"job:{job.id}", f"job-{job.id}", f"{to_run} users from {job.file_name} (job {job.id})"),
                start_at=None,
                lifetime_minutes=max((row.lifetime_minutes or 0) for row in queued) or 60,
                one_time=all(row.one_time for row in queued),
                reason=f"Bulk run of {to_run} passes is above the {threshold}-row limit for one operator.",
            )
            await self._store.save_rows(queued)
            await self._store.set_job_options(job_id, replace_existing=replace_existing, approval_request_id=request.id)
            if not await self._store.set_job_status(
                job_id, JobStatus.AWAITING_APPROVAL, self._clock.now(), only_from=(JobStatus.CHECKED,)
            ):
                raise JobNotWaiting(job)
            return WaitingForApproval(await self._job(job_id), request)
        # Rows first, status last: another replica adopts a job as soon as it is RUNNING.
        await self._store.save_rows(queued)
        await self._store.set_job_options(job_id, replace_existing=replace_existing)
        if not await self._store.set_job_status(
            job_id, JobStatus.RUNNING, self._clock.now(), only_from=(JobStatus.CHECKED,)
        ):
            raise JobNotWaiting(job)
        await self._auditor.record(
            AuditAction.ISSUE if job.kind is BulkKind.ISSUE else AuditAction.REVOKE,
            AuditOutcome.SUCCEEDED,
            caller,
            target=f"bulk job {job.id}",
            detail=f"started: {to_run} rows" + (", replacing existing passes" if replace_existing else ""),
        )
        return Started(await self._job(job_id))

    async def approved(self, request: ApprovalRequest) -> BulkJob | None:
        """An operator approved a bulk request: the job may run now."""
        job_id = int(request.target_id.removeprefix("job:"))
        if not await self._store.set_job_status(
            job_id, JobStatus.RUNNING, self._clock.now(), only_from=(JobStatus.AWAITING_APPROVAL,)
        ):
            return None
        return await self._job(job_id)

    async def cancel(self, caller: Caller, job_id: int) -> BulkJob:
        job = await self._own_job(caller, job_id)
        now = self._clock.now()
        if job.status in (JobStatus.CHECKED, JobStatus.AWAITING_APPROVAL):
            await self._store.set_job_status(
                job_id, JobStatus.DISCARDED, now, only_from=(JobStatus.CHECKED, JobStatus.AWAITING_APPROVAL)
            )
        elif job.status is JobStatus.RUNNING:
            await self._store.set_job_status(job_id, JobStatus.CANCELLING, now, only_from=(JobStatus.RUNNING,))
        await self._auditor.record(
            AuditAction.ISSUE if job.kind is BulkKind.ISSUE else AuditAction.REVOKE,
            AuditOutcome.NOTHING_TO_DO,
            caller,
            target=f"bulk job {job.id}",
            detail="cancelled by the requester",
        )
        return await self._job(job_id)

    async def job(self, job_id: int) -> BulkJob | None:
        return await self._store.job(job_id)

    async def counts(self, job_id: int) -> dict[RowState, int]:
        return await self._store.row_counts(job_id)

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[BulkRow]:
        return await self._store.rows(job_id, states)

    async def active_jobs(self) -> list[BulkJob]:
        return await self._store.active_jobs()

    async def claim(self, job_id: int, replica: str, lease: timedelta) -> bool:
        """Takes or renews the right to run the job; False while another replica holds it."""
        return await self._store.claim_job(job_id, replica, self._clock.now(), lease)

    async def release(self, job_id: int, replica: str) -> None:
        await self._store.release_job(job_id, replica)

    async def _own_job(self, caller: Caller, job_id: int) -> BulkJob:
        job = await self._store.job(job_id)
        if job is None:
            raise UnknownJob(job_id)
        if job.requester.object_id.lower() != caller.object_id.lower():
            raise NotYourJob()
        return job

    async def _job(self, job_id: int) -> BulkJob:
        job = await self._store.job(job_id)
        if job is None:
            raise UnknownJob(job_id)
        return job

    # --- running ------------------------------------------------------------------------------------------

    async def run(self, job_id: int, sink: BulkSink) -> BulkJob:
        """Runs (or resumes) a job to its end. Safe to call again after a crash: the journal says where it was."""
        return await _JobRun(self, await self._job(job_id), sink).run()


class _JobRun:
    """One execution of a job: workers under an adaptive limit, pages of results, progress, cancel."""

    def __init__(self, service: BulkService, job: BulkJob, sink: BulkSink) -> None:
        self._service = service
        self._store = service._store
        self._tap = service._tap
        self._clock = service._clock
        self._job = job
        self._sink = sink
        self._limiter = AdaptiveLimiter(initial=4, maximum=MAX_WORKERS)
        self._queue: asyncio.Queue[BulkRow] = asyncio.Queue()
        self._page: list[tuple[BulkRow, IssuedPass]] = []
        self._page_lock = asyncio.Lock()
        self._counts: Counter[RowState] = Counter()
        self._total = 0
        self._done_at_start = 0
        self._done = 0
        self._started = time.monotonic()
        self._last_progress = 0.0
        self._cancelled = False
        self._last_cancel_check = 0.0
        self._requester = Caller(job.requester.object_id, job.requester.tenant_id, job.requester.name, job.requester)

    async def run(self) -> BulkJob:
        job = self._job
        counts = await self._store.row_counts(job.id)
        self._total = sum(counts.values())
        unfinished = await self._store.rows(job.id, UNFINISHED_RUN_STATES)
        # A row caught mid-create (or created but not yet shown) lost its pass value: a fresh create replaces it.
        resumed = [row.moved(RowState.PENDING) for row in unfinished if row.state is not RowState.PENDING]
        if resumed:
            logger.info("bulk job %s resumes %s rows caught mid-flight", job.id, len(resumed))
            await self._store.save_rows(resumed)
        self._counts = Counter({state: n for state, n in counts.items() if state.final})
        self._done_at_start = self._done = sum(self._counts.values())
        for row in unfinished:
            self._queue.put_nowait(row.moved(RowState.PENDING))
        workers = [asyncio.create_task(self._worker()) for _ in range(min(MAX_WORKERS, max(1, len(unfinished))))]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
        await self._flush_page()
        final_status = JobStatus.CANCELLED if self._cancelled else JobStatus.FINISHED
        if self._cancelled:
            leftovers = await self._store.rows(job.id, (RowState.PENDING,))
            await self._store.save_rows([row.moved(RowState.CANCELLED, reason="Cancelled.") for row in leftovers])
        await self._store.set_job_status(
            job.id, final_status, self._clock.now(), only_from=(JobStatus.RUNNING, JobStatus.CANCELLING)
        )
        finished = await self._store.job(job.id) or job
        await self._sink.finished(finished, await self._store.row_counts(job.id))
        return finished

    async def _worker(self) -> None:
        while not self._queue.empty():
            if await self._cancel_requested():
                return
            await self._limiter.acquire()
            try:
                row = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                await self._limiter.release()
                return
            throttled_for: float | None = None
            try:
                if self._job.kind is BulkKind.ISSUE:
                    await self._issue(row)
                else:
                    await self._revoke(row)
            except Throttled as throttled:
                throttled_for = throttled.retry_after_seconds
                await self._retry_later(row)
            finally:
                await self._limiter.release(throttled_for=throttled_for)
            await self._report()

    async def _issue(self, row: BulkRow) -> None:
        creating = row.moved(RowState.CREATING, attempts=row.attempts + 1)
        await self._store.save_rows([creating])
        user = DirectoryUser(row.user_id or row.target, row.target, row.user_label or row.target)
        try:
            issued = await self._tap.create_checked_pass(
                self._requester,
                user,
                lifetime_minutes=row.lifetime_minutes or 60,
                one_time=row.one_time,
                start_at=row.start_at if row.start_at and row.start_at > self._clock.now() else None,
                existing=None,
                detail=f"bulk job {self._job.id}, line {row.line}",
                max_throttle_wait=timedelta(0),
            )
        except Throttled:
            raise
        except TapError as error:
            await self._finish([creating.moved(RowState.FAILED, reason=error.user_message)])
            return
        created = creating.moved(
            RowState.CREATED, pass_method_id=issued.info.method_id, expires_at=issued.info.expires_at, reason=""
        )
        await self._store.save_rows([created])
        async with self._page_lock:
            self._page.append((created, issued))
            full = len(self._page) >= PAGE_SIZE
        if full:
            await self._flush_page()

    async def _revoke(self, row: BulkRow) -> None:
        revoking = row.moved(RowState.REVOKING, attempts=row.attempts + 1)
        await self._store.save_rows([revoking])
        try:
            current = await self._tap_passes().current_pass(row.user_id or row.target)
            if current is None:
                await self._finish([revoking.moved(RowState.NO_PASS, reason="Holds no pass any more.")])
                return
            await self._tap.revoke_checked_pass(
                self._requester, row.user_id or row.target, current, detail=f"bulk job {self._job.id}, line {row.line}"
            )
        except Throttled:
            raise
        except TapError as error:
            await self._finish([revoking.moved(RowState.FAILED, reason=error.user_message)])
            return
        await self._finish([revoking.moved(RowState.REVOKED, pass_method_id=current.method_id, reason="")])

    def _tap_passes(self) -> PassMethods:
        return self._service._passes

    async def _retry_later(self, row: BulkRow) -> None:
        if row.attempts + 1 >= MAX_THROTTLED_ATTEMPTS:
            await self._finish([row.moved(RowState.FAILED, reason="Microsoft Graph kept throttling; try again later.")])
            return
        pending = row.moved(RowState.PENDING, attempts=row.attempts + 1)
        await self._store.save_rows([pending])
        self._queue.put_nowait(pending)

    async def _flush_page(self) -> None:
        async with self._page_lock:
            page, self._page = self._page, []
        if not page:
            return
        failure = await self._sink.deliver_page(self._job, page)
        if failure is None:
            await self._finish([row.moved(RowState.DELIVERED) for row, _ in page])
            return
        # Nobody saw these passes: revoke them at once.
        undelivered: list[BulkRow] = []
        for row, issued in page:
            try:
                await self._tap.revoke_undelivered(self._requester, issued, failure)
                reason = f"Could not be shown to you ({failure}); the pass was revoked."
            except TapError:
                reason = f"Could not be shown to you ({failure}) nor revoked: revoke it in the Entra admin center."
            undelivered.append(row.moved(RowState.FAILED, reason=reason))
        await self._finish(undelivered)

    async def _finish(self, rows: Iterable[BulkRow]) -> None:
        rows = list(rows)
        await self._store.save_rows(rows)
        for row in rows:
            self._counts[row.state] += 1
        self._done += len(rows)

    async def _cancel_requested(self) -> bool:
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_POLL_SECONDS:
            self._last_cancel_check = now
            job = await self._store.job(self._job.id)
            self._cancelled = job is not None and job.status is JobStatus.CANCELLING
        return self._cancelled

    async def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now
        elapsed = max(now - self._started, 1e-6)
        rate = (self._done - self._done_at_start) / elapsed
        left = self._total - self._done
        await self._sink.progress(
            Progress(
                job=self._job,
                counts=dict(self._counts),
                total=self._total,
                done=self._done,
                rows_per_second=rate,
                seconds_left=left / rate if rate > 0 else None,
                concurrency=self._limiter.limit,
            )
        )


def _file_of(rows: list[BulkRow], *, with_options: bool = True) -> BulkFile:
    """Journal rows as a checked file, so a revoke-by-job or a retry takes the same preflight path as a file."""
    return BulkFile(
        rows=tuple(
            FileRow(row.line, row.user_id or row.target, row.lifetime_minutes, row.one_time, row.start_at)
            if with_options
            else FileRow(row.line, row.user_id or row.target)
            for row in rows
        ),
        duplicates=(),
        problems=(),
        columns=("userPrincipalName",),
    )


async def _each(items: list[T], work: Callable[[T], Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*(work(item) for item in items)))


async def _patiently(limiter: AdaptiveLimiter, work: Callable[[], Awaitable[T]]) -> T:
    """Runs one Graph-bound step under the limiter, waiting out throttling instead of failing the row."""
    for _ in range(MAX_THROTTLED_ATTEMPTS):
        await limiter.acquire()
        try:
            result = await work()
        except Throttled as throttled:
            await limiter.release(throttled_for=throttled.retry_after_seconds)
            continue
        except GraphUnavailable:
            await limiter.release()
            raise
        await limiter.release()
        return result
    raise GraphUnavailable("Microsoft Graph kept throttling the checks; try the file again in a few minutes.")
