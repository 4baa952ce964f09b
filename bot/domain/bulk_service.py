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
from bot.domain.commands import MAX_JOB_ID
from bot.domain.eligibility import GRAPH_MAX_LIFETIME_MINUTES, resolve_lifetime, resolve_one_time, start_refusal
from bot.domain.errors import GraphUnavailable, Refused, Rule, TapError, TargetBusy, Throttled
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassInfo, TapPolicy
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
# A running job reads the requester's operator membership when it starts (or resumes, or is adopted) and again at
# most this often while it runs; a removed operator's job stops within this window. Targets are checked per row.
OPERATOR_RECHECK_SECONDS = 30.0
NO_LONGER_OPERATOR = "You are no longer a TAP operator (a member of the IT operator group)."


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
        source = await self.job(source_job_id)
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
            return labelled.moved(
                RowState.REFUSED, reason=refusal.user_message, lifetime_minutes=_storable(row.lifetime_minutes)
            )
        refusal = start_refusal(row.start_at, self._clock.now())
        if refusal is not None:
            return labelled.moved(RowState.REFUSED, reason=refusal.user_message)
        existing = check.existing
        if existing is not None and existing.is_live(self._clock.now()):
            # The pass shown here is the only one the replace switch may replace when the job runs.
            return labelled.moved(
                RowState.HOLDS_PASS,
                lifetime_minutes=lifetime,
                one_time=one_time,
                pass_method_id=existing.method_id,
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
        await self._tap.require_operator(caller)  # the right may have gone since the preflight
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
        reasons = self._four_eyes_reasons(job, [row for row in queued if row.state is RowState.PENDING])
        if reasons:
            request = await self._desk.open_request(
                ApprovalKind.BULK,
                caller,
                DirectoryUser(f"job:{job.id}", f"job-{job.id}", f"{to_run} users from {job.file_name} (job {job.id})"),
                start_at=None,
                lifetime_minutes=max((row.lifetime_minutes or 0) for row in queued) or 60,
                one_time=all(row.one_time for row in queued),
                reason=" ".join(reasons),
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

    def _four_eyes_reasons(self, job: BulkJob, pending: list[BulkRow]) -> list[str]:
        """Why this run needs a second operator: every rule a single pass obeys, a bulk row obeys too."""
        if job.kind is not BulkKind.ISSUE:
            return []
        rules = self._desk.rules
        reasons: list[str] = []
        if rules.bulk_row_threshold is not None and len(pending) > rules.bulk_row_threshold:
            reasons.append(
                f"Bulk run of {len(pending)} passes is above the {rules.bulk_row_threshold}-row limit for one operator."
            )
        long = [row.lifetime_minutes or 0 for row in pending if rules.long_lifetime(row.lifetime_minutes or 0)]
        if long:
            reasons.append(
                f"{len(long)} of its passes last longer than the {rules.lifetime_threshold_minutes}-minute lifetime "
                f"limit for one operator (the longest {max(long)} minutes)."
            )
        return reasons

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
        if not 0 < job_id <= MAX_JOB_ID:  # a number from a button or a command that no job can have
            return None
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
        job = await self.job(job_id)
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
    """One execution of a job: workers under an adaptive limit, pages of results, progress, cancel.

    The world is checked again when the run acts, not only at preflight: the requester's right at the start (also
    of a resumed or adopted run) and then at most every OPERATOR_RECHECK_SECONDS, each target's eligibility and
    current pass for every row, under that user's lock.
    """

    def __init__(self, service: BulkService, job: BulkJob, sink: BulkSink) -> None:
        self._service = service
        self._store = service._store
        self._tap = service._tap
        self._clock = service._clock
        self._auditor = service._auditor
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
        self._policy: TapPolicy | None = None
        self._right_checked_at: float | None = None
        self._right_lost = False
        self._caught_mid_create: set[int] = set()

    async def run(self) -> BulkJob:
        job = self._job
        counts = await self._store.row_counts(job.id)
        self._total = sum(counts.values())
        unfinished = await self._store.rows(job.id, UNFINISHED_RUN_STATES)
        # A row caught mid-create (or created but not yet shown) lost its pass value: a fresh create replaces it.
        resumed = [row.moved(RowState.PENDING) for row in unfinished if row.state is not RowState.PENDING]
        self._caught_mid_create = {row.line for row in unfinished if row.state is RowState.CREATING}
        if resumed:
            logger.info("bulk job %s resumes %s rows caught mid-flight", job.id, len(resumed))
            await self._store.save_rows(resumed)
        self._counts = Counter({state: n for state, n in counts.items() if state.final})
        self._done_at_start = self._done = sum(self._counts.values())
        if unfinished and await self._requester_may_act():
            if job.kind is BulkKind.ISSUE:
                self._policy = await self._service._directory.tap_policy()  # once per run start
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
        leftovers = await self._store.rows(job.id, (RowState.PENDING,))
        if self._right_lost:
            await self._finish([row.moved(RowState.FAILED, reason=NO_LONGER_OPERATOR) for row in leftovers])
        elif self._cancelled:
            await self._store.save_rows([row.moved(RowState.CANCELLED, reason="Cancelled.") for row in leftovers])
        await self._store.set_job_status(
            job.id, final_status, self._clock.now(), only_from=(JobStatus.RUNNING, JobStatus.CANCELLING)
        )
        finished = await self._store.job(job.id) or job
        await self._sink.finished(finished, await self._store.row_counts(job.id))
        return finished

    async def _requester_may_act(self) -> bool:
        """Whether the requester is still an operator: read at the start, then at most every 30 seconds."""
        if self._right_lost:
            return False
        now = time.monotonic()
        if self._right_checked_at is not None and now - self._right_checked_at < OPERATOR_RECHECK_SECONDS:
            return True
        if await self._tap.is_operator(self._requester):
            self._right_checked_at = now
            return True
        self._right_lost = True
        await self._auditor.record(
            AuditAction.ISSUE if self._job.kind is BulkKind.ISSUE else AuditAction.REVOKE,
            AuditOutcome.REFUSED,
            self._requester,
            target=f"bulk job {self._job.id}",
            rule=Rule.NOT_OPERATOR,
            detail="the requester is no longer a TAP operator: the rows not yet run were stopped",
        )
        return False

    async def _worker(self) -> None:
        while not self._queue.empty():
            if await self._cancel_requested() or self._right_lost:
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
            except TargetBusy:
                await asyncio.sleep(CANCEL_POLL_SECONDS)
                await self._retry_later(row, gave_up="Another operator kept issuing a pass for this user; try again.")
            finally:
                await self._limiter.release(throttled_for=throttled_for)
            await self._report()

    async def _issue(self, row: BulkRow) -> None:
        creating = row.moved(RowState.CREATING, attempts=row.attempts + 1)
        await self._store.save_rows([creating])
        user = DirectoryUser(row.user_id or row.target, row.target, row.user_label or row.target)
        try:
            if not await self._requester_may_act():
                await self._finish([creating.moved(RowState.FAILED, reason=NO_LONGER_OPERATOR)])
                return
            async with self._tap.target_lock(user):
                issued = await self._create_checked(creating, user)
            if issued is None:
                await self._finish([creating.moved(RowState.FAILED, reason="No such user in this tenant any more.")])
                return
        except (Throttled, TargetBusy):
            raise
        except Refused as refusal:
            await self._auditor.record(
                AuditAction.ISSUE,
                AuditOutcome.REFUSED,
                self._requester,
                user=user,
                target=row.target,
                rule=refusal.rule,
                detail=f"bulk job {self._job.id}, line {row.line}: checked again when issuing",
            )
            await self._finish([creating.moved(RowState.FAILED, reason=refusal.user_message)])
            return
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

    async def _create_checked(self, row: BulkRow, known: DirectoryUser) -> IssuedPass | None:
        """Every rule of a single pass, as of now, for this row's user (read afresh); then the create. Runs under
        the user's lock. None when the user no longer exists."""
        assert self._policy is not None  # read when the run started
        found = await self._tap.check_target_by_id(self._requester, known.object_id, policy=self._policy)
        if found is None:
            return None
        user, check = found
        lifetime = resolve_lifetime(row.lifetime_minutes, check.policy)
        one_time = resolve_one_time(row.one_time, check.policy)
        now = self._clock.now()
        existing = check.existing
        if existing is not None and existing.is_live(now) and not self._may_replace(row, existing):
            raise Refused(
                Rule.EXISTING_PASS,
                f"Holds a pass created {existing.created_at:%Y-%m-%d %H:%M} UTC that this job was not asked to "
                "replace; use /tap issue for this user to replace it.",
            )
        return await self._tap.create_checked_pass(
            self._requester,
            user,
            lifetime_minutes=lifetime,
            one_time=one_time,
            start_at=row.start_at if row.start_at and row.start_at > now else None,
            existing=existing,
            detail=f"bulk job {self._job.id}, line {row.line}",
            max_throttle_wait=timedelta(0),
        )

    def _may_replace(self, row: BulkRow, existing: PassInfo) -> bool:
        """A live pass is replaced only if it is the one the preflight showed (and the operator chose to replace
        those), or this row's own pass from a run that stopped between create and delivery."""
        if row.pass_method_id is not None and row.pass_method_id == existing.method_id:
            return True
        if row.line in self._caught_mid_create:
            # The create may have happened without its id reaching the journal: a pass made since the job started
            # is taken to be that one.
            started = self._job.started_at or self._job.created_at
            return existing.created_at >= started
        return False

    async def _revoke(self, row: BulkRow) -> None:
        revoking = row.moved(RowState.REVOKING, attempts=row.attempts + 1)
        await self._store.save_rows([revoking])
        try:
            # Revoking is always safe for the target: only the requester's right is checked again.
            if not await self._requester_may_act():
                await self._finish([revoking.moved(RowState.FAILED, reason=NO_LONGER_OPERATOR)])
                return
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

    async def _retry_later(
        self, row: BulkRow, *, gave_up: str = "Microsoft Graph kept throttling; try again later."
    ) -> None:
        if row.attempts + 1 >= MAX_THROTTLED_ATTEMPTS:
            await self._finish([row.moved(RowState.FAILED, reason=gave_up)])
            return
        pending = row.moved(RowState.PENDING, attempts=row.attempts + 1)
        await self._store.save_rows([pending])
        self._queue.put_nowait(pending)

    async def _flush_page(self) -> None:
        async with self._page_lock:
            page, self._page = self._page, []
        if not page:
            return
        try:
            failure = await self._sink.deliver_page(self._job, page)
        except Exception:
            # Not one row may stay CREATED: a later round would issue it again. Nobody saw these passes.
            logger.exception("bulk job %s: a results page could not be shown", self._job.id)
            failure = "the results page could not be shown"
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
        progress = Progress(
            job=self._job,
            counts=dict(self._counts),
            total=self._total,
            done=self._done,
            rows_per_second=rate,
            seconds_left=left / rate if rate > 0 else None,
            concurrency=self._limiter.limit,
        )
        try:
            await self._sink.progress(progress)
        except Exception:  # a progress card is news, not state: the run goes on
            logger.warning("bulk job %s: could not show progress", self._job.id, exc_info=True)


def _storable(lifetime_minutes: int | None) -> int | None:
    """A lifetime the journal can hold: one beyond Graph's maximum was refused and is not worth keeping."""
    if lifetime_minutes is None or lifetime_minutes > GRAPH_MAX_LIFETIME_MINUTES:
        return None
    return lifetime_minutes


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
