"""Deciding approval requests without HTTP: approve, deny, self-approval, a decider who is no operator, expired and
already closed requests, exactly one winner, bulk requests, and the policy as of the decision. The re-checks of
the requester and the target are tests/domain/test_rechecks.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.domain.approvals import ApprovalRequest, ApprovalRules, ApprovalStatus
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.decisions import AlreadyClosed, Decided, UnknownRequest
from bot.domain.errors import Refused, Rule
from bot.domain.model import DirectoryUser, PassRequest
from bot.domain.service import AwaitingApproval
from tests.domain.world import ADELE, ALEX, MEGAN, STAFF, World, caller, rows_for
from tests.fakes import OPERATORS


async def long_request(world: World, requester: DirectoryUser = ADELE, user: DirectoryUser = MEGAN) -> ApprovalRequest:
    awaiting = await world.tap.issue(caller(requester), PassRequest(user.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    return awaiting.request


async def test_an_approval_issues_the_pass_at_that_moment(world: World) -> None:
    request = await long_request(world)
    world.clock.advance(hours=1)
    decided = await world.decisions.decide(caller(ALEX), request.id, approve=True, note="  ok for the audit  ")
    assert isinstance(decided, Decided) and decided.issued is not None and decided.not_issued is None
    assert decided.issued.info.lifetime_minutes == 480 and decided.issued.info.created_at == world.clock.now()
    stored = await world.desk.request(request.id)
    assert stored is not None and stored.status is ApprovalStatus.APPROVED
    assert (stored.decided_by_id, stored.decision_note) == (ALEX.object_id, "ok for the audit")
    assert world.passes.created == [MEGAN.object_id]
    assert [(event.action, event.outcome) for event in world.audit.events[-2:]] == [
        (AuditAction.DECISION, AuditOutcome.SUCCEEDED),
        (AuditAction.ISSUE, AuditOutcome.SUCCEEDED),
    ]


async def test_a_denial_writes_nothing_to_graph_and_keeps_the_note_short(world: World) -> None:
    request = await long_request(world)
    decided = await world.decisions.decide(caller(ALEX), request.id, approve=False, note="n" * 2000)
    assert isinstance(decided, Decided) and decided.issued is None
    assert decided.request.status is ApprovalStatus.DENIED and len(decided.request.decision_note) == 500
    assert world.passes.created == []


async def test_nobody_decides_their_own_request(world: World) -> None:
    request = await long_request(world)
    with pytest.raises(Refused) as refused:
        await world.decisions.decide(caller(ADELE), request.id, approve=True)
    assert refused.value.rule is Rule.SELF_APPROVAL
    assert (await world.desk.request(request.id)).status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert "decision:self_approval" in world.events(AuditOutcome.REFUSED)


async def test_only_operators_decide(world: World) -> None:
    request = await long_request(world)
    with pytest.raises(Refused) as refused:
        await world.decisions.decide(caller(MEGAN), request.id, approve=True)
    assert refused.value.rule is Rule.NOT_OPERATOR
    assert world.passes.created == []


async def test_an_expired_request_is_closed_not_decided(world: World) -> None:
    request = await long_request(world)
    world.clock.advance(hours=24)
    closed = await world.decisions.decide(caller(ALEX), request.id, approve=True)
    assert isinstance(closed, AlreadyClosed) and closed.request.status is ApprovalStatus.EXPIRED
    assert world.passes.created == []


async def test_a_second_decision_finds_the_request_closed(world: World) -> None:
    request = await long_request(world)
    assert isinstance(await world.decisions.decide(caller(ALEX), request.id, approve=True), Decided)
    again = await world.decisions.decide(caller(ALEX), request.id, approve=False)
    assert isinstance(again, AlreadyClosed) and again.request.status is ApprovalStatus.APPROVED
    assert world.passes.created == [MEGAN.object_id]


async def test_two_operators_deciding_at_once_give_one_decision(world: World) -> None:
    world.directory.add(STAFF[4], OPERATORS)
    request = await long_request(world)
    results = await asyncio.gather(
        world.decisions.decide(caller(ALEX), request.id, approve=True),
        world.decisions.decide(caller(STAFF[4]), request.id, approve=False),
    )
    assert sorted(type(result).__name__ for result in results) == ["AlreadyClosed", "Decided"]
    decided = next(result for result in results if isinstance(result, Decided))
    assert (await world.desk.request(request.id)).status is decided.request.status  # type: ignore[union-attr]
    assert len(world.passes.created) <= 1


async def test_an_unknown_request_is_a_sentence(world: World) -> None:
    with pytest.raises(UnknownRequest):
        await world.decisions.decide(caller(ALEX), "no-such-request", approve=True)


async def test_an_approved_bulk_request_issues_nothing_itself() -> None:
    world = World(ApprovalRules(bulk_row_threshold=1))
    await world.open_channel()
    job_id = await world.checked_job(rows_for(STAFF[:2]))
    waiting = await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    decided = await world.decisions.decide(caller(ALEX), waiting.request.id, approve=True)  # type: ignore[union-attr]
    assert isinstance(decided, Decided) and decided.issued is None and decided.not_issued is None
    assert world.passes.created == [], "the bulk runner issues the rows once the edge starts the job"


async def test_the_policy_as_of_the_decision_applies(world: World) -> None:
    request = await long_request(world)
    world.directory.policy = replace(world.directory.policy, one_time_forced=True)
    decided = await world.decisions.decide(caller(ALEX), request.id, approve=True)
    assert isinstance(decided, Decided) and decided.issued is not None and decided.issued.info.one_time is True

    narrower = await long_request(world, requester=ALEX, user=STAFF[0])
    world.directory.policy = replace(world.directory.policy, maximum_lifetime_minutes=240)
    refused = await world.decisions.decide(caller(ADELE), narrower.id, approve=True)
    assert isinstance(refused, Decided) and refused.issued is None
    assert refused.not_issued is not None and "between" in refused.not_issued
    assert refused.request.status is ApprovalStatus.APPROVED, "the decision stands; the rules said no"
    assert "decision:lifetime_range" in world.events(AuditOutcome.REFUSED)
