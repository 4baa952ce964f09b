"""Bulk jobs before they run: the preflight of a file, confirmation (or a request for approval), and cancel.

A file's `RequestedRow`s are checked with the same rules as a single command and journaled as `JournalRow`s before
anything is written to Graph; confirming queues them (PENDING) and starts the job. The check of an issue file makes no
Graph read per row (the job's snapshot and users read many to a request): who holds a pass, and who would need a
verification, is found by the run under each user's lock, where it must be read anyway. Running it is `bulk_runner.py`
(which replica runs it) and `bulk_row_runner.py` (its rows, one by one).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar, cast

from bot.domain.alerts import AlertKind, AlertSink, SecurityAlert
from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalKind, ApprovalRequest
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor, Subject
from bot.domain.bulk import UNFINISHED_RUN_STATES, BulkJob, BulkKind, BulkStore, JobStatus, JournalRow, RowState
from bot.domain.bulk_file import BulkFile, RequestedRow
from bot.domain.bulk_row_runner import MAX_WORKERS, withdraw_unseen_passes
from bot.domain.commands import MAX_JOB_ID
from bot.domain.eligibility import GRAPH_MAX_LIFETIME_MINUTES, resolve_lifetime, resolve_one_time, start_refusal
from bot.domain.errors import GraphUnavailable, Refused, Rule, TapError, Throttled
from bot.domain.job_snapshot import USERS_PER_READ, Snapshots
from bot.domain.model import Caller, DirectoryUser
from bot.domain.pacer import Lane, lane
from bot.domain.ports import AuditLog, Clock, Directory, PassMethods
from bot.domain.reasons import MAX_REASON_LENGTH, clean_reason
from bot.domain.service import TapService

T = TypeVar("T")
U = TypeVar("U")

MAX_THROTTLED_CHECKS = 12  # a preflight step waits out this many Throttled before the file is refused
# Rows checked at once (a file of thousands is not thousands of coroutines at once): as many as a run works on. The
# pacer (bulk lane, behind the technicians' commands) decides when each of their Graph requests goes.
MAX_CONCURRENT_CHECKS = MAX_WORKERS


@dataclass(frozen=True)
class Checked:
    job: BulkJob
    counts: dict[RowState, int]
    problems: list[JournalRow]
    duplicates: int
    ignored_columns: tuple[str, ...] = ()
    replacing: bool = False  # rows asked for again to replace the passes they hold (Replace these N)


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


class NothingHeld(TapError):
    def __init__(self) -> None:
        super().__init__("No row of this job was skipped for holding a pass; nothing to replace.")


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
        alerts: AlertSink | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._alerts = alerts
        self._sleep = sleep  # waits out a Throttled step's Retry-After; tests pass a fake
        self._tap = tap
        self._directory = directory
        self._passes = passes
        self._store = store
        self._desk = desk
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    # --- preflight ----------------------------------------------------------------------------------------

    async def check_file(
        self,
        caller: Caller,
        kind: BulkKind,
        file: BulkFile,
        file_name: str,
        tz: str,
        *,
        reason: str = "",
        checked_at: datetime | None = None,
    ) -> Checked:
        """Checks every row with the same rules as a single command, before anything is written.

        `reason` is the whole file's reason (the text the file came with): rows without their own reason column
        value take it. A row whose reason breaks the tenant's reason rules is refused with the sentence saying
        what to write; a file reason that breaks them refuses the whole file. `checked_at`: the job's check time
        (the replace switch's cutoff) when it is earlier than now (Replace these N).
        """
        work = lambda: self._check_file(caller, kind, file, file_name, tz, clean_reason(reason), checked_at)  # noqa: E731
        subject = Subject(f"file {file_name}", reason=clean_reason(reason))
        with lane(Lane.BULK):  # every row's checks: bulk work, paced behind the technicians' single commands
            return await self._auditor.audited(kind.action, caller, subject, work)

    async def _check_file(
        self,
        caller: Caller,
        kind: BulkKind,
        file: BulkFile,
        file_name: str,
        tz: str,
        reason: str,
        checked_at: datetime | None = None,
    ) -> Checked:
        await self._tap.require_operator(caller)
        if caller.address is None:
            raise Refused(Rule.UNKNOWN_CALLER, "I can't tell where to send the results; use Microsoft Teams.")
        rules = self._tap.reason_rules
        if reason:
            rules.check(reason)  # a reason given for the whole file must itself be acceptable
        snapshots = Snapshots(self._directory, self._tap.protected_group_ids, self._clock)
        if kind is BulkKind.ISSUE:
            await self._patiently(snapshots.current)  # refuses the file when it cannot be read
        job_stub = BulkJob(
            id=0,
            kind=kind,
            status=JobStatus.CHECKED,
            requester=caller.address,
            file_name=file_name,
            timezone=tz,
            created_at=checked_at or self._clock.now(),
            reason=reason,
        )
        drafts = [_journal_row(row, reason) for row in file.rows]
        checker = self._check_issue_row if kind is BulkKind.ISSUE else self._check_revoke_row
        # Rows whose reason is refused are refused before any Graph read, like the single command.
        problems = {row.line: rules.problem(row.request_reason) for row in drafts}
        users = await self._read_users([row.target for row in drafts if problems[row.line] is None])

        async def check(row: JournalRow) -> JournalRow:
            problem = problems[row.line]
            if problem is not None:
                return row.moved(
                    RowState.REFUSED, reason=problem, request_reason=row.request_reason[:MAX_REASON_LENGTH]
                )
            user = users.get(row.target.lower())
            if user is None:
                return row.moved(RowState.NOT_FOUND, reason="No such user in this tenant.")
            return await self._patiently(lambda: checker(caller, row, user, snapshots))

        checked = await _each(drafts, check)
        checked += [
            JournalRow(
                job_id=0,
                line=problem.line,
                target=problem.text or f"line {problem.line}",
                state=RowState.REFUSED,
                reason=problem.reason,
                request_reason=reason,
            )
            for problem in file.problems
        ]
        checked.sort(key=lambda row: row.line)
        job = await self._store.create_job(job_stub, checked)
        counts = Counter(row.state for row in checked)
        await self._auditor.record(
            kind.action,
            AuditOutcome.NEEDS_CONFIRMATION,
            caller,
            target=f"bulk job {job.id}",
            detail=f"{kind.value} file {file_name} checked: "
            + ", ".join(f"{state.value} {count}" for state, count in sorted(counts.items())),
            reason=reason,
        )
        problems = [row for row in checked if row.state in (RowState.REFUSED, RowState.NOT_FOUND, RowState.NO_PASS)]
        return Checked(job, dict(counts), problems, len(file.duplicates), file.ignored_columns)

    async def check_job_revocation(self, caller: Caller, source_job_id: int, *, reason: str = "") -> Checked:
        """`revoke everything from job N`: the users job N delivered passes to, checked like a revoke file whose
        reason is `reason` (every row takes it, so a missing or unacceptable one refuses the whole revocation)."""
        await self._tap.require_operator(caller)
        self._tap.check_reason(reason)
        source = await self.job(source_job_id)
        if source is None or source.kind is not BulkKind.ISSUE:
            raise UnknownJob(source_job_id)
        delivered = await self._store.rows(source_job_id, (RowState.DELIVERED,))
        file = _file_of(delivered, with_options=False)
        return await self.check_file(
            caller, BulkKind.REVOKE, file, f"job {source_job_id}", source.timezone, reason=reason
        )

    async def check_failed_rows(self, caller: Caller, job_id: int) -> Checked:
        """`Retry failed rows`: the rows job N failed, checked again as a new job of the same kind."""
        job = await self._own_job(caller, job_id)
        failed = await self._store.rows(job_id, (RowState.FAILED,))
        if not failed:
            raise NothingToRetry()
        # The rows keep their own reasons; the job's reason stays the file's.
        return await self.check_file(
            caller, job.kind, _file_of(failed), f"retry of job {job.id}", job.timezone, reason=job.reason
        )

    async def check_held_rows(self, caller: Caller, job_id: int) -> Checked:
        """`Replace these N`: the rows job N skipped because their user held a pass, checked again as a new issue
        job like any file. Its confirm card has the replace switch on; what it may replace is what the final card
        showed: passes created before job N ended, its new job's cutoff (a pass handed over since is skipped again,
        never replaced), read under each user's lock."""
        job = await self._own_job(caller, job_id)
        if job.kind is not BulkKind.ISSUE:
            raise NothingHeld()
        held = await self._store.rows(job_id, (RowState.SKIPPED,))
        if not held:
            raise NothingHeld()
        now = self._clock.now()
        cutoff = min(job.finished_at, now) if job.finished_at is not None else now
        checked = await self.check_file(
            caller,
            job.kind,
            _file_of(held),
            f"passes held in job {job.id}",
            job.timezone,
            reason=job.reason,
            checked_at=cutoff,
        )
        return replace(checked, replacing=True)

    async def _read_users(self, references: list[str]) -> dict[str, DirectoryUser]:
        """The rows' users, USERS_PER_READ to a Graph request: keyed by reference lower-cased, missing when none."""
        unique = list(dict.fromkeys(reference.lower() for reference in references))
        chunks = [unique[start : start + USERS_PER_READ] for start in range(0, len(unique), USERS_PER_READ)]
        found: dict[str, DirectoryUser] = {}
        for answer in await _each(chunks, lambda chunk: self._patiently(lambda: self._directory.find_users(chunk))):
            found.update(answer)
        return found

    async def _patiently(self, work: Callable[[], Awaitable[T]]) -> T:
        """Runs one Graph-bound step; Throttled (the pacer's lane gave up waiting, or Graph kept answering 429
        after the pacer's own retries) is waited out for its Retry-After and the step tried again, a bounded number
        of times, instead of failing the row."""
        for _ in range(MAX_THROTTLED_CHECKS):
            try:
                return await work()
            except Throttled as throttled:
                await self._sleep(max(0.0, throttled.retry_after_seconds))
        raise GraphUnavailable("Microsoft Graph kept throttling the checks; try the file again in a few minutes.")

    async def _check_issue_row(
        self, caller: Caller, row: JournalRow, user: DirectoryUser, snapshots: Snapshots
    ) -> JournalRow:
        """The single command's rules on the job's snapshot, with no Graph read of this row's own: its current pass
        and its methods (a recovery pass needs a verification) are read by the run, under the user's lock."""
        labelled = row.moved(row.state, user_id=user.object_id, user_label=user.label)
        snapshot = await snapshots.current()
        try:
            refusal = await snapshot.refusal(caller, user, self._directory)
            if refusal is not None:
                raise refusal
            lifetime = resolve_lifetime(row.lifetime_minutes, snapshot.policy)
            one_time = resolve_one_time(row.one_time, snapshot.policy)
        except Refused as refusal:
            if refusal.rule in (Rule.ROLE_HOLDER, Rule.PROTECTED_GROUP):
                # Audited like the single command's refusal, which raises the security alert (alerts.RefusalAlerts).
                await self._auditor.record(
                    AuditAction.ISSUE,
                    AuditOutcome.REFUSED,
                    caller,
                    user=user,
                    rule=refusal.rule,
                    detail=f"bulk file line {row.line}: refused in the check before the run",
                    reason=row.request_reason,
                )
            return labelled.moved(
                RowState.REFUSED, reason=refusal.user_message, lifetime_minutes=_storable(row.lifetime_minutes)
            )
        refusal = start_refusal(row.start_at, self._clock.now())
        if refusal is not None:
            return labelled.moved(RowState.REFUSED, reason=refusal.user_message)
        return labelled.moved(RowState.READY, lifetime_minutes=lifetime, one_time=one_time)

    async def _check_revoke_row(
        self, caller: Caller, row: JournalRow, user: DirectoryUser, snapshots: Snapshots
    ) -> JournalRow:
        current = await self._passes.current_pass(user.object_id)
        labelled = row.moved(row.state, user_id=user.object_id, user_label=user.label)
        if current is None:
            return labelled.moved(RowState.NO_PASS, reason="Holds no pass.")
        return labelled.moved(RowState.READY, pass_method_id=current.method_id)

    # --- confirmation, approval, cancel -------------------------------------------------------------------

    async def confirm(self, caller: Caller, job_id: int, *, replace_existing: bool) -> Started | WaitingForApproval:
        """Queues the checked rows and starts the job (or asks for approval). `replace_existing`: the run may replace
        a live pass a row's user holds if it was created before the file was checked (`job.created_at`); any other
        live pass skips the row. (HOLDS_PASS rows come from jobs checked before the run read the passes itself.)"""
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
                request_reason=_job_reason(job, queued),
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
            job.kind.action,
            AuditOutcome.SUCCEEDED,
            caller,
            target=f"bulk job {job.id}",
            detail=f"started: {to_run} rows"
            + (", replacing passes created before the file was checked" if replace_existing else ""),
            reason=job.reason,
        )
        return Started(await self._job(job_id))

    def _four_eyes_reasons(self, job: BulkJob, pending: list[JournalRow]) -> list[str]:
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
        job = await self._job(job_id)
        await self._alert_if_large(job, request)
        return job

    async def _alert_if_large(self, job: BulkJob, request: ApprovalRequest) -> None:
        """A run above the bulk approval threshold starts: the security channel hears of it (issue 12 item 3)."""
        threshold = self._desk.rules.bulk_row_threshold
        if self._alerts is None or threshold is None or job.kind is not BulkKind.ISSUE:
            return
        rows = len(await self._store.rows(job.id, (RowState.PENDING,)))
        if rows <= threshold:
            return
        requester = request.requester
        approver = request.decided_by_name or request.decided_by_id or "an operator"
        await self._alerts.raise_alert(
            SecurityAlert(
                kind=AlertKind.BULK_ABOVE_THRESHOLD,
                at=self._clock.now(),
                actor_id=requester.object_id,
                actor_label=requester.name,
                target_id=None,
                target_label=f"job {job.id} ({job.file_name})",
                summary=f"Bulk job {job.id} started: {rows} passes from {job.file_name}, above the {threshold}-row "
                f"limit for one operator; requested by {requester.name or requester.object_id}, approved by "
                f"{approver}.",
                tenant_id=requester.tenant_id,
            )
        )

    async def cancel(self, caller: Caller, job_id: int) -> BulkJob:
        job = await self._own_job(caller, job_id)
        now = self._clock.now()
        if job.status is JobStatus.WAITING_SIGN_IN and await self._end_waiting(job, "Cancelled."):
            job = await self._job(job_id)
        if job.status in (JobStatus.CHECKED, JobStatus.AWAITING_APPROVAL):
            await self._store.set_job_status(
                job_id, JobStatus.DISCARDED, now, only_from=(JobStatus.CHECKED, JobStatus.AWAITING_APPROVAL)
            )
        elif job.status in (JobStatus.RUNNING, JobStatus.WAITING_SIGN_IN):
            # Waiting, but resumed meanwhile (the status moved under us): the running job stops at its next row.
            await self._store.set_job_status(job_id, JobStatus.CANCELLING, now, only_from=(JobStatus.RUNNING,))
        await self._auditor.record(
            job.kind.action,
            AuditOutcome.NOTHING_TO_DO,
            caller,
            target=f"bulk job {job.id}",
            detail="cancelled by the requester",
        )
        return await self._job(job_id)

    # --- a run paused for its requester's sign-in (delegated writes) -----------------------------------------

    async def resume(self, caller: Caller, job_id: int) -> BulkJob | None:
        """The requester signed in again: their paused job runs again (None when it no longer waits). Every rule is
        checked again by the run, from its start, as for any run."""
        job = await self._own_job(caller, job_id)
        if job.status is not JobStatus.WAITING_SIGN_IN:
            return None
        if not await self._store.set_job_status(
            job_id, JobStatus.RUNNING, self._clock.now(), only_from=(JobStatus.WAITING_SIGN_IN,)
        ):
            return None
        pending = len(await self._store.rows(job_id, UNFINISHED_RUN_STATES))
        await self._auditor.record(
            job.kind.action,
            AuditOutcome.SUCCEEDED,
            caller,
            target=f"bulk job {job.id}",
            detail=f"resumed after the requester signed in again: {pending} rows",
            reason=job.reason,
        )
        return await self._job(job_id)

    @property
    def sign_in_patience(self) -> timedelta:
        """How long a paused job waits for its requester's sign-in: as long as an approval request waits for a
        decision (TAPBOT_APPROVAL_REQUEST_HOURS, 24 by default); then it is cancelled."""
        return self._desk.rules.request_lifetime

    async def expire_waiting(self) -> list[BulkJob]:
        """Housekeeping: cancels every job that has waited longer than `sign_in_patience` for its requester's
        sign-in; returns them (the edge tells the requester)."""
        now = self._clock.now()
        ended: list[BulkJob] = []
        for job in await self._store.jobs_waiting_sign_in():
            if job.paused_at is None or now - job.paused_at < self.sign_in_patience:
                continue
            reason = f"Not run: you did not sign in again within {_duration(self.sign_in_patience)} of the pause."
            if not await self._end_waiting(job, reason):
                continue
            await self._auditor.record(
                job.kind.action,
                AuditOutcome.NOTHING_TO_DO,
                job.requester_caller,
                target=f"bulk job {job.id}",
                detail=f"cancelled: its requester did not sign in again within {_duration(self.sign_in_patience)}",
            )
            ended.append(await self._job(job.id))
        return ended

    async def _end_waiting(self, job: BulkJob, reason: str) -> bool:
        """A paused job ends cancelled, its waiting rows with `reason`; False when it no longer waited."""
        if not await self._store.set_job_status(
            job.id, JobStatus.CANCELLED, self._clock.now(), only_from=(JobStatus.WAITING_SIGN_IN,)
        ):
            return False
        waiting = await self._store.rows(job.id, UNFINISHED_RUN_STATES)
        # Rows a crashed run left mid-create are still CREATING: no run will show or replace their passes now.
        await withdraw_unseen_passes(
            job,
            waiting,
            caught={row.line for row in waiting if row.state is RowState.CREATING},
            created_by=job.paused_at or self._clock.now(),  # nothing of the job was created after its pause
            requester=job.requester_caller,
            tap=self._tap,
            passes=self._passes,
            clock=self._clock,
        )
        await self._store.save_rows([row.moved(RowState.CANCELLED, reason=reason) for row in waiting])
        return True

    # --- what the Teams edge reads and remembers ----------------------------------------------------------

    async def job(self, job_id: int) -> BulkJob | None:
        if not 0 < job_id <= MAX_JOB_ID:  # a number from a button or a command that no job can have
            return None
        return await self._store.job(job_id)

    async def counts(self, job_id: int) -> dict[RowState, int]:
        return await self._store.row_counts(job_id)

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[JournalRow]:
        return await self._store.rows(job_id, states)

    async def remember_progress_card(
        self, job_id: int, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        """Where the job's progress card is, so the runner (on any replica) updates it in place."""
        await self._store.set_job_progress_card(job_id, service_url, conversation_id, activity_id)

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


def _duration(span: timedelta) -> str:
    """'24 hours', '1 hour', '90 minutes'."""
    minutes = round(span.total_seconds() / 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _storable(lifetime_minutes: int | None) -> int | None:
    """A lifetime the journal can hold: one beyond Graph's maximum was refused and is not worth keeping."""
    if lifetime_minutes is None or lifetime_minutes > GRAPH_MAX_LIFETIME_MINUTES:
        return None
    return lifetime_minutes


def _job_reason(job: BulkJob, rows: list[JournalRow]) -> str:
    """What an approver reads as the run's reason: the file's, else the rows' own reasons (the first few)."""
    if job.reason:
        return job.reason
    distinct = list(dict.fromkeys(row.request_reason for row in rows if row.request_reason))
    summary = "; ".join(distinct[:3]) + (f"; and {len(distinct) - 3} more" if len(distinct) > 3 else "")
    return summary if len(summary) <= MAX_REASON_LENGTH else summary[: MAX_REASON_LENGTH - 1] + "…"


def _journal_row(requested: RequestedRow, file_reason: str) -> JournalRow:
    """A requested row as the journal starts it: ready, until its check says otherwise; its reason is its own or
    else the file's."""
    return JournalRow(
        job_id=0,
        line=requested.line,
        target=requested.target,
        state=RowState.READY,
        lifetime_minutes=requested.lifetime_minutes,
        one_time=bool(requested.one_time),
        start_at=requested.start_at,
        request_reason=requested.reason or file_reason,
    )


def _file_of(rows: list[JournalRow], *, with_options: bool = True) -> BulkFile:
    """Journal rows asked for again, so a revoke-by-job or a retry takes the same preflight path as a file."""
    return BulkFile(
        rows=tuple(
            RequestedRow(
                line=row.line,
                target=row.user_id or row.target,
                lifetime_minutes=row.lifetime_minutes,
                one_time=row.one_time,
                start_at=row.start_at,
                reason=row.request_reason,
            )
            if with_options
            else RequestedRow(line=row.line, target=row.user_id or row.target)
            for row in rows
        ),
        duplicates=(),
        problems=(),
        columns=("userPrincipalName",),
    )


async def _each(items: list[T], work: Callable[[T], Awaitable[U]]) -> list[U]:
    """`work` on every item, at most MAX_CONCURRENT_CHECKS at a time; the results in the items' order."""
    results: list[U | None] = [None] * len(items)
    next_index = iter(range(len(items)))

    async def worker() -> None:
        for index in next_index:  # shared: each index is taken by one worker
            results[index] = await work(items[index])

    workers = [asyncio.ensure_future(worker()) for _ in range(min(MAX_CONCURRENT_CHECKS, len(items)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:  # one step failed the file (or the turn ended): the others stop too
            task.cancel()
    return cast(list[U], results)
