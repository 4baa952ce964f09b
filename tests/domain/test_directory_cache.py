"""The short caches of TapService: the TAP policy and a positive operator check, never a refusal or a target."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.errors import Refused, Rule
from bot.domain.model import Caller, DirectoryUser, PassRequest, UserType
from bot.domain.service import AccessRules, Issued, TapService
from tests.fakes import (
    OPERATORS,
    PROTECTED,
    TENANT,
    FakeDirectory,
    FakePasses,
    FixedClock,
    MemoryAudit,
    MemoryTargetLocks,
)

ADELE = DirectoryUser("a0000000-0000-0000-0000-00000000000a", "adele@contoso.test", "Adele Vance")
MEGAN = DirectoryUser("b0000000-0000-0000-0000-00000000000b", "megan@contoso.test", "Megan Bowen")
OPERATOR = Caller(ADELE.object_id, TENANT, "Adele Vance")
WINDOW = timedelta(seconds=30)


class CountingDirectory(FakeDirectory):
    def __init__(self) -> None:
        super().__init__()
        self.policy_reads = 0
        self.operator_reads = 0

    async def tap_policy(self):  # type: ignore[override]
        self.policy_reads += 1
        return await super().tap_policy()

    async def member_groups(self, user_id, group_ids):  # type: ignore[override]
        wanted = frozenset(group_ids)
        if wanted == {OPERATORS}:
            self.operator_reads += 1
        return await super().member_groups(user_id, wanted)


class World:
    def __init__(self, window: timedelta = WINDOW) -> None:
        self.clock = FixedClock()
        self.directory = CountingDirectory()
        self.directory.add(ADELE, OPERATORS)
        self.directory.add(MEGAN)
        self.passes = FakePasses(self.clock)
        self.service = TapService(
            directory=self.directory,
            passes=self.passes,
            audit=MemoryAudit(),
            clock=self.clock,
            access=AccessRules(frozenset({TENANT}), OPERATORS, frozenset({PROTECTED})),
            locks=MemoryTargetLocks(),
            lock_wait=timedelta(0),
            cache_window=window,
        )

    async def issue(self) -> object:
        return await self.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name, replace=True))


@pytest.fixture
def world() -> World:
    return World()


async def test_policy_and_operator_are_read_once_within_the_window(world: World) -> None:
    for _ in range(3):
        assert isinstance(await world.issue(), Issued)
    assert (world.directory.policy_reads, world.directory.operator_reads) == (1, 1)
    world.clock.advance(seconds=30)
    assert isinstance(await world.issue(), Issued)
    assert (world.directory.policy_reads, world.directory.operator_reads) == (2, 2)


async def test_without_a_window_nothing_is_reused() -> None:
    world = World(timedelta(0))
    for _ in range(2):
        await world.issue()
    assert (world.directory.policy_reads, world.directory.operator_reads) == (2, 2)


async def test_a_removed_operator_keeps_interactive_commands_only_for_the_window(world: World) -> None:
    await world.issue()
    world.directory.groups[OPERATORS].discard(ADELE.object_id)
    assert isinstance(await world.issue(), Issued)  # the documented window
    world.clock.advance(seconds=30)
    with pytest.raises(Refused) as caught:
        await world.issue()
    assert caught.value.rule is Rule.NOT_OPERATOR


async def test_a_later_write_checks_the_requester_afresh(world: World) -> None:
    await world.issue()
    world.directory.groups[OPERATORS].discard(ADELE.object_id)
    with pytest.raises(Refused):
        await world.service.require_operator_still(OPERATOR)  # approvals and bulk runs
    with pytest.raises(Refused):  # and the fresh "no" cleared the cached "yes"
        await world.issue()


async def test_a_refusal_is_never_cached(world: World) -> None:
    world.directory.groups[OPERATORS].discard(ADELE.object_id)
    with pytest.raises(Refused):
        await world.issue()
    world.directory.groups[OPERATORS].add(ADELE.object_id)
    assert isinstance(await world.issue(), Issued)
    assert world.directory.operator_reads == 2


async def test_a_targets_eligibility_is_read_every_time(world: World) -> None:
    await world.issue()
    world.directory.users[MEGAN.object_id] = replace(MEGAN, user_type=UserType.GUEST)
    with pytest.raises(Refused) as caught:
        await world.issue()
    assert caught.value.rule is Rule.GUEST
