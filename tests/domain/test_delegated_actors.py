"""Whose rights make each pass write when writes are delegated (issue 14, decision 3), and what the domain does when
that person has no token (SignInRequired: nothing written, the lock released, a needs_sign_in audit row, never a
success) or Entra refuses their rights (EntraRefused: audited as a refusal with rule entra_refused and its sentence,
no security alert)."""

from __future__ import annotations

import pytest

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.errors import EntraRefused, Rule, SignInRequired
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassRequest
from bot.domain.service import AwaitingApproval, Issued
from tests.domain.world import ADELE, ALEX, MEGAN, World, caller


async def test_a_typed_issue_and_revoke_are_written_with_the_technicians_rights(world: World) -> None:
    assert isinstance(await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name)), Issued)
    await world.tap.revoke(caller(ADELE), MEGAN.user_principal_name)
    assert world.passes.actors == [
        ("create", MEGAN.object_id, ADELE.object_id),
        ("delete", MEGAN.object_id, ADELE.object_id),
    ]


async def test_an_approved_pass_is_written_with_the_approvers_rights(world: World) -> None:
    awaiting = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    await world.decisions.decide(caller(ALEX), awaiting.request.id, approve=True)
    assert world.passes.actors == [("create", MEGAN.object_id, ALEX.object_id)]


async def test_without_the_technicians_sign_in_nothing_is_written_or_audited_as_done(world: World) -> None:
    world.passes.signed_out.add(ADELE.object_id)
    with pytest.raises(SignInRequired) as caught:
        await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, reason="INC1"))
    assert caught.value.user_id == ADELE.object_id
    assert world.passes.created == [] and world.locks.held == {}, "nothing written, the user's lock released"
    last = world.audit.events[-1]
    assert (last.action, last.outcome, last.target_id) == (
        AuditAction.ISSUE,
        AuditOutcome.NEEDS_SIGN_IN,
        MEGAN.object_id,
    )
    assert "sign-in asked" in last.detail and last.reason == "INC1"
    assert not [event for event in world.audit.events if event.outcome is AuditOutcome.SUCCEEDED]
    world.passes.signed_out.clear()  # signed in: the same command now runs
    assert isinstance(await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name)), Issued)


async def test_a_revoke_without_a_sign_in_keeps_the_pass(world: World) -> None:
    await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name))
    world.passes.signed_out.add(ADELE.object_id)
    with pytest.raises(SignInRequired):
        await world.tap.revoke(caller(ADELE), MEGAN.user_principal_name)
    assert MEGAN.object_id in world.passes.passes
    assert world.audit.events[-1].outcome is AuditOutcome.NEEDS_SIGN_IN


async def test_entras_refusal_is_audited_as_a_refusal_with_its_rule_and_sentence(world: World) -> None:
    sentence = (
        "Activate your Authentication Administrator role in Privileged Identity Management first, then try again."
    )

    async def refuse(user: DirectoryUser, **_: object) -> IssuedPass:
        raise EntraRefused(sentence, request_id="req-9")

    world.passes.create_pass = refuse  # type: ignore[method-assign]
    with pytest.raises(EntraRefused) as caught:
        await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name))
    assert caught.value.rule is Rule.ENTRA_REFUSED and world.locks.held == {}
    last = world.audit.events[-1]
    assert (last.outcome, last.rule, last.detail, last.graph_request_id) == (
        AuditOutcome.REFUSED,
        "entra_refused",
        sentence,
        "req-9",
    )


async def test_a_job_revoke_and_an_undelivered_pass_are_deleted_with_the_rights_named(world: World) -> None:
    issued = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name))
    assert isinstance(issued, Issued)
    info = issued.issued.info
    await world.tap.revoke_checked_pass(caller(ADELE), MEGAN.object_id, info, detail="bulk revoke")
    system = Caller("tapbot", "", "tapbot")
    await world.tap.revoke_checked_pass(system, MEGAN.object_id, info, detail="follow-through", acting_as=caller(ALEX))
    await world.tap.revoke_undelivered(caller(ADELE), issued.issued, "card failed", acting_as=caller(ALEX))
    await world.tap.revoke_undelivered(caller(ADELE), issued.issued, "card failed")
    assert [actor for write, _, actor in world.passes.actors if write == "delete"] == [
        ADELE.object_id,
        ALEX.object_id,
        ALEX.object_id,
        ADELE.object_id,
    ]
