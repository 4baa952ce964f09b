"""One in-memory world for the domain's services: fakes for Graph, the stores and the audit log, the services wired
as the app factory wires them, and a fake stopwatch for the bulk runner (nothing waits in real time)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalRules, ApprovalsChannel
from bot.domain.audit import AuditOutcome
from bot.domain.bulk import BulkJob, BulkKind, IssuedRow, Progress, RowState
from bot.domain.bulk_file import BulkFile, RequestedRow
from bot.domain.bulk_row_runner import RunTiming
from bot.domain.bulk_runner import BulkRunner
from bot.domain.bulk_service import BulkService
from bot.domain.decisions import DecisionService
from bot.domain.follow_through import RegisteredMethod, UserMethods
from bot.domain.model import Caller, DirectoryUser, Recipient
from bot.domain.onboarding import OnboardingDefaults, OnboardingService
from tests.fakes import (
    ADELE,
    ALEX,
    LEE,
    MEGAN,
    OPERATORS,
    STAFF,
    TENANT,
    FakeDirectory,
    FakePasses,
    FixedClock,
    MemoryApprovals,
    MemoryAudit,
    MemoryBulkStore,
    MemoryTargetLocks,
    RecordedAlerts,
    tap_service,
)

__all__ = ["ADELE", "ALEX", "LEE", "MEGAN", "STAFF", "Sink", "Stopwatch", "World", "address", "caller", "rows_for"]


def address(user: DirectoryUser) -> Recipient:
    return Recipient(user.object_id, TENANT, user.display_name, f"29:{user.object_id}", "https://connector", "28:bot")


def caller(user: DirectoryUser) -> Caller:
    return Caller(user.object_id, TENANT, user.display_name, address(user))


class Sink:
    """The requester's chat, as the runner sees it: pages shown (or refused), progress, the end."""

    def __init__(self, *, raise_on_page: bool = False, refuse_pages: str | None = None) -> None:
        self.pages: list[list[IssuedRow]] = []
        self.raise_on_page = raise_on_page
        self.refuse_pages = refuse_pages
        self.progress_reports: list[Progress] = []
        self.ends: list[dict[RowState, int]] = []
        self.pauses: list[Progress] = []

    async def deliver_page(self, job: BulkJob, page: list[IssuedRow]) -> str | None:
        if self.raise_on_page:
            raise OverflowError("date value out of range")  # what rendering a start near 9999 did
        if self.refuse_pages is not None:
            return self.refuse_pages
        self.pages.append(page)
        return None

    async def progress(self, progress: Progress) -> None:
        self.progress_reports.append(progress)

    async def finished(self, job: BulkJob, counts: dict[RowState, int]) -> None:
        self.ends.append(counts)

    async def waiting_sign_in(self, progress: Progress) -> None:
        self.pauses.append(progress)


class Stopwatch:
    """The runner's monotonic clock: it moves only when a test (or the runner's own pause) moves it."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.seconds += seconds
        await asyncio.sleep(0)


class FakeMethods:
    """The methods list of the fake tenant (GET /users/{id}/authentication/methods): the directory's methods and the
    pass, in one read; `reads` counts them."""

    def __init__(self, directory: FakeDirectory, passes: FakePasses) -> None:
        self._directory = directory
        self._passes = passes
        self.reads = 0

    async def methods_and_pass(self, user_id: str, *, confirm_missing_pass: bool = True) -> UserMethods:
        self.reads += 1
        kinds = await self._directory.sign_in_methods(user_id)
        methods = tuple(RegisteredMethod(f"{user_id}-{index}", kind, None) for index, kind in enumerate(kinds))
        return UserMethods(methods, self._passes.passes.get(user_id))


class World:
    def __init__(self, rules: ApprovalRules | None = None) -> None:
        self.clock = FixedClock()
        self.stopwatch = Stopwatch()
        self.directory = FakeDirectory()
        self.passes = FakePasses(self.clock)
        self.methods = FakeMethods(self.directory, self.passes)
        self.audit = MemoryAudit()
        self.locks = MemoryTargetLocks()
        self.approvals = MemoryApprovals()
        self.jobs = MemoryBulkStore()
        self.alerts = RecordedAlerts()
        for operator in (ADELE, ALEX):
            self.directory.add(operator, OPERATORS)
        for user in (MEGAN, LEE, *STAFF):
            self.directory.add(user)
        self.directory.managers[LEE.object_id] = MEGAN.object_id
        self.desk = ApprovalDesk(
            store=self.approvals,
            rules=rules or ApprovalRules(lifetime_threshold_minutes=240, bulk_row_threshold=None),
            clock=self.clock,
            audit=self.audit,
        )
        self.tap = tap_service(
            directory=self.directory,
            passes=self.passes,
            audit=self.audit,
            clock=self.clock,
            locks=self.locks,
            approval_gate=self.desk,
            alerts=self.alerts,
        )
        self.onboarding = OnboardingService(
            tap=self.tap,
            directory=self.directory,
            desk=self.desk,
            defaults=OnboardingDefaults(None, False, 8, ZoneInfo("UTC")),
            clock=self.clock,
            audit=self.audit,
        )
        self.decisions = DecisionService(
            tap=self.tap,
            onboarding=self.onboarding,
            desk=self.desk,
            store=self.approvals,
            clock=self.clock,
            audit=self.audit,
        )
        self.bulk = BulkService(
            tap=self.tap,
            directory=self.directory,
            passes=self.passes,
            store=self.jobs,
            desk=self.desk,
            clock=self.clock,
            audit=self.audit,
            sleep=self.stopwatch.sleep,
        )
        self.runner = BulkRunner(
            tap=self.tap,
            directory=self.directory,
            passes=self.passes,
            methods=self.methods,
            store=self.jobs,
            clock=self.clock,
            audit=self.audit,
            replica="replica-a",
            lease=timedelta(seconds=30),
            timing=RunTiming(monotonic=self.stopwatch.monotonic, sleep=self.stopwatch.sleep),
        )

    async def open_channel(self) -> None:
        channel = ApprovalsChannel("https://connector", "19:approvals", TENANT, ADELE.object_id, self.clock.now())
        await self.approvals.save_approvals_channel(channel)

    def remove_operator(self, user: DirectoryUser) -> None:
        self.directory.groups[OPERATORS].discard(user.object_id)

    def events(self, outcome: AuditOutcome) -> list[str]:
        return [f"{event.action.value}:{event.rule}" for event in self.audit.events if event.outcome is outcome]

    async def checked_job(self, rows: list[RequestedRow], kind: BulkKind = BulkKind.ISSUE) -> int:
        file = BulkFile(rows=tuple(rows), duplicates=(), problems=(), columns=("userPrincipalName", "lifetime"))
        checked = await self.bulk.check_file(caller(ADELE), kind, file, "users.csv", "UTC")
        return checked.job.id


def rows_for(users: list[DirectoryUser], *, lifetime_minutes: int | None = None) -> list[RequestedRow]:
    """One requested row per user, numbered from line 2 like a file with a header line."""
    return [
        RequestedRow(line=line, target=user.object_id, lifetime_minutes=lifetime_minutes)
        for line, user in enumerate(users, start=2)
    ]
