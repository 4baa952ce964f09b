"""Deciding approval requests when writes are delegated (issue 14): the approver's own rights make the write; an
approval that wrote nothing (no sign-in of the approver's, or Entra refused them) is undone, so the request stays
pending for them or another approver. Through the HTTP endpoint: tests/http/test_delegated_rights.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bot.domain.approvals import ApprovalStatus
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.decisions import AlreadyClosed, Decided
from bot.domain.errors import EntraRefused, SignInRequired
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassRequest
from bot.domain.service import AwaitingApproval
from tests.domain.world import ADELE, ALEX, MEGAN, World, caller


async def long_request_id(world: World) -> str:
    awaiting = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    return awaiting.request.id


async def test_the_approvers_rights_make_the_write(world: World) -> None:
    request_id = await long_request_id(world)
    decided = await world.decisions.decide(caller(ALEX), request_id, approve=True)
    assert isinstance(decided, Decided) and decided.issued is not None
    assert world.passes.actors == [("create", MEGAN.object_id, ALEX.object_id)]


async def test_an_approver_without_a_sign_in_writes_nothing_and_the_request_stays_pending(world: World) -> None:
    request_id = await long_request_id(world)
    world.passes.signed_out.add(ALEX.object_id)
    with pytest.raises(SignInRequired) as needed:
        await world.decisions.decide(caller(ALEX), request_id, approve=True, note="fine")
    assert needed.value.user_id == ALEX.object_id
    stored = await world.desk.request(request_id)
    assert stored is not None and stored.status is ApprovalStatus.PENDING
    assert (stored.decided_by_id, stored.decided_at, stored.decision_note) == (None, None, "")
    assert world.passes.created == []
    outcomes = [(event.action, event.outcome) for event in world.audit.events[-2:]]
    assert outcomes == [
        (AuditAction.APPROVAL, AuditOutcome.NEEDS_CONFIRMATION),
        (AuditAction.DECISION, AuditOutcome.NEEDS_SIGN_IN),
    ]
    assert "pending again" in world.audit.events[-2].detail

    # Once signed in, the same approver decides it again (the Teams edge resumes it): now it is approved.
    world.passes.signed_out.clear()
    decided = await world.decisions.decide(caller(ALEX), request_id, approve=True, note="fine")
    assert isinstance(decided, Decided) and decided.issued is not None
    assert decided.request.decision_note == "fine"


@dataclass
class RefusingPasses:
    """Entra refuses every write of `refused` (403), as with no role or an inactive one."""

    refused: str

    def __call__(self, acting_as: Caller | None) -> None:
        if acting_as is not None and acting_as.object_id == self.refused:
            raise EntraRefused("You need the Authentication Administrator role in Entra to issue passes.")


async def test_entras_refusal_of_the_approver_leaves_the_request_to_another_approver(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = await long_request_id(world)
    refuse = RefusingPasses(ALEX.object_id)
    create = world.passes.create_pass

    async def refusing_create(user: DirectoryUser, **options: Any) -> IssuedPass:
        refuse(options.get("acting_as"))
        return await create(user, **options)

    monkeypatch.setattr(world.passes, "create_pass", refusing_create)
    with pytest.raises(EntraRefused):
        await world.decisions.decide(caller(ALEX), request_id, approve=True)
    stored = await world.desk.request(request_id)
    assert stored is not None and stored.status is ApprovalStatus.PENDING
    assert "decision:entra_refused" in world.events(AuditOutcome.REFUSED)
    assert world.passes.created == []

    # A denial writes nothing, so it needs no rights in Entra; after it, the request is closed for everyone.
    denied = await world.decisions.decide(caller(ALEX), request_id, approve=False)
    assert isinstance(denied, Decided) and denied.request.status is ApprovalStatus.DENIED
    again = await world.decisions.decide(caller(ALEX), request_id, approve=True)
    assert isinstance(again, AlreadyClosed)
