"""Bulk jobs: many passes issued (or revoked) from one file, checked first, journaled row by row.

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

from bot.domain.model import Recipient


class BulkKind(enum.StrEnum):
    ISSUE = "issue"
    REVOKE = "revoke"


class JobStatus(enum.StrEnum):
    CHECKED = "checked"  # preflight done, waiting for the operator's confirmation
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    CANCELLING = "cancelling"
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


@dataclass(frozen=True)
class BulkRow:
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

    def moved(self, state: RowState, **changes: object) -> BulkRow:
        return replace(self, state=state, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Progress:
    job: BulkJob
    counts: dict[RowState, int]
    total: int
    done: int
    rows_per_second: float
    seconds_left: float | None
    concurrency: int


class BulkStore(Protocol):
    async def create_job(self, job: BulkJob, rows: list[BulkRow]) -> BulkJob:
        """Stores a new job (the store assigns its id) with its checked rows."""
        ...

    async def job(self, job_id: int) -> BulkJob | None: ...

    async def set_job_status(
        self, job_id: int, status: JobStatus, at: datetime, *, only_from: tuple[JobStatus, ...] = ()
    ) -> bool:
        """Moves the job to `status` (only from the given statuses, when any): False if it was elsewhere."""
        ...

    async def set_job_progress_card(
        self, job_id: int, service_url: str, conversation_id: str, activity_id: str
    ) -> None: ...

    async def set_job_options(
        self, job_id: int, *, replace_existing: bool, approval_request_id: str | None = None
    ) -> None: ...

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[BulkRow]: ...

    async def save_rows(self, rows: list[BulkRow]) -> None:
        """Writes the rows' states (and what goes with them) in one transaction."""
        ...

    async def row_counts(self, job_id: int) -> dict[RowState, int]: ...

    async def active_jobs(self) -> list[BulkJob]: ...

    async def claim_job(self, job_id: int, owner: str, now: datetime, lease: timedelta) -> bool: ...

    async def release_job(self, job_id: int, owner: str) -> None: ...
