"""The small interfaces through which the domain reaches the outside world."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.audit import AuditEvent
from bot.domain.model import DirectoryUser, IssuedPass, PassInfo, TapPolicy


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Directory(Protocol):
    """Reads about users, groups, roles and the TAP policy."""

    async def find_user(self, reference: str) -> DirectoryUser | None:
        """A user by object id or user principal name; None when the tenant has no such user."""
        ...

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        """Which of `group_ids` the user belongs to, nested membership included."""
        ...

    async def directory_roles(self, user_id: str) -> tuple[str, ...]:
        """Names of the directory roles assigned to the user (empty when none)."""
        ...

    async def tap_policy(self) -> TapPolicy: ...

    async def group_name(self, group_id: str) -> str | None:
        """The group's display name; None when it cannot be read."""
        ...


class PassMethods(Protocol):
    """The user's Temporary Access Pass method: at most one per user."""

    async def current_pass(self, user_id: str) -> PassInfo | None: ...

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
        """Creates a pass, replacing `replacing` (the user's current pass, if any). Never retried blindly."""
        ...

    async def delete_pass(self, user_id: str, method_id: str) -> str | None:
        """Deletes the pass; returns Graph's request id. Deleting a pass that is already gone is not an error."""
        ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent) -> None: ...


class TargetLocks(Protocol):
    """One check-and-create per user at a time, across replicas: a lock that runs out by itself after `ttl`."""

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Takes the lock (or one whose time ran out); False while someone else holds it."""
        ...

    async def unlock_target(self, target_id: str, holder: str) -> None:
        """Gives the lock back; nothing happens when `holder` no longer holds it."""
        ...
