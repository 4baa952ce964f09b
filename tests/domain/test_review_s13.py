"""Review of session 13's shortcuts (since b3bed9e), in the domain: the hole it found, as a test (it failed until
fixed: a create recorded after its lock ran out no longer counts as in the log's order)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from bot.adapters.store import SqlStore
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassInfo, PassRequest
from bot.domain.service import TARGET_LOCK_TTL, AccessRules, Issued, TapService
from tests.domain.world import caller
from tests.fakes import (
    ADELE,
    ALEX,
    MEGAN,
    OPERATORS,
    PROTECTED,
    TENANT,
    FakeDirectory,
    FakePasses,
    FakeTargetReads,
    FixedClock,
)


@dataclass
class SlowAnswerPasses(FakePasses):
    """Graph's passes, where the answer to the first create arrives only once `answer` is set: Graph has made (and
    keeps) the pass by then, its answer is late (a slow network, a Graph node slow to answer)."""

    answer: asyncio.Event = field(default_factory=asyncio.Event)
    made: asyncio.Event = field(default_factory=asyncio.Event)
    _first: bool = True

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
        issued = await super().create_pass(
            user, lifetime_minutes=lifetime_minutes, one_time=one_time, start_at=start_at, acting_as=acting_as
        )
        if self._first:
            self._first = False
            self.made.set()
            await self.answer.wait()
        return issued


@pytest.fixture
def store(sqlite_store: SqlStore) -> SqlStore:
    return sqlite_store


async def test_a_pass_replaced_after_its_lock_ran_out_is_not_reported_current(store: SqlStore) -> None:
    clock = FixedClock()
    directory = FakeDirectory()
    directory.add(ADELE, OPERATORS)
    directory.add(ALEX, OPERATORS)
    directory.add(MEGAN)
    passes = SlowAnswerPasses(clock)
    service = TapService(
        directory=directory,
        passes=passes,
        audit=store,
        clock=clock,
        access=AccessRules(frozenset({TENANT}), OPERATORS, frozenset({PROTECTED})),
        locks=store,
        transactions=store,
        pass_writes=store,
        lock_wait=timedelta(0),
        target_reads=FakeTargetReads(directory, passes),
    )
    # Adele's create reaches Graph (her pass exists), but its answer is slow: her lock runs out meanwhile.
    adeles = asyncio.create_task(service.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name)))
    await asyncio.wait_for(passes.made.wait(), 5)
    clock.advance(seconds=TARGET_LOCK_TTL.total_seconds() + 1)
    # Alex replaces Megan's pass (he sees Adele's, live, and says replace): recorded before Adele's row.
    alexs = await service.issue(caller(ALEX), PassRequest(MEGAN.user_principal_name, replace=True))
    assert isinstance(alexs, Issued)
    passes.answer.set()
    adele_result = await adeles
    assert isinstance(adele_result, Issued)
    replaced = adele_result.issued
    assert passes.passes[MEGAN.object_id].method_id == alexs.issued.info.method_id  # Adele's pass no longer works

    # After Adele's card is recorded, the delivery asks whether her pass is still Megan's: it is not.
    assert not await service.still_current(replaced)
