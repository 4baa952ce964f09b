"""Which store calls of a typed issue share a transaction (issue 13 item 4): the lock is taken with the velocity
limit's count, and given back with the pass's audit row; on any failure the lock is still given back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from bot.domain.alerts import VelocityLimit
from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalRules, ApprovalsChannel
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.errors import NotRecorded
from bot.domain.model import PassRequest
from bot.domain.service import AccessRules, AwaitingApproval, HeldLock, Issued, TapService
from tests.domain.world import caller
from tests.fakes import (
    ADELE,
    MEGAN,
    OPERATORS,
    PROTECTED,
    TENANT,
    FakeDirectory,
    FakePasses,
    FakeTargetReads,
    FixedClock,
    MemoryApprovals,
    MemoryTargetLocks,
)

OPERATOR = caller(ADELE)


@dataclass
class JournalStore:
    """Locks, audit log, pass counts and transactions in memory: every call noted with the transaction it ran in
    (a number while a `together` block is open, None outside one)."""

    locks: MemoryTargetLocks = field(default_factory=MemoryTargetLocks)
    events: list[AuditEvent] = field(default_factory=list)
    calls: list[tuple[str, int | None]] = field(default_factory=list)
    issued: int = 0
    fail_success_rows: bool = False
    rolled_back: int = 0
    _open: int | None = None
    _opened: int = 0
    _locked_inside: list[str] = field(default_factory=list)

    def together(self) -> AbstractAsyncContextManager[None]:
        return self._together()

    @asynccontextmanager
    async def _together(self) -> AsyncIterator[None]:
        if self._open is not None:
            yield
            return
        self._opened += 1
        self._open = self._opened
        kept = len(self.events)
        self._locked_inside = []
        try:
            yield
        except BaseException:
            del self.events[kept:]  # what a rollback does to rows written inside
            for target_id in self._locked_inside:
                self.locks.held.pop(target_id, None)
            self.rolled_back += 1
            raise
        finally:
            self._open = None

    def grouped(self) -> list[list[str]]:
        """The calls, one list per transaction (a call outside any block is a transaction of its own)."""
        groups: list[list[str]] = []
        last: int | None = None
        for name, transaction in self.calls:
            if transaction is None or transaction != last:
                groups.append([])
            groups[-1].append(name)
            last = transaction
        return [group for group in groups if group != ["lock refused"]]

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        taken = await self.locks.lock_target(target_id, holder, now, ttl)
        self.calls.append(("lock" if taken else "lock refused", self._open))
        if taken and self._open is not None:
            self._locked_inside.append(target_id)
        return taken

    def noted(self, name: str, *, fail: bool = False) -> Callable[..., Awaitable[None]]:
        """A store call of the caller's own (a bulk row's journal entry), noted in the transaction it runs in."""

        async def call(*_: object) -> None:
            self.calls.append((name, self._open))
            if fail:
                raise OSError("disk I/O error")

        return call

    async def unlock_target(self, target_id: str, holder: str) -> bool:
        self.calls.append(("unlock", self._open))
        return await self.locks.unlock_target(target_id, holder)

    async def record(self, event: AuditEvent) -> None:
        self.calls.append((f"audit {event.action.value} {event.outcome.value}", self._open))
        if self.fail_success_rows and event.outcome is AuditOutcome.SUCCEEDED:
            raise OSError("disk I/O error")
        self.events.append(event)

    async def passes_issued_by(self, actor_id: str, since: datetime) -> int:
        self.calls.append(("count", self._open))
        return self.issued

    async def alerts_raised(self, kind: str, actor_id: str, since: datetime) -> int:
        return 1


async def a_bulk_rows_pass(world: World, held: HeldLock, *, on_recorded: Callable[..., Awaitable[None]]) -> None:
    """A pass for Megan as a bulk row makes it: under its lock, journaled CREATED by `on_recorded`."""
    await world.service.create_checked_pass(
        OPERATOR,
        MEGAN,
        lifetime_minutes=60,
        one_time=False,
        start_at=None,
        existing=None,
        lock=held,
        on_recorded=on_recorded,
    )


class NoAlerts:
    async def raise_alert(self, alert: object) -> None:
        return None


class World:
    def __init__(self, *, transactions: bool = True) -> None:
        self.clock = FixedClock()
        self.directory = FakeDirectory()
        self.directory.add(ADELE, OPERATORS)
        self.directory.add(MEGAN)
        self.passes = FakePasses(self.clock)
        self.store = JournalStore()
        self.approvals = MemoryApprovals()
        self.service = TapService(
            directory=self.directory,
            passes=self.passes,
            target_reads=FakeTargetReads(self.directory, self.passes),
            audit=self.store,
            clock=self.clock,
            access=AccessRules(frozenset({TENANT}), OPERATORS, frozenset({PROTECTED})),
            locks=self.store,
            lock_wait=timedelta(0),
            approval_gate=ApprovalDesk(store=self.approvals, rules=ApprovalRules(), clock=self.clock, audit=self.store),
            velocity=VelocityLimit(limit=3, counts=self.store, alerts=NoAlerts(), clock=self.clock),
            transactions=self.store if transactions else None,
        )


async def test_the_lock_comes_with_the_count_and_goes_with_the_audit_row() -> None:
    world = World()
    result = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    assert isinstance(result, Issued)
    assert world.store.grouped() == [["lock", "count"], ["audit issue succeeded", "unlock"]]
    assert world.store.locks.held == {}


async def test_without_transactions_each_call_stands_alone_as_before() -> None:
    world = World(transactions=False)
    await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    assert world.store.grouped() == [["lock"], ["count"], ["audit issue succeeded"], ["unlock"]]
    assert world.store.locks.held == {}


async def test_the_velocity_limit_uses_the_count_read_with_the_lock() -> None:
    world = World()
    channel = ApprovalsChannel("https://connector", "19:approvals", TENANT, ADELE.object_id, world.clock.now())
    await world.approvals.save_approvals_channel(channel)
    world.store.issued = 3  # the limit: this pass waits for a second operator
    result = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    assert isinstance(result, AwaitingApproval)
    assert world.passes.created == []
    assert [name for name, _ in world.store.calls].count("count") == 1, "the count was read a second time"
    assert world.store.locks.held == {}


async def test_an_audit_row_that_fails_takes_nothing_with_it_and_the_lock_is_still_given_back() -> None:
    world = World()
    world.store.fail_success_rows = True
    with pytest.raises(NotRecorded, match="so I deleted it again"):
        await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    # Unrecorded, the pass would be live and invisible to the audit log: it is deleted before anyone sees it.
    assert world.passes.created == world.passes.deleted == [MEGAN.object_id]
    assert MEGAN.object_id not in world.passes.passes
    assert world.store.rolled_back == 1
    assert world.store.grouped()[-3:] == [["audit issue succeeded"], ["unlock"], ["audit issue failed"]], (
        world.store.grouped()
    )
    assert world.store.locks.held == {}


async def test_a_caller_that_passes_no_lock_keeps_it_to_the_end_of_its_block() -> None:
    """Bulk rows, onboarding and approvals call create_checked_pass without `lock=`: their lock is given back by
    their block's end, as before."""
    world = World()
    async with world.service.target_lock(MEGAN) as held:
        await world.service.create_checked_pass(
            OPERATOR, MEGAN, lifetime_minutes=60, one_time=False, start_at=None, existing=None
        )
        assert not held.released and MEGAN.object_id in world.store.locks.held
    assert world.store.locks.held == {}
    assert [e.action for e in world.store.events] == [AuditAction.ISSUE]


async def test_a_callers_store_calls_ride_in_the_locks_two_transactions() -> None:
    """A bulk row: journaled CREATING as the lock is taken, CREATED with the audit row and the lock's release."""
    world = World()
    async with world.service.target_lock(MEGAN, on_taking=world.store.noted("creating")) as held:
        await a_bulk_rows_pass(world, held, on_recorded=world.store.noted("created"))
    assert world.store.grouped() == [["lock", "creating"], ["audit issue succeeded", "unlock", "created"]]
    assert world.store.locks.held == {}


@pytest.mark.parametrize("transactions", [True, False])
async def test_a_failing_store_call_at_the_locks_take_leaves_no_lock(transactions: bool) -> None:
    world = World(transactions=transactions)
    with pytest.raises(OSError):
        async with world.service.target_lock(MEGAN, on_taking=world.store.noted("creating", fail=True)):
            raise AssertionError("nothing may run under a lock whose journal entry failed")
    assert world.store.locks.held == {}
    assert world.store.rolled_back == (1 if transactions else 0)


async def test_without_transactions_a_failing_store_call_after_the_audit_row_does_not_write_it_twice() -> None:
    world = World(transactions=False)
    with pytest.raises(OSError):
        async with world.service.target_lock(MEGAN) as held:
            await a_bulk_rows_pass(world, held, on_recorded=world.store.noted("created", fail=True))
    assert [e.outcome for e in world.store.events] == [AuditOutcome.SUCCEEDED]
    assert world.store.locks.held == {}
