"""Bulk jobs: many passes issued (or revoked) from one file, checked first, journaled row by row.

A row has one name per stage: `RawRow` (the cells of one line, `bulk_file_reading.py`) → `RequestedRow` (what the
line asks for, `bulk_file.py`) → `JournalRow` (checked, then run: its state in the journal, this module) →
`IssuedRow` (a created row with its pass, in memory only until its results page is shown).

Every row's state is written to SQL before and after each Graph write, so a process killed mid-run resumes
without issuing twice, and a row caught between create and delivery gets a fresh pass: nobody is left holding a
pass that no requester received. Pass values never reach the journal: they live in memory only until the results
page that shows them has been sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.audit import AuditAction
from bot.domain.model import Caller, IssuedPass, Recipient


class BulkKind(enum.StrEnum):
    ISSUE = "issue"
    REVOKE = "revoke"

    @property
    def action(self) -> AuditAction:
        """What the audit log calls a job of this kind."""
        return AuditAction.ISSUE if self is BulkKind.ISSUE else AuditAction.REVOKE


class JobStatus(enum.StrEnum):
    CHECKED = "checked"  # preflight done, waiting for the operator's confirmation
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    CANCELLING = "cancelling"
    # Delegated writes: the requester's sign-in lapsed mid-run. No replica runs it (not `active`) until the requester
    # signs in again (the sign-in resumes it) or cancels; nobody signing in, it is cancelled once it has waited as long
    # as an approval request may (`BulkService.expire_waiting`).
    WAITING_SIGN_IN = "waiting_sign_in"
    CANCELLED = "cancelled"
    FINISHED = "finished"
    DISCARDED = "discarded"  # the operator cancelled before it started

    @property
    def active(self) -> bool:
        return self in (JobStatus.RUNNING, JobStatus.CANCELLING)


class RowState(enum.StrEnum):
    # preflight outcomes
    READY = "ready"
    HOLDS_PASS = "holds_pass"  # ready, but replacing a live pass needs the operator's explicit choice
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    NO_PASS = "no_pass"  # revoke: nothing to revoke
    # run states
    PENDING = "pending"
    CREATING = "creating"
    CREATED = "created"
    DELIVERED = "delivered"
    REVOKING = "revoking"
    REVOKED = "revoked"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {
        RowState.REFUSED,
        RowState.NOT_FOUND,
        RowState.NO_PASS,
        RowState.DELIVERED,
        RowState.REVOKED,
        RowState.FAILED,
        RowState.SKIPPED,
        RowState.CANCELLED,
    }
)
UNFINISHED_RUN_STATES = (RowState.PENDING, RowState.CREATING, RowState.CREATED, RowState.REVOKING)


@dataclass(frozen=True)
class BulkJob:
    id: int
    kind: BulkKind
    status: JobStatus
    requester: Recipient
    file_name: str
    timezone: str
    created_at: datetime
    replace_existing: bool = False
    source_job_id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress_conversation_id: str | None = None
    progress_activity_id: str | None = None
    progress_service_url: str | None = None
    approval_request_id: str | None = None
    reason: str = ""  # one reason for the whole file (the text the file came with); rows may give their own

    @property
    def requester_caller(self) -> Caller:
        """The requester as the caller every check of a run is made for (their identity, kept with the job)."""
        return Caller(self.requester.object_id, self.requester.tenant_id, self.requester.name, self.requester)

    @property
    def paused_at(self) -> datetime | None:
        """When a job waiting for its requester's sign-in stopped running (the journal keeps it as `finished_at`
        while it waits: a run's end, for now)."""
        return self.finished_at if self.status is JobStatus.WAITING_SIGN_IN else None


@dataclass(frozen=True)
class JournalRow:
    """One row of a job as the journal keeps it: its preflight outcome, then its run state. Never a pass value."""

    job_id: int
    line: int
    target: str
    state: RowState
    user_id: str | None = None
    user_label: str | None = None
    lifetime_minutes: int | None = None
    one_time: bool = False
    start_at: datetime | None = None
    reason: str = ""
    pass_method_id: str | None = None
    expires_at: datetime | None = None
    attempts: int = 0
    request_reason: str = ""  # why the pass is wanted: the row's reason column, else the file's; `reason` is the
    # sentence saying why the row was refused or failed

    def moved(self, state: RowState, **changes: object) -> JournalRow:
        return replace(self, state=state, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class IssuedRow:
    """A row whose pass was just created, with the pass: held in memory only, until its results page is shown."""

    row: JournalRow
    issued: IssuedPass


@dataclass(frozen=True)
class Progress:
    job: BulkJob
    counts: dict[RowState, int]
    total: int
    done: int
    rows_per_second: float
    seconds_left: float | None
    concurrency: int


class BulkSink(Protocol):
    """Where a running job reports: the requester's private chat (the Teams edge implements it)."""

    async def deliver_page(self, job: BulkJob, page: list[IssuedRow]) -> str | None:
        """Shows these passes to the requester; returns None when delivered, else a reason safe to show."""
        ...

    async def progress(self, progress: Progress) -> None: ...

    async def finished(self, job: BulkJob, counts: dict[RowState, int]) -> None: ...

    async def waiting_sign_in(self, progress: Progress) -> None:
        """The run paused (`JobStatus.WAITING_SIGN_IN`): the requester's sign-in lapsed and must be renewed."""
        ...


class BulkStore(Protocol):
    async def create_job(self, job: BulkJob, rows: list[JournalRow]) -> BulkJob:
        """Stores a new job (the store assigns its id) with its checked rows."""
        ...

    async def job(self, job_id: int) -> BulkJob | None: ...

    async def set_job_status(
        self, job_id: int, status: JobStatus, at: datetime, *, only_from: tuple[JobStatus, ...] = ()
    ) -> bool:
        """Moves the job to `status` (only from the given statuses, when any): False if it was elsewhere.

        RUNNING keeps the first start (a resumed run is the same job) and clears `finished_at`; an end and
        WAITING_SIGN_IN set `finished_at` to `at`."""
        ...

    async def set_job_progress_card(
        self, job_id: int, service_url: str, conversation_id: str, activity_id: str
    ) -> None: ...

    async def set_job_options(
        self, job_id: int, *, replace_existing: bool, approval_request_id: str | None = None
    ) -> None: ...

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[JournalRow]: ...

    async def save_rows(self, rows: list[JournalRow]) -> None:
        """Writes the rows' states (and what goes with them) in one transaction."""
        ...

    async def row_counts(self, job_id: int) -> dict[RowState, int]: ...

    async def active_jobs(self) -> list[BulkJob]: ...

    async def jobs_waiting_sign_in(self) -> list[BulkJob]:
        """Jobs paused for their requester's sign-in (`JobStatus.WAITING_SIGN_IN`), oldest first."""
        ...

    async def claim_job(self, job_id: int, owner: str, now: datetime, lease: timedelta) -> bool: ...

    async def release_job(self, job_id: int, owner: str) -> None: ...
