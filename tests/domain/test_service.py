"""The issuing rules, without any I/O: each rule has a test that fails when the rule is removed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.errors import Refused, Rule, UserNotFound
from bot.domain.model import Caller, DirectoryUser, PassRequest, PolicyTarget, TargetType, UserType
from bot.domain.service import Issued, NothingToRevoke, ReplaceNeeded, Revoked
from tests.fakes import (
    ADELE,
    EXCLUDED,
    MEGAN,
    OPERATORS,
    PROTECTED,
    TENANT,
    FakeDirectory,
    FakePasses,
    FixedClock,
    MemoryAudit,
    MemoryTargetLocks,
    default_policy,
    tap_service,
)

DIEGO = DirectoryUser("c0000000-0000-0000-0000-00000000000c", "diego@contoso.test", "Diego Siciliani")


class World:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.directory = FakeDirectory()
        self.passes = FakePasses(self.clock)
        self.audit = MemoryAudit()
        self.locks = MemoryTargetLocks()
        self.directory.add(ADELE, OPERATORS)
        self.directory.add(MEGAN)
        self.directory.add(DIEGO)
        self.service = tap_service(
            directory=self.directory, passes=self.passes, audit=self.audit, clock=self.clock, locks=self.locks
        )

    async def refusal(self, request: PassRequest, caller: Caller | None = None) -> Refused:
        with pytest.raises(Refused) as caught:
            await self.service.issue(caller or OPERATOR, request)
        assert self.passes.created == [], "a refused request must not write to Graph"
        last = self.audit.events[-1]
        assert last.outcome is AuditOutcome.REFUSED and last.rule == caught.value.rule.value
        return caught.value


OPERATOR = Caller(ADELE.object_id, TENANT, "Adele Vance")


@pytest.fixture
def world() -> World:
    return World()


async def test_operator_issues_a_pass_with_policy_defaults(world: World) -> None:
    result = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    assert isinstance(result, Issued)
    assert result.issued.info.lifetime_minutes == 60
    assert result.issued.info.one_time is False
    assert world.passes.created == [MEGAN.object_id]
    event = world.audit.events[-1]
    assert (event.action, event.outcome, event.target_id) == (
        AuditAction.ISSUE,
        AuditOutcome.SUCCEEDED,
        MEGAN.object_id,
    )
    assert event.pass_method_id == result.issued.info.method_id


async def test_non_operator_is_refused(world: World) -> None:
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name), Caller(DIEGO.object_id, TENANT))
    assert refusal.rule is Rule.NOT_OPERATOR


async def test_caller_from_another_tenant_is_refused_even_if_in_the_group(world: World) -> None:
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name), Caller(ADELE.object_id, "other-tenant"))
    assert refusal.rule is Rule.WRONG_TENANT


async def test_caller_without_identity_is_refused(world: World) -> None:
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name), Caller("", TENANT))
    assert refusal.rule is Rule.UNKNOWN_CALLER


async def test_self_issue_is_refused(world: World) -> None:
    refusal = await world.refusal(PassRequest(ADELE.user_principal_name))
    assert refusal.rule is Rule.SELF_ISSUE


async def test_guest_is_refused(world: World) -> None:
    guest = world.directory.add(
        DirectoryUser("d0000000-0000-0000-0000-00000000000d", "jo_fabrikam.com#EXT#@contoso.test", "Jo", UserType.GUEST)
    )
    refusal = await world.refusal(PassRequest(guest.object_id))
    assert refusal.rule is Rule.GUEST


async def test_disabled_account_is_refused(world: World) -> None:
    disabled = world.directory.add(
        replace(DIEGO, object_id="e0000000-0000-0000-0000-00000000000e", account_enabled=False)
    )
    refusal = await world.refusal(PassRequest(disabled.object_id))
    assert refusal.rule is Rule.DISABLED


async def test_role_holder_is_refused_and_the_role_is_named(world: World) -> None:
    admin = world.directory.add(
        DirectoryUser("f0000000-0000-0000-0000-00000000000f", "isaiah@contoso.test", "Isaiah"),
        roles=("Global Administrator",),
    )
    refusal = await world.refusal(PassRequest(admin.user_principal_name))
    assert refusal.rule is Rule.ROLE_HOLDER
    assert "Global Administrator" in refusal.user_message


async def test_member_of_protected_group_is_refused(world: World) -> None:
    world.directory.add(MEGAN, PROTECTED)
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name))
    assert refusal.rule is Rule.PROTECTED_GROUP


async def test_policy_disabled_is_refused(world: World) -> None:
    world.directory.policy = default_policy(enabled=False)
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name))
    assert refusal.rule is Rule.POLICY_DISABLED


async def test_user_in_policy_exclude_group_is_refused(world: World) -> None:
    world.directory.add(MEGAN, EXCLUDED)
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name))
    assert refusal.rule is Rule.OUTSIDE_POLICY_SCOPE


async def test_user_outside_policy_include_targets_is_refused(world: World) -> None:
    pilot = "33333333-0000-0000-0000-000000000001"
    world.directory.policy = default_policy(include_targets=(PolicyTarget(TargetType.GROUP, pilot),))
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name))
    assert refusal.rule is Rule.OUTSIDE_POLICY_SCOPE
    world.directory.add(MEGAN, pilot)
    assert isinstance(await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name)), Issued)


async def test_lifetime_outside_policy_range_is_refused_with_the_range(world: World) -> None:
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name, lifetime_minutes=600))
    assert refusal.rule is Rule.LIFETIME_RANGE
    assert "1 hour and 8 hours" in refusal.user_message
    refusal = await world.refusal(PassRequest(MEGAN.user_principal_name, lifetime_minutes=30))
    assert refusal.rule is Rule.LIFETIME_RANGE


async def test_policy_forces_one_time(world: World) -> None:
    world.directory.policy = default_policy(one_time_forced=True)
    result = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name, one_time=False))
    assert isinstance(result, Issued) and result.issued.info.one_time is True


async def test_unknown_user_is_reported_and_audited(world: World) -> None:
    with pytest.raises(UserNotFound):
        await world.service.issue(OPERATOR, PassRequest("nobody@contoso.test"))
    assert world.audit.events[-1].outcome is AuditOutcome.FAILED
    assert world.passes.created == []


async def test_existing_live_pass_needs_explicit_replace(world: World) -> None:
    await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    first = world.passes.passes[MEGAN.object_id]
    result = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name, lifetime_minutes=120))
    assert isinstance(result, ReplaceNeeded)
    assert result.existing == first and result.lifetime_minutes == 120
    assert world.passes.created == [MEGAN.object_id], "no silent replacement"
    assert world.audit.events[-1].outcome is AuditOutcome.NEEDS_CONFIRMATION

    replaced = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name, replace=True))
    assert isinstance(replaced, Issued) and replaced.issued.replaced == first


async def test_replace_button_only_replaces_the_pass_it_was_shown(world: World) -> None:
    await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    shown = world.passes.passes[MEGAN.object_id]
    await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name, replace=True))  # a colleague
    stale = PassRequest(MEGAN.object_id, replace=True, replace_method_id=shown.method_id)
    assert isinstance(await world.service.issue(OPERATOR, stale), ReplaceNeeded)


async def test_expired_pass_is_replaced_without_asking(world: World) -> None:
    await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    world.clock.advance(hours=2)
    assert isinstance(await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name)), Issued)


async def test_revoke_and_status(world: World) -> None:
    assert isinstance(await world.service.revoke(OPERATOR, MEGAN.user_principal_name), NothingToRevoke)
    await world.service.issue(
        OPERATOR, PassRequest(MEGAN.user_principal_name, start_at=world.clock.now() + timedelta(hours=1))
    )
    status = await world.service.status(OPERATOR, MEGAN.user_principal_name)
    assert status.current is not None and status.current.start_at > world.clock.now()
    revoked = await world.service.revoke(OPERATOR, MEGAN.user_principal_name)
    assert isinstance(revoked, Revoked) and world.passes.deleted == [MEGAN.object_id]
    assert (await world.service.status(OPERATOR, MEGAN.user_principal_name)).current is None


async def test_revoke_status_and_policy_require_an_operator(world: World) -> None:
    stranger = Caller(DIEGO.object_id, TENANT)
    for command in (
        world.service.revoke(stranger, MEGAN.user_principal_name),
        world.service.status(stranger, MEGAN.user_principal_name),
        world.service.policy(stranger),
    ):
        with pytest.raises(Refused) as caught:
            await command
        assert caught.value.rule is Rule.NOT_OPERATOR
    assert world.passes.deleted == []


async def test_audit_events_never_carry_the_pass(world: World) -> None:
    result = await world.service.issue(OPERATOR, PassRequest(MEGAN.user_principal_name))
    assert isinstance(result, Issued)
    secret = result.issued.secret.reveal()
    assert secret not in repr(result) and secret not in str(result.issued)
    assert all(secret not in repr(event) for event in world.audit.events)
