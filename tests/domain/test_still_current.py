"""TapService.still_current: a delivered pass is read again from the directory only when the audit log records a
write that may have ended it since its creation, or when the log cannot say (it cannot be read, or its order is not
the passes' order: the pass was recorded after its creator's lock ran out)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from bot.domain.model import IssuedPass
from bot.domain.service import AccessRules, TapService
from tests.fakes import (
    MEGAN,
    OPERATORS,
    PROTECTED,
    TENANT,
    FakeDirectory,
    FakePasses,
    FixedClock,
    MemoryAudit,
    MemoryTargetLocks,
)


@dataclass
class Log:
    answer: bool | Exception
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def may_have_ended(self, user_id: str, pass_method_id: str) -> bool:
        self.asked.append((user_id, pass_method_id))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def delivered(log: Log | None) -> tuple[TapService, FakePasses, IssuedPass]:
    clock = FixedClock()
    passes = FakePasses(clock)
    service = TapService(
        directory=FakeDirectory(),
        passes=passes,
        audit=MemoryAudit(),
        clock=clock,
        access=AccessRules(frozenset({TENANT}), OPERATORS, frozenset({PROTECTED})),
        locks=MemoryTargetLocks(),
        lock_wait=timedelta(0),
        pass_writes=log,
    )
    issued = await passes.create_pass(MEGAN, lifetime_minutes=60, one_time=False, start_at=None)
    return service, passes, replace(issued, recorded_in_lock_order=True)


async def test_no_write_recorded_since_the_create_reads_nothing() -> None:
    log = Log(False)
    service, passes, issued = await delivered(log)
    assert await service.still_current(issued)
    assert passes.reads == 0
    assert log.asked == [(MEGAN.object_id, issued.info.method_id)]


@pytest.mark.parametrize("replaced", [True, False])
async def test_a_write_recorded_since_then_is_checked_in_the_directory(replaced: bool) -> None:
    service, passes, issued = await delivered(Log(True))
    if replaced:
        await passes.create_pass(MEGAN, lifetime_minutes=60, one_time=False, start_at=None)
    assert await service.still_current(issued) is not replaced
    assert passes.reads == 1


@pytest.mark.parametrize("log", [Log(RuntimeError("database is locked")), None])
async def test_without_an_answer_from_the_log_the_directory_decides(log: Log | None) -> None:
    service, passes, issued = await delivered(log)
    del passes.passes[MEGAN.object_id]  # revoked meanwhile
    assert not await service.still_current(issued)
    assert passes.reads == 1


async def test_a_pass_recorded_after_its_lock_ran_out_is_checked_in_the_directory() -> None:
    log = Log(False)
    service, passes, issued = await delivered(log)
    assert await service.still_current(replace(issued, recorded_in_lock_order=False))
    assert passes.reads == 1 and log.asked == []
