"""In-memory stand-ins for the domain's ports: fast, and they count every write."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.domain.alerts import AlertSink, SecurityAlert
from bot.domain.approvals import ApprovalRequest, ApprovalsChannel, ApprovalStatus
from bot.domain.audit import AuditEvent
from bot.domain.bulk import BulkJob, JobStatus, JournalRow, RowState
from bot.domain.errors import SignInRequired
from bot.domain.model import (
    ALL_USERS,
    Caller,
    DirectoryUser,
    IssuedPass,
    PassInfo,
    PassSecret,
    PolicyTarget,
    TapPolicy,
    TargetType,
    UsabilityReason,
)
from bot.domain.people import name_fits
from bot.domain.ports import PassMethods, TargetReading
from bot.domain.service import AccessRules, ApprovalGate, TapService

TENANT = "11111111-1111-1111-1111-111111111111"
OPERATORS = "22222222-0000-0000-0000-000000000001"
PROTECTED = "22222222-0000-0000-0000-000000000002"
EXCLUDED = "22222222-0000-0000-0000-000000000003"

# The people of the domain tests: two operators, a manager and her new hire, and staff to issue passes for.
ADELE = DirectoryUser("a0000000-0000-0000-0000-00000000000a", "adele@contoso.test", "Adele Vance")
ALEX = DirectoryUser("a1000000-0000-0000-0000-00000000000a", "alex@contoso.test", "Alex Wilber")
MEGAN = DirectoryUser("b0000000-0000-0000-0000-00000000000b", "megan@contoso.test", "Megan Bowen")
LEE = DirectoryUser("c0000000-0000-0000-0000-00000000000c", "lee@contoso.test", "Lee Gu")
STAFF = [
    DirectoryUser(f"d0000000-0000-0000-0000-00000000000{n}", f"user{n}@contoso.test", f"User {n}") for n in range(5)
]


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 26, 13, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def tap_service(
    *,
    directory: FakeDirectory,
    passes: FakePasses,
    audit: MemoryAudit,
    clock: FixedClock,
    locks: MemoryTargetLocks,
    approval_gate: ApprovalGate | None = None,
    alerts: AlertSink | None = None,
) -> TapService:
    """The TapService of the domain tests: this tenant, its operator and protected groups; a held lock never waits."""
    return TapService(
        directory=directory,
        passes=passes,
        audit=audit,
        clock=clock,
        access=AccessRules(frozenset({TENANT}), OPERATORS, frozenset({PROTECTED})),
        locks=locks,
        approval_gate=approval_gate,
        lock_wait=timedelta(0),
        target_reads=FakeTargetReads(directory, passes),
        alerts=alerts,
    )


@dataclass
class RecordedAlerts:
    """The security alerts raised, in order."""

    raised: list[SecurityAlert] = field(default_factory=list[SecurityAlert])

    async def raise_alert(self, alert: SecurityAlert) -> None:
        self.raised.append(alert)


def default_policy(**changes: object) -> TapPolicy:
    policy = TapPolicy(
        enabled=True,
        default_lifetime_minutes=60,
        minimum_lifetime_minutes=60,
        maximum_lifetime_minutes=480,
        default_length=8,
        one_time_forced=False,
        include_targets=(PolicyTarget(TargetType.GROUP, ALL_USERS),),
        exclude_targets=(PolicyTarget(TargetType.GROUP, EXCLUDED),),
    )
    return replace(policy, **changes)  # type: ignore[arg-type]


@dataclass
class FakeDirectory:
    users: dict[str, DirectoryUser] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    policy: TapPolicy = field(default_factory=default_policy)
    managers: dict[str, str] = field(default_factory=dict)
    methods: dict[str, tuple[str, ...]] = field(default_factory=dict)
    searches: list[str] = field(default_factory=list)  # every text search_users was asked for
    user_reads: int = 0  # find_users calls (one Graph request each for up to 15 users)
    snapshot_reads: int = 0  # role_holders calls (a bulk job's snapshot)

    def add(self, user: DirectoryUser, *groups: str, roles: tuple[str, ...] = ()) -> DirectoryUser:
        self.users[user.object_id] = user
        for group in groups:
            self.groups.setdefault(group, set()).add(user.object_id)
        if roles:
            self.roles[user.object_id] = roles
        return user

    async def find_user(self, reference: str) -> DirectoryUser | None:
        for user in self.users.values():
            if reference.lower() in (user.object_id.lower(), user.user_principal_name.lower()):
                return user
        return None

    async def find_users(self, references: Sequence[str]) -> dict[str, DirectoryUser]:
        self.user_reads += 1
        found = {reference.lower(): await self.find_user(reference) for reference in references}
        return {reference: user for reference, user in found.items() if user is not None}

    async def role_holders(self) -> dict[str, tuple[str, ...]]:
        self.snapshot_reads += 1
        return {user_id.lower(): roles for user_id, roles in self.roles.items() if roles}

    async def group_members(self, group_id: str) -> frozenset[str] | None:
        return frozenset(member.lower() for member in self.groups.get(group_id, set()))

    async def search_users(self, text: str, *, limit: int) -> list[DirectoryUser]:
        self.searches.append(text)
        return [user for user in self.users.values() if name_fits(user, text)][:limit]

    async def direct_reports(self, manager_id: str) -> list[DirectoryUser]:
        return [self.users[user_id] for user_id, manager in self.managers.items() if manager == manager_id]

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(group for group in group_ids if user_id in self.groups.get(group, set()))

    async def directory_roles(self, user_id: str) -> tuple[str, ...]:
        return self.roles.get(user_id, ())

    async def tap_policy(self) -> TapPolicy:
        return self.policy

    async def manager_id(self, user_id: str) -> str | None:
        return self.managers.get(user_id)

    async def sign_in_methods(self, user_id: str) -> tuple[str, ...]:
        return self.methods.get(user_id, ("#microsoft.graph.passwordAuthenticationMethod",))

    async def group_name(self, group_id: str) -> str | None:
        return {OPERATORS: "TAP Operators", PROTECTED: "Protected", EXCLUDED: "TAP excluded"}.get(group_id)


@dataclass
class FakePasses:
    clock: FixedClock
    passes: dict[str, PassInfo] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reads: int = 0  # current_pass calls
    # Delegated writes: who acted for each create/delete ("create"/"delete", target, acting_as object id or None),
    # and the people with no token (their writes raise SignInRequired before anything changes).
    actors: list[tuple[str, str, str | None]] = field(default_factory=list)
    signed_out: set[str] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _act(self, write: str, target_id: str, acting_as: Caller | None) -> None:
        if acting_as is not None and acting_as.object_id in self.signed_out:
            raise SignInRequired(acting_as.object_id)
        self.actors.append((write, target_id, acting_as.object_id if acting_as else None))

    async def current_pass(self, user_id: str) -> PassInfo | None:
        self.reads += 1
        return self.passes.get(user_id)

    async def create_pass(
        self,
        user: DirectoryUser,
        *,
        lifetime_minutes: int,
        one_time: bool,
        start_at: datetime | None,
        replacing: PassInfo | None = None,
        max_throttle_wait: timedelta | None = None,
        acting_as: Caller | None = None,
    ) -> IssuedPass:
        self._act("create", user.object_id, acting_as)
        now = self.clock.now()
        start = start_at or now
        info = PassInfo(
            method_id=f"method-{next(self._ids)}",
            created_at=now,
            start_at=start,
            lifetime_minutes=lifetime_minutes,
            one_time=one_time,
            usable=start <= now,
            usability_reason=UsabilityReason.ENABLED_BY_POLICY if start <= now else UsabilityReason.NOT_YET_VALID,
        )
        self.passes[user.object_id] = info
        self.created.append(user.object_id)
        return IssuedPass(user=user, info=info, secret=PassSecret(f"Fake{len(self.created):04d}Pass"))

    async def delete_pass(self, user_id: str, method_id: str, *, acting_as: Caller | None = None) -> str | None:
        self._act("delete", user_id, acting_as)
        current = self.passes.get(user_id)
        if current and current.method_id == method_id:
            del self.passes[user_id]
        self.deleted.append(user_id)
        return "request-delete"


@dataclass
class FakeTargetReads:
    """The target's reads together (GraphGateway sends them as one `$batch`), from the fake directory and passes, so
    that their counters and any test's changes to them hold; `readings` counts the calls."""

    directory: FakeDirectory
    passes: PassMethods
    readings: int = 0

    async def target_reading(
        self, user_id: str, group_ids: Iterable[str], *, with_methods: bool = False
    ) -> TargetReading:
        self.readings += 1
        return TargetReading(
            await self.directory.directory_roles(user_id),
            await self.directory.member_groups(user_id, group_ids),
            await self.passes.current_pass(user_id),
            await self.directory.sign_in_methods(user_id) if with_methods else None,
        )


@dataclass
class MemoryAudit:
    events: list[AuditEvent] = field(default_factory=list)

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)


@dataclass
class MemoryTargetLocks:
    """The per-user check-and-create lock, in memory; `taken` records every successful lock in order."""

    held: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    taken: list[str] = field(default_factory=list)

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        current = self.held.get(target_id)
        if current is not None and current[0] != holder and current[1] >= now:
            return False
        self.held[target_id] = (holder, now + ttl)
        self.taken.append(target_id)
        return True

    async def unlock_target(self, target_id: str, holder: str) -> bool:
        if self.held.get(target_id, ("", None))[0] != holder:
            return False
        del self.held[target_id]
        return True


@dataclass
class MemoryApprovals:
    """The ApprovalStore port in memory; settling is compare-and-set like the SQL store."""

    requests: dict[str, ApprovalRequest] = field(default_factory=dict)
    channels: dict[str, ApprovalsChannel] = field(default_factory=dict)

    async def save_approval(self, request: ApprovalRequest) -> None:
        self.requests[request.id] = request

    async def approval(self, request_id: str) -> ApprovalRequest | None:
        return self.requests.get(request_id)

    async def settle_approval(self, decided: ApprovalRequest) -> bool:
        current = self.requests.get(decided.id)
        if current is None or current.status is not ApprovalStatus.PENDING:
            return False
        self.requests[decided.id] = decided
        return True

    async def reopen_approval(self, decided: ApprovalRequest) -> bool:
        current = self.requests.get(decided.id)
        if current != decided:
            return False
        self.requests[decided.id] = replace(
            decided,
            status=ApprovalStatus.PENDING,
            decided_by_id=None,
            decided_by_name=None,
            decided_at=None,
            decision_note="",
        )
        return True

    async def set_approval_card(
        self, request_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        self.requests[request_id] = replace(
            self.requests[request_id],
            card_service_url=service_url,
            card_conversation_id=conversation_id,
            card_activity_id=activity_id,
        )

    async def set_approval_timezone(self, request_id: str, timezone: str) -> None:
        self.requests[request_id] = replace(self.requests[request_id], timezone=timezone)

    async def pending_approvals(self, now: datetime) -> list[ApprovalRequest]:
        return [item for item in self.requests.values() if item.status is ApprovalStatus.PENDING]

    async def approvals_of(self, requester_id: str, since: datetime) -> list[ApprovalRequest]:
        return [item for item in self.requests.values() if item.requester.object_id == requester_id]

    async def overdue_approvals(self, now: datetime) -> list[ApprovalRequest]:
        return [
            item for item in self.requests.values() if item.status is ApprovalStatus.PENDING and item.expires_at <= now
        ]

    async def save_approvals_channel(self, channel: ApprovalsChannel) -> None:
        self.channels[channel.tenant_id] = channel

    async def approvals_channel(self, tenant_id: str) -> ApprovalsChannel | None:
        return self.channels.get(tenant_id)


@dataclass
class MemoryBulkStore:
    """The BulkStore port in memory: jobs, their journal rows, and leases."""

    jobs: dict[int, BulkJob] = field(default_factory=dict)
    journal: dict[int, dict[int, JournalRow]] = field(default_factory=dict)
    leases: dict[int, tuple[str, datetime]] = field(default_factory=dict)

    async def create_job(self, job: BulkJob, rows: list[JournalRow]) -> BulkJob:
        created = replace(job, id=len(self.jobs) + 1)
        self.jobs[created.id] = created
        self.journal[created.id] = {row.line: replace(row, job_id=created.id) for row in rows}
        return created

    async def job(self, job_id: int) -> BulkJob | None:
        return self.jobs.get(job_id)

    async def set_job_status(
        self, job_id: int, status: JobStatus, at: datetime, *, only_from: tuple[JobStatus, ...] = ()
    ) -> bool:
        job = self.jobs.get(job_id)
        if job is None or (only_from and job.status not in only_from):
            return False
        changes: dict[str, object] = {"status": status}
        if status is JobStatus.RUNNING:
            changes["started_at"] = job.started_at or at
            changes["finished_at"] = None
        if status in (JobStatus.FINISHED, JobStatus.CANCELLED, JobStatus.DISCARDED, JobStatus.WAITING_SIGN_IN):
            changes["finished_at"] = at
        self.jobs[job_id] = replace(job, **changes)  # type: ignore[arg-type]
        return True

    async def set_job_progress_card(
        self, job_id: int, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        self.jobs[job_id] = replace(
            self.jobs[job_id],
            progress_service_url=service_url,
            progress_conversation_id=conversation_id,
            progress_activity_id=activity_id,
        )

    async def set_job_options(
        self, job_id: int, *, replace_existing: bool, approval_request_id: str | None = None
    ) -> None:
        self.jobs[job_id] = replace(
            self.jobs[job_id], replace_existing=replace_existing, approval_request_id=approval_request_id
        )

    async def rows(self, job_id: int, states: tuple[RowState, ...] = ()) -> list[JournalRow]:
        rows = sorted(self.journal.get(job_id, {}).values(), key=lambda row: row.line)
        return [row for row in rows if not states or row.state in states]

    async def save_rows(self, rows: list[JournalRow]) -> None:
        for row in rows:
            self.journal[row.job_id][row.line] = row

    async def row_counts(self, job_id: int) -> dict[RowState, int]:
        counts: dict[RowState, int] = {}
        for row in self.journal.get(job_id, {}).values():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    async def active_jobs(self) -> list[BulkJob]:
        return [job for job in self.jobs.values() if job.status.active]

    async def jobs_waiting_sign_in(self) -> list[BulkJob]:
        return [job for job in self.jobs.values() if job.status is JobStatus.WAITING_SIGN_IN]

    async def claim_job(self, job_id: int, owner: str, now: datetime, lease: timedelta) -> bool:
        job = self.jobs.get(job_id)
        held = self.leases.get(job_id)
        if job is None or not job.status.active or (held is not None and held[0] != owner and held[1] >= now):
            return False
        self.leases[job_id] = (owner, now + lease)
        return True

    async def release_job(self, job_id: int, owner: str) -> None:
        if self.leases.get(job_id, ("", None))[0] == owner:
            del self.leases[job_id]
