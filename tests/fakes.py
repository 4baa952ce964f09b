"""In-memory stand-ins for the domain's ports: fast, and they count every write."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.domain.audit import AuditEvent
from bot.domain.model import (
    ALL_USERS,
    DirectoryUser,
    IssuedPass,
    PassInfo,
    PassSecret,
    PolicyTarget,
    TapPolicy,
    TargetType,
    UsabilityReason,
)

TENANT = "11111111-1111-1111-1111-111111111111"
OPERATORS = "22222222-0000-0000-0000-000000000001"
PROTECTED = "22222222-0000-0000-0000-000000000002"
EXCLUDED = "22222222-0000-0000-0000-000000000003"


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 26, 13, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


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

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        return frozenset(group for group in group_ids if user_id in self.groups.get(group, set()))

    async def directory_roles(self, user_id: str) -> tuple[str, ...]:
        return self.roles.get(user_id, ())

    async def tap_policy(self) -> TapPolicy:
        return self.policy

    async def group_name(self, group_id: str) -> str | None:
        return {OPERATORS: "TAP Operators", PROTECTED: "Protected", EXCLUDED: "TAP excluded"}.get(group_id)


@dataclass
class FakePasses:
    clock: FixedClock
    passes: dict[str, PassInfo] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def current_pass(self, user_id: str) -> PassInfo | None:
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
    ) -> IssuedPass:
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

    async def delete_pass(self, user_id: str, method_id: str) -> str | None:
        current = self.passes.get(user_id)
        if current and current.method_id == method_id:
            del self.passes[user_id]
        self.deleted.append(user_id)
        return "request-delete"


@dataclass
class MemoryAudit:
    events: list[AuditEvent] = field(default_factory=list)

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)
