"""The approval desk without HTTP: opening requests (and when it cannot), who sees which, expiry exactly once, the
requester's time zone, and the approvals channel."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.errors import Refused, Rule
from bot.domain.model import DirectoryUser, PassRequest
from bot.domain.service import AwaitingApproval
from tests.domain.world import ADELE, ALEX, LEE, MEGAN, STAFF, World, caller


async def open_for(
    world: World, requester: DirectoryUser = ADELE, user: DirectoryUser = MEGAN, **options: object
) -> ApprovalRequest:
    return await world.desk.open_request(
        ApprovalKind.LONG_LIFETIME,
        caller(requester),
        user,
        start_at=None,
        lifetime_minutes=480,
        one_time=False,
        reason="Lifetime 480 minutes is above the 240-minute limit for one operator.",
        **options,  # type: ignore[arg-type]
    )


async def test_a_request_is_saved_pending_with_its_deadline_and_audited(world: World) -> None:
    request = await open_for(world, timezone="Europe/Berlin")
    assert request.status is ApprovalStatus.PENDING and request.requester == caller(ADELE).address
    assert request.expires_at == world.clock.now() + timedelta(hours=24)
    assert request.timezone == "Europe/Berlin"
    assert await world.desk.request(request.id) == request
    event = world.audit.events[-1]
    assert (event.action, event.outcome, event.target_id) == (
        AuditAction.APPROVAL,
        AuditOutcome.NEEDS_CONFIRMATION,
        MEGAN.object_id,
    )


async def test_no_request_without_an_approvals_channel_or_an_address() -> None:
    world = World()  # no channel registered
    with pytest.raises(Refused) as refused:
        await open_for(world)
    assert refused.value.rule is Rule.NO_APPROVALS_CHANNEL and "/tap approvals here" in refused.value.user_message
    await world.open_channel()
    with pytest.raises(Refused) as refused:
        await world.desk.open_request(
            ApprovalKind.LONG_LIFETIME,
            replace(caller(ADELE), address=None),
            MEGAN,
            start_at=None,
            lifetime_minutes=480,
            one_time=False,
            reason="long",
        )
    assert refused.value.rule is Rule.UNKNOWN_CALLER
    assert world.approvals.requests == {}


async def test_a_long_operator_pass_becomes_a_request_with_the_limit_named(world: World) -> None:
    awaiting = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    assert awaiting.request.kind is ApprovalKind.LONG_LIFETIME
    assert awaiting.request.reason == "Lifetime 480 minutes is above the 240-minute limit for one operator."
    assert world.passes.created == []
    short = await world.tap.issue(caller(ADELE), PassRequest(STAFF[0].user_principal_name, lifetime_minutes=240))
    assert not isinstance(short, AwaitingApproval), "at the threshold is not above it"


async def test_operators_see_every_pending_request_others_only_their_own(world: World) -> None:
    own = await open_for(world, requester=MEGAN, user=LEE)
    other = await open_for(world, requester=ALEX, user=STAFF[0])
    assert {request.id for request in await world.desk.requests_for(caller(ADELE), operator=True)} == {
        own.id,
        other.id,
    }
    assert [request.id for request in await world.desk.requests_for(caller(MEGAN), operator=False)] == [own.id]


async def test_overdue_requests_expire_once_and_are_audited(world: World) -> None:
    early = await open_for(world, user=MEGAN)
    world.clock.advance(hours=12)
    late = await open_for(world, user=STAFF[0])
    world.clock.advance(hours=12)
    expired = await world.desk.expire_overdue()
    assert [request.id for request in expired] == [early.id]
    assert expired[0].status is ApprovalStatus.EXPIRED and expired[0].decided_at == world.clock.now()
    assert await world.desk.expire_overdue() == [], "closed once, also with several replicas"
    assert (await world.desk.request(late.id)).status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert world.audit.events[-1].outcome is AuditOutcome.FAILED and early.id in world.audit.events[-1].detail


async def test_the_requesters_time_zone_is_kept_once_and_only_if_it_fits(world: World) -> None:
    request = await open_for(world)
    assert request.timezone is None
    kept = await world.desk.remember_timezone(request, "Asia/Tokyo")
    assert kept.timezone == "Asia/Tokyo" and (await world.desk.request(request.id)).timezone == "Asia/Tokyo"  # type: ignore[union-attr]
    assert (await world.desk.remember_timezone(kept, "Europe/Paris")).timezone == "Asia/Tokyo"
    other = await open_for(world, user=STAFF[0])
    assert (await world.desk.remember_timezone(other, "X" * 65)).timezone is None


async def test_the_approvals_channel_is_per_tenant_whatever_the_case(world: World) -> None:
    mixed_case = replace(caller(ALEX), tenant_id="ABCDEF00-0000-0000-0000-00000000000F")
    channel = await world.desk.register_channel(mixed_case, "https://connector", "19:other")
    assert channel.tenant_id == "abcdef00-0000-0000-0000-00000000000f"
    assert await world.desk.channel("abcDEF00-0000-0000-0000-00000000000f") == channel
    assert world.audit.events[-1].detail == "approvals channel set: 19:other"
