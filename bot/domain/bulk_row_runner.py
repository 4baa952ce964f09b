"""The row runner: one execution of a job's rows, from PENDING to DELIVERED (or REVOKED, or FAILED with a reason).

Workers take rows as the pacer lets them (bot/domain/pacer.py: every Graph request is admitted against Graph's
limits, bulk work behind interactive commands); each row is journaled before and after its Graph write; created
passes gather in pages of PAGE_SIZE that go to the sink (the requester's chat) and are marked DELIVERED only once
shown; progress is reported at most every PROGRESS_EVERY_SECONDS; a cancel is noticed within CANCEL_POLL_SECONDS.

The world is checked again when the run acts, not only at preflight: the requester's right at the start (also of a
resumed or adopted run) and then at most every OPERATOR_RECHECK_SECONDS; each target's eligibility by the single
command's rule on the run's JobSnapshot and the user as read in a batch, both at most SNAPSHOT_MAX_AGE old
(job_snapshot.py; every run takes its own); and the target's current pass, read for every row under that user's
lock right before the create: one Graph read, the user's methods list (which holds the pass) when verification is on
(a recovery pass needs a verification, which a bulk run cannot give), else the pass alone.

A live pass found there is replaced only when the operator chose to replace existing passes and it was created before
the file was checked (the passes that existed when the operator looked at the check), or when it is this row's own
pass from a run caught between create and delivery. Any other live pass ends the row SKIPPED, with the pass's
creation time; the final card offers to replace those in a new job.

With delegated writes every row is written with the requester's own token. When none can be had any more
(`SignInRequired`: their sign-in lapsed and the token service cannot renew it) nothing was sent for that row: it goes
back to PENDING, the other workers stop at their next row, the passes already created are shown, and the job waits
in WAITING_SIGN_IN, leased to nobody, until the requester signs in again (`BulkService.resume`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.auditing import Auditor
from bot.domain.bulk import (
    UNFINISHED_RUN_STATES,
    BulkJob,
    BulkKind,
    BulkSink,
    BulkStore,
    IssuedRow,
    JobStatus,
    JournalRow,
    Progress,
    RowState,
)
from bot.domain.eligibility import resolve_lifetime, resolve_one_time
from bot.domain.errors import Refused, Rule, SignInRequired, TapError, TargetBusy, Throttled
from bot.domain.follow_through import UserMethods
from bot.domain.job_snapshot import Snapshots, UserReads
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassInfo, UnseenPass
from bot.domain.ports import Clock, Directory, PassMethods
from bot.domain.service import HeldLock, TapService

logger = logging.getLogger(__name__)

PAGE_SIZE = 50  # passes per results card: well inside Teams' message size budget
PROGRESS_EVERY_SECONDS = 2.0  # Teams allows about one message or update per second and chat; stay below
MAX_WORKERS = 48
MAX_THROTTLED_ATTEMPTS = 12
CANCEL_POLL_SECONDS = 1.0
# A running job reads the requester's operator membership when it starts (or resumes, or is adopted) and again at
# most this often while it runs; a removed operator's job stops within this window. Targets are checked per row.
OPERATOR_RECHECK_SECONDS = 30.0
NO_LONGER_OPERATOR = "You are no longer a TAP operator (a member of the IT operator group)."
# A pass counts as existing when the file was checked only if Graph dates it this much before the check: Graph's clock
# and ours may differ a little (and a date may come in whole seconds); a pass that close is skipped, never replaced.
CHECK_TIME_MARGIN = timedelta(seconds=5)


async def _always_ready() -> None:
    return None


class MethodsAndPass(Protocol):
    async def methods_and_pass(self, user_id: str, *, confirm_missing_pass: bool = True) -> UserMethods:
        """The user's authentication methods and their pass, from one list (GET /users/{id}/authentication/methods);
        `confirm_missing_pass=False`: no pass in the list is no pass (no second read)."""
        ...


class HoldsPass(Exception):
    """The row's user holds a live pass this job may not replace: the row is skipped (`reason`), nothing written."""

    def __init__(self, reason: str, existing: PassInfo) -> None:
        super().__init__(reason)
        self.reason = reason
        self.existing = existing


@dataclass(frozen=True)
class RunTiming:
    """The runner's stopwatch and pause, and the pacer's gate for a new row (`Pacer.ready`: no backlog of bulk
    requests); tests pass fakes, so nothing waits in real time."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    ready: Callable[[], Awaitable[None]] = field(default=_always_ready)


class RowRunner:
    """Runs (or resumes) one job's rows to their end. Safe to run again after a crash: the journal says where it
    was, and a row caught between create and delivery gets a fresh pass (its value was never shown)."""

    def __init__(
        self,
        job: BulkJob,
        sink: BulkSink,
        *,
        tap: TapService,
        directory: Directory,
        passes: PassMethods,
        methods: MethodsAndPass,
        store: BulkStore,
        clock: Clock,
        auditor: Auditor,
        timing: RunTiming,
    ) -> None:
        self._job = job
        self._sink = sink
        self._tap = tap
        self._directory = directory
        self._passes = passes
        self._methods = methods
        self._store = store
        self._clock = clock
        self._auditor = auditor
        self._timing = timing
        self._in_flight = 0
        self._queue: asyncio.Queue[JournalRow] = asyncio.Queue()
        self._page: list[IssuedRow] = []
        self._page_lock = asyncio.Lock()
        self._counts: Counter[RowState] = Counter()
        self._total = 0
        self._done_at_start = 0
        self._done = 0
        self._started = timing.monotonic()
        self._last_progress: float | None = None
        self._cancelled = False
        self._last_cancel_check: float | None = None
        self._requester = job.requester_caller
        self._snapshots = Snapshots(directory, tap.protected_group_ids, clock)
        self._users: UserReads | None = None
        self._right_checked_at: float | None = None
        self._right_lost = False
        self._sign_in_lost = False
        self.paused: Progress | None = None  # where the run stopped, when it paused for the requester's sign-in
        self._caught_mid_create: set[int] = set()
        self._began_at: datetime | None = None  # when this run took the job over

    async def run(self) -> BulkJob:
        job = self._job
        self._began_at = self._clock.now()
        counts = await self._store.row_counts(job.id)
        self._total = sum(counts.values())
        unfinished = await self._store.rows(job.id, UNFINISHED_RUN_STATES)
        # A row caught mid-create (or created but not yet shown) lost its pass value: a fresh create replaces it. Its
        # journal entry stays as it is until the row ends (CREATING is saved again whenever it goes back in the
        # queue), so that a run stopping before it reaches the row leaves the next run the same knowledge.
        self._caught_mid_create = {row.line for row in unfinished if row.state is RowState.CREATING}
        resumed = sum(1 for row in unfinished if row.state is not RowState.PENDING)
        if resumed:
            logger.info("bulk job %s resumes %s rows caught mid-flight", job.id, resumed)
        self._counts = Counter({state: n for state, n in counts.items() if state.final})
        self._done_at_start = self._done = sum(self._counts.values())
        if unfinished and await self._requester_may_act():
            # Every run reads its own snapshot and users (an approval-delayed or resumed run too), when first needed.
            self._users = UserReads(self._directory, self._clock, [row.user_id or row.target for row in unfinished])
            for row in unfinished:
                self._queue.put_nowait(row.moved(RowState.PENDING))
            workers = [asyncio.create_task(self._worker()) for _ in range(min(MAX_WORKERS, max(1, len(unfinished))))]
            try:
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()
        await self._flush_page()
        if self._sign_in_lost and not self._right_lost and await self._pause():
            # The sink hears of the pause from the caller (`BulkRunner`), once the lease is given back: the sign-in
            # card it sends can resume the job at once (Teams exchanges the token as it shows the card), maybe on
            # another replica.
            paused = await self._store.job(job.id) or job
            self.paused = self._progress(paused)
            return paused
        final_status = JobStatus.CANCELLED if self._cancelled else JobStatus.FINISHED
        leftovers = await self._store.rows(job.id, UNFINISHED_RUN_STATES)
        if self._right_lost or self._cancelled:
            await self._withdraw_unseen(leftovers)
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
        now = self._timing.monotonic()
        if self._right_checked_at is not None and now - self._right_checked_at < OPERATOR_RECHECK_SECONDS:
            return True
        if await self._tap.is_operator(self._requester):
            self._right_checked_at = now
            return True
        self._right_lost = True
        await self._auditor.record(
            self._job.kind.action,
            AuditOutcome.REFUSED,
            self._requester,
            target=f"bulk job {self._job.id}",
            rule=Rule.NOT_OPERATOR,
            detail="the requester is no longer a TAP operator: the rows not yet run were stopped",
        )
        return False

    async def _worker(self) -> None:
        while not self._queue.empty():
            if await self._cancel_requested() or self._right_lost or self._sign_in_lost:
                return
            # Each Graph request of a row is admitted by the pacer (bulk lane, behind the technicians' commands); a new
            # row starts only while the pacer has no backlog of bulk requests, so rows (each holding its user's
            # lock) do not pile up behind a binding limit.
            await self._timing.ready()
            try:
                row = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._in_flight += 1
            try:
                if self._job.kind is BulkKind.ISSUE:
                    await self._issue(row)
                else:
                    await self._revoke(row)
            except Throttled:
                # The pacer has honoured Retry-After (that limit is closed until then) and retried as long as bulk
                # work may wait; the row goes back in the queue.
                await self._retry_later(row)
            except TargetBusy:
                await self._timing.sleep(CANCEL_POLL_SECONDS)
                await self._retry_later(row, gave_up="Another operator kept issuing a pass for this user; try again.")
            finally:
                self._in_flight -= 1
            await self._report()

    async def _issue(self, row: JournalRow) -> None:
        creating = row.moved(RowState.CREATING, attempts=row.attempts + 1)
        user = DirectoryUser(row.user_id or row.target, row.target, row.user_label or row.target)
        try:
            if not await self._requester_may_act():
                await self._finish([creating.moved(RowState.FAILED, reason=NO_LONGER_OPERATOR)])
                return
            # The row is journaled CREATING in the transaction that takes the user's lock, before any Graph read or
            # write for it; CREATED, with its pass's id, in the pass's audit row transaction (`_create_checked`).
            async with self._tap.target_lock(user, on_taking=lambda: self._store.save_rows([creating])) as held:
                issued = await self._create_checked(creating, user, held)
            if issued is None:
                await self._finish([creating.moved(RowState.FAILED, reason="No such user in this tenant any more.")])
                return
        except (Throttled, TargetBusy):
            raise
        except HoldsPass as holds:
            await self._auditor.record(
                AuditAction.ISSUE,
                AuditOutcome.NOTHING_TO_DO,
                self._requester,
                user=user,
                target=row.target,
                detail=f"bulk job {self._job.id}, line {row.line}: skipped, {holds.reason}",
                reason=row.request_reason,
            )
            await self._finish([creating.moved(RowState.SKIPPED, reason=holds.reason)])
            return
        except SignInRequired:
            await self._wait_for_sign_in(row)
            return
        except Refused as refusal:
            await self._auditor.record(
                AuditAction.ISSUE,
                AuditOutcome.REFUSED,
                self._requester,
                user=user,
                target=row.target,
                rule=refusal.rule,
                detail=f"bulk job {self._job.id}, line {row.line}: checked again when issuing",
                reason=row.request_reason,
            )
            await self._finish([creating.moved(RowState.FAILED, reason=refusal.user_message)])
            return
        except TapError as error:
            await self._audit_failure(AuditAction.ISSUE, row, error, user=user)
            await self._finish([creating.moved(RowState.FAILED, reason=error.user_message)])
            return
        async with self._page_lock:
            self._page.append(IssuedRow(row=_created(creating, issued), issued=issued))
            full = len(self._page) >= PAGE_SIZE
        if full:
            await self._flush_page()

    async def _create_checked(self, row: JournalRow, known: DirectoryUser, lock: HeldLock) -> IssuedPass | None:
        """Every rule of a single pass for this row's user, on facts at most SNAPSHOT_MAX_AGE old (the user as read
        in a batch, the job's snapshot), and one Graph read now: the user's methods and pass (verification on) or
        the pass; then the create. Runs under the user's lock. None when the user no longer exists."""
        assert self._users is not None  # set when the run started
        user = await self._users.user(known.object_id)
        if user is None:
            return None
        snapshot = await self._snapshots.current()
        refusal = await snapshot.refusal(self._requester, user, self._directory)
        if refusal is not None:
            raise refusal
        verification = self._tap.verification
        if verification is not None:
            # One list holds both: the methods that make this a recovery pass, and the pass a create would replace.
            read = await self._methods.methods_and_pass(user.object_id, confirm_missing_pass=False)
            existing = read.current_pass
            refusal = await verification.bulk_refusal(user, methods=tuple(method.odata_type for method in read.methods))
            if refusal is not None:
                raise refusal
        else:
            existing = await self._passes.current_pass(user.object_id)
        lifetime = resolve_lifetime(row.lifetime_minutes, snapshot.policy)
        one_time = resolve_one_time(row.one_time, snapshot.policy)
        now = self._clock.now()
        if existing is not None and existing.is_live(now) and not await self._may_replace(row, existing):
            raise HoldsPass(self._holds_pass_reason(existing), existing)
        return await self._tap.create_checked_pass(
            self._requester,
            user,
            lifetime_minutes=lifetime,
            one_time=one_time,
            start_at=row.start_at if row.start_at and row.start_at > now else None,
            existing=existing,
            detail=f"bulk job {self._job.id}, line {row.line}",
            max_throttle_wait=timedelta(0),
            reason=row.request_reason,
            # The lock is given back and the row journaled CREATED in the audit row's transaction: two SQL
            # transactions fewer per row (on SQLite each is a commit that waits for the disk, one at a time).
            lock=lock,
            on_recorded=lambda issued: self._store.save_rows([_created(row, issued)]),
        )

    async def _may_replace(self, row: JournalRow, existing: PassInfo) -> bool:
        """A live pass is replaced only if the operator chose to replace existing passes and it already existed when
        the file was checked (`created_at` of the job: what the operator looked at), or if it is this row's own pass
        from a run that stopped between create and delivery: never one the audit log records as made by a command
        (another operator's, dated in the window where a row caught mid-create would have its own)."""
        if self._job.replace_existing and existing.created_at < self._job.created_at - CHECK_TIME_MARGIN:
            return True
        if not self._is_own_unseen(row, existing):
            return False
        return existing.method_id == row.pass_method_id or not await self._tap.recorded_as_created(existing.method_id)

    def _is_own_unseen(self, row: JournalRow, existing: PassInfo) -> bool:
        """Whether `existing` is this row's pass from a run that stopped between its create and its results page."""
        return is_own_unseen(self._job, row, existing, self._caught_mid_create, self._began_at or self._clock.now())

    async def _withdraw_unseen(self, rows: Iterable[JournalRow]) -> None:
        """Rows this run will not issue again (its requester lost the right, or the job was cancelled)."""
        await withdraw_unseen_passes(
            self._job,
            rows,
            caught=self._caught_mid_create,
            created_by=self._began_at or self._clock.now(),
            requester=self._requester,
            tap=self._tap,
            passes=self._passes,
            clock=self._clock,
        )

    def _holds_pass_reason(self, existing: PassInfo) -> str:
        created = f"Holds a pass created {existing.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        if existing.created_at >= self._job.created_at - CHECK_TIME_MARGIN:
            checked = f"{self._job.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            return f"{created}, at or after the time the file was checked ({checked}), so this job did not replace it."
        return f"{created}; you chose not to replace passes users already hold."

    async def _revoke(self, row: JournalRow) -> None:
        revoking = row.moved(RowState.REVOKING, attempts=row.attempts + 1)
        await self._store.save_rows([revoking])
        try:
            # Revoking is always safe for the target: only the requester's right is checked again.
            if not await self._requester_may_act():
                await self._finish([revoking.moved(RowState.FAILED, reason=NO_LONGER_OPERATOR)])
                return
            current = await self._passes.current_pass(row.user_id or row.target)
            if current is None:
                await self._finish([revoking.moved(RowState.NO_PASS, reason="Holds no pass any more.")])
                return
            await self._tap.revoke_checked_pass(
                self._requester,
                row.user_id or row.target,
                current,
                detail=f"bulk job {self._job.id}, line {row.line}",
                reason=row.request_reason,
            )
        except Throttled:
            raise
        except SignInRequired:
            await self._wait_for_sign_in(row)
            return
        except TapError as error:
            await self._audit_failure(AuditAction.REVOKE, row, error)
            await self._finish([revoking.moved(RowState.FAILED, reason=error.user_message)])
            return
        await self._finish([revoking.moved(RowState.REVOKED, pass_method_id=current.method_id, reason="")])

    async def _audit_failure(
        self, action: AuditAction, row: JournalRow, error: TapError, *, user: DirectoryUser | None = None
    ) -> None:
        """A row that failed on Graph's answer (or the lack of one) is audited as a single command's failure is."""
        await self._auditor.record(
            action,
            AuditOutcome.FAILED,
            self._requester,
            user=user,
            target=row.target,
            graph_request_id=getattr(error, "request_id", None),
            detail=f"bulk job {self._job.id}, line {row.line}: {type(error).__name__}",
            reason=row.request_reason,
        )

    async def _wait_for_sign_in(self, row: JournalRow) -> None:
        """The requester's token is gone: nothing was sent for this row, so it waits as it was (PENDING); the
        workers stop taking rows and the run pauses once those in flight are done."""
        self._sign_in_lost = True
        await self._store.save_rows([self._queued(row.moved(RowState.PENDING))])

    async def _pause(self) -> bool:
        """RUNNING → WAITING_SIGN_IN, audited; False when the requester cancelled meanwhile (the run then ends as a
        cancelled one)."""
        if self._cancelled or not await self._store.set_job_status(
            self._job.id, JobStatus.WAITING_SIGN_IN, self._clock.now(), only_from=(JobStatus.RUNNING,)
        ):
            self._cancelled = True
            return False
        waiting = len(await self._store.rows(self._job.id, UNFINISHED_RUN_STATES))
        await self._auditor.record(
            self._job.kind.action,
            AuditOutcome.NOTHING_TO_DO,
            self._requester,
            target=f"bulk job {self._job.id}",
            detail=f"paused: the requester's sign-in lapsed; {waiting} rows wait for them to sign in again",
        )
        return True

    async def _retry_later(
        self, row: JournalRow, *, gave_up: str = "Microsoft Graph kept throttling; try again later."
    ) -> None:
        if row.attempts + 1 >= MAX_THROTTLED_ATTEMPTS:
            await self._auditor.record(
                self._job.kind.action,
                AuditOutcome.FAILED,
                self._requester,
                target=row.target,
                detail=f"bulk job {self._job.id}, line {row.line}: gave up after {row.attempts + 1} attempts",
                reason=row.request_reason,
            )
            await self._finish([row.moved(RowState.FAILED, reason=gave_up)])
            return
        pending = row.moved(RowState.PENDING, attempts=row.attempts + 1)
        await self._store.save_rows([self._queued(pending)])
        self._queue.put_nowait(pending)

    def _queued(self, row: JournalRow) -> JournalRow:
        """A row going back in the queue as journaled: CREATING still for a row caught mid-create (its create may
        have happened), so that the next run knows it too if this one stops first."""
        return row.moved(RowState.CREATING) if row.line in self._caught_mid_create else row

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
            await self._finish([entry.row.moved(RowState.DELIVERED) for entry in page])
            return
        # Nobody saw these passes: revoke them at once.
        undelivered: list[JournalRow] = []
        for entry in page:
            left = await self._tap.revoke_undelivered(self._requester, entry.issued, failure)
            if left is None:
                reason = f"Could not be shown to you ({failure}); the pass was revoked."
            else:  # never reported revoked while it is live
                until = left.info.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
                reason = f"Could not be shown to you ({failure}). {left.sentence(until)}"
            undelivered.append(entry.row.moved(RowState.FAILED, reason=reason))
        await self._finish(undelivered)

    async def _finish(self, rows: Iterable[JournalRow]) -> None:
        rows = list(rows)
        await self._store.save_rows(rows)
        for row in rows:
            self._counts[row.state] += 1
        self._done += len(rows)

    async def _cancel_requested(self) -> bool:
        if self._cancelled:
            return True
        now = self._timing.monotonic()
        if self._last_cancel_check is None or now - self._last_cancel_check >= CANCEL_POLL_SECONDS:
            self._last_cancel_check = now
            job = await self._store.job(self._job.id)
            self._cancelled = job is not None and job.status is JobStatus.CANCELLING
        return self._cancelled

    def _progress(self, job: BulkJob) -> Progress:
        elapsed = max(self._timing.monotonic() - self._started, 1e-6)
        rate = (self._done - self._done_at_start) / elapsed
        left = self._total - self._done
        return Progress(
            job=job,
            counts=dict(self._counts),
            total=self._total,
            done=self._done,
            rows_per_second=rate,
            seconds_left=left / rate if rate > 0 else None,
            concurrency=self._in_flight,
        )

    async def _report(self) -> None:
        now = self._timing.monotonic()
        if self._last_progress is not None and now - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now
        progress = self._progress(self._job)
        try:
            await self._sink.progress(progress)
        except Exception:  # a progress card is news, not state: the run goes on
            logger.warning("bulk job %s: could not show progress", self._job.id, exc_info=True)


def is_own_unseen(
    job: BulkJob, row: JournalRow, existing: PassInfo, caught: Collection[int], created_by: datetime
) -> bool:
    """Whether `existing` is the pass of this row that a stopped run made and never showed: the one its journal names
    (CREATED), or, for a row caught mid-create (`caught`: its create may have happened without its id reaching the
    journal), a pass made since the job started and no later than `created_by` (the take-over of the run that found
    it so, or the pause of the job), never one handed over since."""
    if row.pass_method_id is not None and row.pass_method_id == existing.method_id:
        return True
    if row.line in caught:
        started = job.started_at or job.created_at
        return started <= existing.created_at <= created_by
    return False


async def withdraw_unseen_passes(
    job: BulkJob,
    rows: Iterable[JournalRow],
    *,
    caught: Collection[int],
    created_by: datetime,
    requester: Caller,
    tap: TapService,
    passes: PassMethods,
    clock: Clock,
) -> None:
    """Rows of an issue job that will not run again (cancelled, paused and ended, or their requester no longer an
    operator) whose pass an earlier, stopped run created and never showed: that pass is deleted, as an undelivered
    page's is (a live pass nobody saw is pure risk); one that cannot be is audited, alerted and left to housekeeping
    (`TapService.revoke_undelivered`)."""
    if job.kind is not BulkKind.ISSUE:
        return
    now = clock.now()
    for row in rows:
        if row.line not in caught and row.pass_method_id is None:
            continue
        user = DirectoryUser(row.user_id or row.target, row.target, row.user_label or row.target)
        try:
            existing = await passes.current_pass(user.object_id)
        except TapError as error:
            logger.error(
                "bulk job %s, line %s: the pass a stopped run may have left unseen could not be read (%s)",
                job.id,
                row.line,
                type(error).__name__,
            )
            # Nothing else will look at it again: the security channel is told, as for a pass that could not be
            # deleted (the job's rows end here).
            await tap.alert_unchecked_unseen(requester, user, job.id)
            continue
        if existing is None or not existing.is_live(now) or not is_own_unseen(job, row, existing, caught, created_by):
            continue
        if existing.method_id != row.pass_method_id and await tap.recorded_as_created(existing.method_id):
            # Dated in the window, but audited as created (and shown) by a command: another operator's, kept. The
            # create a stopped run made unseen was never audited (its audit row shares the journal's transaction).
            continue
        await tap.revoke_undelivered(
            requester, UnseenPass(user, existing), "the bulk run that created it stopped before showing it"
        )


def _created(creating: JournalRow, issued: IssuedPass) -> JournalRow:
    return creating.moved(
        RowState.CREATED, pass_method_id=issued.info.method_id, expires_at=issued.info.expires_at, reason=""
    )
