"""One snapshot per bulk job of what is the same for every row, and users read many at a time.

A single command reads the target's roles, groups and the policy for that one user (7 Graph requests or more). A
bulk job would make those same reads for every row, although the answers are the same for all rows: who holds a
directory role by any path, who is in the protected and policy groups, what the policy says. `JobSnapshot` reads
them tenant-wide, once (a few requests whatever the job's size), and a row's eligibility is then decided by the
single command's rule (`target_refusal`) on `TargetFacts` built from the snapshot.

Freshness: a snapshot serves rows for at most SNAPSHOT_MAX_AGE; a row checked later gets a new one, and every run of
a job (a first run, an approval-delayed run, a resumed or adopted one) starts with its own. The users themselves
(deleted, disabled, turned into a guest) are read in batches of USERS_PER_READ and reused for the same age. The
target's current pass is never taken from a snapshot: it is read under the user's lock right before the create.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.eligibility import TargetFacts, target_refusal
from bot.domain.errors import Refused
from bot.domain.model import Caller, DirectoryUser, TapPolicy
from bot.domain.ports import Clock, Directory

# How old the snapshot (and a batch of users) may be when a row is checked against it. The requester's operator
# right is re-read at the same pace (bulk_row_runner.OPERATOR_RECHECK_SECONDS), so everything a run knows about the
# world is at most 30 seconds old when a pass is created, except the current pass, which is read right before. A
# snapshot costs 15 requests in the demo tenant (policy, assignments, eligibilities, role-assignable groups, three
# per role-holding group: members, owners, PIM for Groups eligibilities; one per protected or policy group): taken
# every 30 s at Graph's write limit of 20 rows/s that is 0.025 requests per row, so a longer age (5 minutes would save
# 0.02) would only widen the window in which a role granted mid-job goes unnoticed.
SNAPSHOT_MAX_AGE = timedelta(seconds=30)
# Graph limits an `in` filter to 15 values by default (Graph known issues: "Some limitations apply to query
# parameters"); one user read asks for this many users.
USERS_PER_READ = 15


@dataclass(frozen=True)
class JobSnapshot:
    """The policy, the role holders and the members of the protected and policy groups, as read at `taken_at`."""

    taken_at: datetime
    policy: TapPolicy
    role_holders: Mapping[str, tuple[str, ...]]  # user id (lower case) -> role names, as directory_roles says
    group_members: Mapping[str, frozenset[str]]  # group id (as configured) -> user ids (lower case)
    unread_groups: frozenset[str]  # groups too large to read whole: checked user by user
    protected_group_ids: frozenset[str]

    def is_fresh(self, now: datetime) -> bool:
        return self.taken_at <= now <= self.taken_at + SNAPSHOT_MAX_AGE

    async def facts(self, user: DirectoryUser, directory: Directory) -> TargetFacts:
        """What a single command would have read about this user, from the snapshot."""
        user_id = user.object_id.lower()
        groups = {group_id for group_id, members in self.group_members.items() if user_id in members}
        if self.unread_groups:
            groups |= await directory.member_groups(user.object_id, self.unread_groups)
        return TargetFacts(user, self.role_holders.get(user_id, ()), frozenset(groups))

    async def refusal(self, requester: Caller, user: DirectoryUser, directory: Directory) -> Refused | None:
        """The single command's verdict (`target_refusal`) for this user, on the snapshot's facts."""
        facts = await self.facts(user, directory)
        return target_refusal(requester, facts, self.policy, self.protected_group_ids)


async def take_snapshot(directory: Directory, protected_group_ids: frozenset[str], now: datetime) -> JobSnapshot:
    """Reads the snapshot: the role holders tenant-wide, alongside the policy and then its groups' members."""

    async def policy_and_members() -> tuple[TapPolicy, dict[str, frozenset[str] | None]]:
        policy = await directory.tap_policy()
        group_ids = sorted(protected_group_ids | policy.target_group_ids)
        members = await asyncio.gather(*(directory.group_members(group_id) for group_id in group_ids))
        return policy, dict(zip(group_ids, members, strict=True))

    (policy, members), holders = await asyncio.gather(policy_and_members(), directory.role_holders())
    return JobSnapshot(
        taken_at=now,
        policy=policy,
        role_holders={user_id.lower(): roles for user_id, roles in holders.items() if roles},
        group_members={group_id: found for group_id, found in members.items() if found is not None},
        unread_groups=frozenset(group_id for group_id, found in members.items() if found is None),
        protected_group_ids=protected_group_ids,
    )


class Snapshots:
    """A job run's snapshot: taken when first asked for, and again when asked for once it is older than
    SNAPSHOT_MAX_AGE. Concurrent askers wait for one read."""

    def __init__(self, directory: Directory, protected_group_ids: frozenset[str], clock: Clock) -> None:
        self._directory = directory
        self._protected = protected_group_ids
        self._clock = clock
        self._current: JobSnapshot | None = None
        self._lock = asyncio.Lock()
        self.taken = 0  # how many snapshots this run took

    async def current(self) -> JobSnapshot:
        snapshot = self._current
        if snapshot is not None and snapshot.is_fresh(self._clock.now()):
            return snapshot
        async with self._lock:
            snapshot = self._current
            if snapshot is not None and snapshot.is_fresh(self._clock.now()):
                return snapshot
            snapshot = await take_snapshot(self._directory, self._protected, self._clock.now())
            self._current = snapshot
            self.taken += 1
            return snapshot


@dataclass(frozen=True)
class _Read:
    user: DirectoryUser | None
    at: datetime


class UserReads:
    """Users read USERS_PER_READ at a time, in the order rows will be checked, each answer reused for
    SNAPSHOT_MAX_AGE: asking for one user not read (or read too long ago) reads it with the next ones of `order`."""

    def __init__(self, directory: Directory, clock: Clock, order: Sequence[str]) -> None:
        self._directory = directory
        self._clock = clock
        self._order = [reference.lower() for reference in order]
        self._position = {reference: index for index, reference in reversed(list(enumerate(self._order)))}
        self._reads: dict[str, _Read] = {}
        self._lock = asyncio.Lock()

    async def user(self, reference: str) -> DirectoryUser | None:
        """The user as read at most SNAPSHOT_MAX_AGE ago; None when the tenant has no such user."""
        key = reference.lower()
        fresh = self._fresh(key)
        if fresh is not None:
            return fresh.user
        async with self._lock:
            fresh = self._fresh(key)
            if fresh is not None:
                return fresh.user
            batch = self._batch_from(key)
            found = await self._directory.find_users(batch)
            now = self._clock.now()
            for wanted in batch:
                self._reads[wanted] = _Read(found.get(wanted), now)
            return self._reads[key].user

    def _fresh(self, key: str) -> _Read | None:
        read = self._reads.get(key)
        if read is None:
            return None
        now = self._clock.now()
        return read if read.at <= now <= read.at + SNAPSHOT_MAX_AGE else None

    def _batch_from(self, key: str) -> list[str]:
        batch = [key]
        start = self._position.get(key)
        if start is None:
            return batch
        for reference in self._order[start + 1 :]:
            if len(batch) >= USERS_PER_READ:
                break
            if reference not in batch and self._fresh(reference) is None:
                batch.append(reference)
        return batch
