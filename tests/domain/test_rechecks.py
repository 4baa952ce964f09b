"""The world is checked again when a write happens (approvals, bulk runs), one check-and-create per user at a time,
and no pass is created that nobody can be shown: the rules of issue 9, items 3, 4, 7 and 9, without I/O."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.domain.audit import AuditOutcome
from bot.domain.bulk import BulkKind, RowState
from bot.domain.bulk_file import RequestedRow
from bot.domain.bulk_row_runner import CHECK_TIME_MARGIN, NO_LONGER_OPERATOR
from bot.domain.bulk_service import Started, WaitingForApproval
from bot.domain.decisions import Decided
from bot.domain.errors import Refused, Rule, TargetBusy
from bot.domain.model import DirectoryUser, OnboardRequest, PassRequest
from bot.domain.service import AwaitingApproval, Issued
from tests.domain.world import ADELE, ALEX, LEE, MEGAN, STAFF, Sink, World, caller
from tests.fakes import PROTECTED

# --- item 7: one check-and-create per user at a time ---------------------------------------------------------------


async def test_two_operators_issuing_at_once_get_one_pass_and_one_question(world: World) -> None:
    world.tap._lock_wait = timedelta(seconds=2)
    results = await asyncio.gather(
        world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name)),
        world.tap.issue(caller(ALEX), PassRequest(MEGAN.user_principal_name)),
    )
    assert sorted(type(result).__name__ for result in results) == ["Issued", "ReplaceNeeded"]
    assert world.passes.created == [MEGAN.object_id]
    assert world.events(AuditOutcome.SUCCEEDED) == ["issue:None"]
    assert world.locks.held == {}, "every lock is given back"


async def test_a_held_lock_refuses_with_a_sentence_and_writes_nothing(world: World) -> None:
    assert await world.locks.lock_target(MEGAN.object_id, "another-replica", world.clock.now(), timedelta(minutes=1))
    with pytest.raises(TargetBusy) as busy:
        await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name))
    assert "Another operator is issuing a pass for Megan Bowen" in busy.value.user_message
    assert world.passes.created == []
    world.clock.advance(minutes=2)  # the other replica died: its lock runs out
    assert isinstance(await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name)), Issued)


async def test_double_replace_click_replaces_once(world: World) -> None:
    await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name))
    shown = world.passes.passes[MEGAN.object_id]
    world.tap._lock_wait = timedelta(seconds=2)
    click = PassRequest(MEGAN.object_id, replace=True, replace_method_id=shown.method_id)
    first, second = await asyncio.gather(world.tap.issue(caller(ADELE), click), world.tap.issue(caller(ADELE), click))
    assert sorted(type(result).__name__ for result in (first, second)) == ["Issued", "ReplaceNeeded"]
    assert len(world.passes.created) == 2


# --- item 9: bounds before any create --------------------------------------------------------------------------------


async def test_starts_beyond_the_horizon_or_past_are_refused_before_graph(world: World) -> None:
    for start, rule in (
        (world.clock.now() + timedelta(days=91), Rule.START_TOO_LATE),
        (world.clock.now() - timedelta(minutes=5), Rule.START_IN_PAST),
    ):
        with pytest.raises(Refused) as refused:
            await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, start_at=start))
        assert refused.value.rule is rule
    assert world.passes.created == []
    with pytest.raises(Refused) as refused:  # the last line of defence, whatever path got there
        await world.tap.create_checked_pass(
            caller(ADELE), MEGAN, lifetime_minutes=43201, one_time=False, start_at=None, existing=None
        )
    assert refused.value.rule is Rule.LIFETIME_RANGE and world.passes.created == []


# --- item 4: approvals check the requester and the target again ------------------------------------------------------


async def test_requester_removed_before_approval_gets_no_pass(world: World) -> None:
    awaiting = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    world.remove_operator(ADELE)
    decided = await world.decisions.decide(caller(ALEX), awaiting.request.id, approve=True)
    assert isinstance(decided, Decided) and decided.issued is None
    assert decided.not_issued is not None and "no longer a TAP operator" in decided.not_issued
    assert world.passes.created == []
    assert "decision:not_operator" in world.events(AuditOutcome.REFUSED)


async def test_target_that_became_a_role_holder_before_approval_gets_no_pass(world: World) -> None:
    awaiting = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    world.directory.roles[MEGAN.object_id] = ("Global Administrator",)
    decided = await world.decisions.decide(caller(ALEX), awaiting.request.id, approve=True)
    assert isinstance(decided, Decided) and decided.not_issued and "Global Administrator" in decided.not_issued
    assert world.passes.created == []


async def test_approval_never_replaces_a_pass_issued_after_the_request(world: World) -> None:
    awaiting = await world.tap.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name, lifetime_minutes=480))
    assert isinstance(awaiting, AwaitingApproval)
    world.clock.advance(minutes=5)
    await world.tap.issue(caller(ALEX), PassRequest(MEGAN.user_principal_name))  # handed over by a colleague
    decided = await world.decisions.decide(caller(ALEX), awaiting.request.id, approve=True)
    assert isinstance(decided, Decided) and decided.not_issued and "another Temporary Access Pass" in decided.not_issued
    assert world.passes.created == [MEGAN.object_id]


async def test_onboarding_approval_needs_the_requester_to_still_be_the_manager(world: World) -> None:
    awaiting = await world.onboarding.onboard(caller(MEGAN), _onboard(LEE))
    assert isinstance(awaiting, AwaitingApproval)
    world.directory.managers[LEE.object_id] = ALEX.object_id
    decided = await world.decisions.decide(caller(ADELE), awaiting.request.id, approve=True)
    assert isinstance(decided, Decided) and decided.not_issued and "does not report to you" in decided.not_issued
    assert world.passes.created == []


def _onboard(user: DirectoryUser) -> OnboardRequest:
    return OnboardRequest(user.user_principal_name)


# --- item 3: bulk rows obey the four-eyes rules -----------------------------------------------------------------------


async def test_bulk_row_above_the_lifetime_threshold_waits_for_a_second_operator(world: World) -> None:
    job_id = await world.checked_job(
        [RequestedRow(2, STAFF[0].user_principal_name, 480), RequestedRow(3, STAFF[1].object_id)]
    )
    result = await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert isinstance(result, WaitingForApproval)
    assert "240-minute lifetime limit" in result.request.reason and "the longest 480 minutes" in result.request.reason
    assert world.passes.created == []
    short = await world.checked_job([RequestedRow(2, STAFF[2].object_id, 120)])
    assert isinstance(await world.bulk.confirm(caller(ADELE), short, replace_existing=False), Started)


# --- item 4: bulk runs check the requester and every target again -----------------------------------------------------


async def _start(world: World, rows: list[RequestedRow], kind: BulkKind = BulkKind.ISSUE) -> int:
    job_id = await world.checked_job(rows, kind)
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False), Started)
    return job_id


async def test_bulk_run_of_a_removed_operator_issues_nothing(world: World) -> None:
    job_id = await _start(world, [RequestedRow(line, user.object_id) for line, user in enumerate(STAFF, start=2)])
    world.remove_operator(ADELE)
    sink = Sink()
    await world.runner.run(job_id, sink)
    assert world.passes.created == []
    rows = await world.jobs.rows(job_id)
    assert {row.state for row in rows} == {RowState.FAILED} and {row.reason for row in rows} == {NO_LONGER_OPERATOR}
    assert sink.ends == [{RowState.FAILED: len(STAFF)}]
    assert "issue:not_operator" in world.events(AuditOutcome.REFUSED)


async def test_bulk_row_whose_user_became_a_role_holder_fails_with_the_rule(world: World) -> None:
    job_id = await _start(world, [RequestedRow(line, user.object_id) for line, user in enumerate(STAFF, start=2)])
    world.directory.roles[STAFF[1].object_id] = ("Global Administrator",)
    world.directory.add(STAFF[2], PROTECTED)
    sink = Sink()
    await world.runner.run(job_id, sink)
    rows = {row.line: row for row in await world.jobs.rows(job_id)}
    assert rows[3].state is RowState.FAILED and "Global Administrator" in rows[3].reason
    assert rows[4].state is RowState.FAILED and "protected group" in rows[4].reason
    assert sorted(world.passes.created) == sorted(user.object_id for user in (STAFF[0], STAFF[3], STAFF[4]))
    assert [row.state for line, row in rows.items() if line not in (3, 4)] == [RowState.DELIVERED] * 3
    refused = world.events(AuditOutcome.REFUSED)
    assert "issue:role_holder" in refused and "issue:protected_group" in refused


async def test_bulk_row_never_replaces_a_pass_issued_after_the_preflight(world: World) -> None:
    job_id = await world.checked_job([RequestedRow(2, STAFF[0].object_id), RequestedRow(3, STAFF[1].object_id)])
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=True), Started)
    await world.tap.issue(caller(ALEX), PassRequest(STAFF[0].object_id))  # a colleague, meanwhile
    colleague = world.passes.passes[STAFF[0].object_id]
    await world.runner.run(job_id, Sink())
    rows = {row.line: row for row in await world.jobs.rows(job_id)}
    assert rows[2].state is RowState.SKIPPED and "at or after the time the file was checked" in rows[2].reason
    assert world.passes.passes[STAFF[0].object_id] == colleague, "even with the replace switch on"
    assert rows[3].state is RowState.DELIVERED


async def test_bulk_row_replaces_a_pass_created_before_the_check(world: World) -> None:
    await world.tap.issue(caller(ALEX), PassRequest(STAFF[0].object_id))
    world.clock.advance(minutes=1)
    job_id = await world.checked_job([RequestedRow(2, STAFF[0].object_id)])
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=True), Started)
    await world.runner.run(job_id, Sink())
    assert [row.state for row in await world.jobs.rows(job_id)] == [RowState.DELIVERED]
    assert world.passes.created == [STAFF[0].object_id, STAFF[0].object_id]


async def test_bulk_row_skips_a_pass_dated_within_the_margin_before_the_check(world: World) -> None:
    """Graph's clock and ours may differ (and a date may come in whole seconds): a pass Graph dates just before the
    check may have been made just after it, so it is skipped, never replaced."""
    await world.tap.issue(caller(ALEX), PassRequest(STAFF[0].object_id))
    close = world.passes.passes[STAFF[0].object_id]
    world.clock.advance(seconds=CHECK_TIME_MARGIN.total_seconds() - 1)
    job_id = await world.checked_job([RequestedRow(2, STAFF[0].object_id)])
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=True), Started)
    await world.runner.run(job_id, Sink())
    [row] = await world.jobs.rows(job_id)
    assert row.state is RowState.SKIPPED and world.passes.passes[STAFF[0].object_id] == close


async def test_a_removed_operator_cannot_start_a_checked_job(world: World) -> None:
    job_id = await world.checked_job([RequestedRow(2, STAFF[0].object_id)])
    world.remove_operator(ADELE)
    with pytest.raises(Refused) as refused:
        await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert refused.value.rule is Rule.NOT_OPERATOR
    assert [job.status.value for job in world.jobs.jobs.values()] == ["checked"]


async def test_bulk_revoke_by_a_removed_operator_revokes_nothing(world: World) -> None:
    for user in STAFF[:2]:
        await world.tap.issue(caller(ALEX), PassRequest(user.object_id))
    job_id = await _start(
        world, [RequestedRow(2, STAFF[0].object_id), RequestedRow(3, STAFF[1].object_id)], BulkKind.REVOKE
    )
    world.remove_operator(ADELE)
    await world.runner.run(job_id, Sink())
    assert world.passes.deleted == []
    assert {row.reason for row in await world.jobs.rows(job_id)} == {NO_LONGER_OPERATOR}


async def test_retry_of_failed_rows_goes_through_the_preflight_again(world: World) -> None:
    job_id = await _start(world, [RequestedRow(2, STAFF[0].object_id)])
    world.directory.roles[STAFF[0].object_id] = ("Helpdesk Administrator",)
    await world.runner.run(job_id, Sink())
    retry = await world.bulk.check_failed_rows(caller(ADELE), job_id)
    assert retry.counts == {RowState.REFUSED: 1}
    world.remove_operator(ADELE)
    with pytest.raises(Refused) as refused:
        await world.bulk.check_failed_rows(caller(ADELE), job_id)
    assert refused.value.rule is Rule.NOT_OPERATOR


# --- item 9: a page that cannot be shown ends its rows FAILED once --------------------------------------------------


async def test_a_page_that_cannot_be_shown_revokes_its_passes_and_is_never_issued_again(world: World) -> None:
    job_id = await _start(world, [RequestedRow(line, user.object_id) for line, user in enumerate(STAFF, start=2)])
    await world.runner.run(job_id, Sink(raise_on_page=True))
    rows = await world.jobs.rows(job_id)
    assert {row.state for row in rows} == {RowState.FAILED}
    assert all("the pass was revoked" in row.reason for row in rows)
    assert world.passes.passes == {} and len(world.passes.created) == len(STAFF)
    await world.runner.run(job_id, Sink())  # a later round, or another replica adopting the job
    assert len(world.passes.created) == len(STAFF), "no row is issued twice"
