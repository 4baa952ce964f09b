"""The target's roles, groups and current pass come through the TargetReads port in one call when the service has
one (Graph: one `$batch`), and the rules decide the same as from the Directory and PassMethods reads one by one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.errors import Refused, Rule
from bot.domain.model import Caller, DirectoryUser, PassRequest
from bot.domain.service import Issued, ReplaceNeeded, TapService
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
    MemoryAudit,
    MemoryTargetLocks,
    tap_service,
)

OPERATOR = Caller(ADELE.object_id, TENANT, "Adele Vance")
ISAIAH = DirectoryUser("f0000000-0000-0000-0000-00000000000f", "isaiah@contoso.test", "Isaiah")


def service(*, batched: bool) -> tuple[TapService, FakeDirectory, FakePasses]:
    clock = FixedClock()
    directory, passes = FakeDirectory(), FakePasses(clock)
    directory.add(ADELE, OPERATORS)
    directory.add(MEGAN, PROTECTED)
    directory.add(ISAIAH, roles=("Global Administrator",))
    tap = tap_service(directory=directory, passes=passes, audit=MemoryAudit(), clock=clock, locks=MemoryTargetLocks())
    if not batched:
        tap._target_reads = None  # the service's own reads, one by one
    return tap, directory, passes


@pytest.mark.parametrize("target", [ISAIAH, MEGAN])
async def test_the_same_refusal_with_and_without_the_port(target: DirectoryUser) -> None:
    refusals: list[Refused] = []
    for batched in (True, False):
        tap, _, passes = service(batched=batched)
        with pytest.raises(Refused) as caught:
            await tap.issue(OPERATOR, PassRequest(target.user_principal_name))
        assert passes.created == []
        refusals.append(caught.value)
    assert refusals[0].rule == refusals[1].rule
    assert refusals[0].rule in (Rule.ROLE_HOLDER, Rule.PROTECTED_GROUP)
    assert refusals[0].user_message == refusals[1].user_message


async def test_one_reading_per_check_and_its_pass_is_the_one_to_replace() -> None:
    tap, directory, passes = service(batched=True)
    reads = tap._target_reads
    assert isinstance(reads, FakeTargetReads)
    lee = directory.add(
        replace(ISAIAH, object_id="c0000000-0000-0000-0000-00000000000c", user_principal_name="lee@contoso.test")
    )
    first = await tap.issue(OPERATOR, PassRequest(lee.user_principal_name))
    assert isinstance(first, Issued)
    assert reads.readings == 1
    again = await tap.issue(OPERATOR, PassRequest(lee.user_principal_name))
    assert isinstance(again, ReplaceNeeded)
    assert again.existing == passes.passes[lee.object_id]
    assert reads.readings == 2
