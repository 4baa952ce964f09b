"""Bulk jobs before they run, without HTTP: the preflight's outcome per row, confirmation with and without a second
operator, approval, cancel. The run itself is tests/domain/test_bulk_run.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.approvals import ApprovalKind, ApprovalRules
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.bulk import BulkKind, JobStatus, RowState
from bot.domain.bulk_file import BulkFile, Duplicate, RequestedRow, RowProblem
from bot.domain.bulk_service import (
    MAX_CONCURRENT_CHECKS,
    JobNotWaiting,
    NothingToRetry,
    NotYourJob,
    Started,
    UnknownJob,
    WaitingForApproval,
)
from bot.domain.errors import GraphUnavailable, Refused, Rule, Throttled
from bot.domain.model import DirectoryUser, PassInfo, PassRequest, UserType
from tests.domain.world import ADELE, ALEX, MEGAN, STAFF, Sink, World, caller, rows_for
from tests.fakes import PROTECTED

GUEST = DirectoryUser("e0000000-0000-0000-0000-00000000000e", "jo_fabrikam.com#EXT#@contoso.test", "Jo", UserType.GUEST)


def file_of(rows: list[RequestedRow], **extra: object) -> BulkFile:
    fields: dict[str, object] = {
        "rows": tuple(rows),
        "duplicates": (),
        "problems": (),
        "columns": ("userPrincipalName",),
    }
    fields.update(extra)
    return BulkFile(**fields)  # type: ignore[arg-type]


async def world_with(rules: ApprovalRules) -> World:
    built = World(rules)
    await built.open_channel()
    return built


# --- preflight -------------------------------------------------------------------------------------------------------


async def test_preflight_gives_every_row_its_outcome_and_writes_nothing(world: World) -> None:
    world.directory.add(GUEST)
    world.directory.add(STAFF[2], PROTECTED)
    await world.tap.issue(caller(ALEX), PassRequest(STAFF[1].object_id))
    file = file_of(
        [
            RequestedRow(line=2, target=STAFF[0].user_principal_name, lifetime_minutes=120, one_time=True),
            RequestedRow(line=3, target=STAFF[1].object_id),
            RequestedRow(line=4, target=STAFF[2].object_id),
            RequestedRow(line=5, target=GUEST.object_id),
            RequestedRow(line=6, target="nobody@contoso.test"),
            RequestedRow(line=7, target=STAFF[3].object_id, lifetime_minutes=999_999),
            RequestedRow(line=8, target=STAFF[4].object_id, start_at=world.clock.now() + timedelta(days=91)),
        ],
        problems=(RowProblem(9, "=HYPERLINK()", "'=HYPERLINK()' is not a user principal name or object id"),),
        duplicates=(Duplicate(STAFF[0].user_principal_name, (2, 10)),),
        ignored_columns=("Departmnet",),
    )
    created_before = list(world.passes.created)
    pass_reads, method_reads = world.passes.reads, world.methods.reads
    checked = await world.bulk.check_file(caller(ADELE), BulkKind.ISSUE, file, "users.csv", "Europe/Berlin")

    rows = {row.line: row for row in await world.jobs.rows(checked.job.id)}
    assert rows[2].state is RowState.READY and (rows[2].lifetime_minutes, rows[2].one_time) == (120, True)
    assert rows[2].user_id == STAFF[0].object_id and rows[2].user_label == STAFF[0].label
    # Who holds a pass is read by the run, under the user's lock: the check reads no row's pass or methods.
    assert rows[3].state is RowState.READY and rows[3].pass_method_id is None
    assert (world.passes.reads, world.methods.reads) == (pass_reads, method_reads)
    assert rows[4].state is RowState.REFUSED and "protected group" in rows[4].reason
    assert rows[5].state is RowState.REFUSED
    assert rows[6].state is RowState.NOT_FOUND
    assert rows[7].state is RowState.REFUSED and rows[7].lifetime_minutes is None, "no journal overflow"
    assert rows[8].state is RowState.REFUSED and "90 days" in rows[8].reason
    assert rows[9].state is RowState.REFUSED and rows[9].target == "=HYPERLINK()"
    assert checked.counts == {RowState.READY: 2, RowState.REFUSED: 5, RowState.NOT_FOUND: 1}
    assert [row.line for row in checked.problems] == [4, 5, 6, 7, 8, 9]
    assert (checked.duplicates, checked.ignored_columns) == (1, ("Departmnet",))
    assert checked.job.status is JobStatus.CHECKED and checked.job.timezone == "Europe/Berlin"
    assert world.passes.created == created_before, "a preflight never writes to Graph"
    last = world.audit.events[-1]
    assert (last.action, last.outcome, last.target_upn) == (
        AuditAction.ISSUE,
        AuditOutcome.NEEDS_CONFIRMATION,
        f"bulk job {checked.job.id}",
    )


async def test_revoke_preflight_finds_who_holds_a_pass(world: World) -> None:
    await world.tap.issue(caller(ALEX), PassRequest(STAFF[0].object_id))
    checked = await world.bulk.check_file(caller(ADELE), BulkKind.REVOKE, file_of(rows_for(STAFF[:2])), "r.csv", "UTC")
    ready, none = await world.jobs.rows(checked.job.id)
    assert ready.state is RowState.READY and ready.pass_method_id == world.passes.passes[STAFF[0].object_id].method_id
    assert none.state is RowState.NO_PASS and none.reason == "Holds no pass."
    assert world.audit.events[-1].action is AuditAction.REVOKE


async def test_preflight_of_a_non_operator_is_refused_audited_and_keeps_no_job(world: World) -> None:
    with pytest.raises(Refused) as refused:
        await world.bulk.check_file(caller(MEGAN), BulkKind.ISSUE, file_of(rows_for(STAFF)), "users.csv", "UTC")
    assert refused.value.rule is Rule.NOT_OPERATOR
    assert world.jobs.jobs == {}
    assert world.audit.events[-1].outcome is AuditOutcome.REFUSED


async def test_preflight_needs_an_address_for_the_results(world: World) -> None:
    nowhere = replace(caller(ADELE), address=None)
    with pytest.raises(Refused) as refused:
        await world.bulk.check_file(nowhere, BulkKind.ISSUE, file_of(rows_for(STAFF)), "users.csv", "UTC")
    assert refused.value.rule is Rule.UNKNOWN_CALLER and world.jobs.jobs == {}


async def test_preflight_waits_out_throttling_and_gives_up_with_a_sentence(world: World) -> None:
    find_user = world.directory.find_user
    throttles = {"left": 3}

    async def throttled_at_first(reference: str) -> DirectoryUser | None:
        if throttles["left"] > 0:
            throttles["left"] -= 1
            raise Throttled(0)
        return await find_user(reference)

    world.directory.find_user = throttled_at_first  # type: ignore[method-assign]
    checked = await world.bulk.check_file(caller(ADELE), BulkKind.ISSUE, file_of(rows_for(STAFF[:1])), "u.csv", "UTC")
    assert checked.counts == {RowState.READY: 1}

    throttles["left"] = 1_000
    with pytest.raises(GraphUnavailable) as unavailable:
        await world.bulk.check_file(caller(ADELE), BulkKind.ISSUE, file_of(rows_for(STAFF[:1])), "u.csv", "UTC")
    assert "kept throttling the checks" in unavailable.value.user_message


async def test_preflight_checks_at_most_the_cap_at_once_and_retries_a_throttled_step_after_its_retry_after(
    world: World,
) -> None:
    many = [
        world.directory.add(DirectoryUser(f"f{n:07d}-0000-0000-0000-000000000000", f"many{n}@contoso.test", f"M {n}"))
        for n in range(MAX_CONCURRENT_CHECKS * 2 + 5)
    ]
    read_pass = world.passes.current_pass
    seen = {"in_flight": 0, "peak": 0, "reads": 0}
    throttled_once: set[str] = set()

    async def slow_and_once_throttled(user_id: str) -> PassInfo | None:
        seen["in_flight"] += 1
        seen["peak"] = max(seen["peak"], seen["in_flight"])
        try:
            for _ in range(3):  # lets every other check that may start now start
                await asyncio.sleep(0)
            if user_id == many[7].object_id and user_id not in throttled_once:
                throttled_once.add(user_id)
                raise Throttled(7)  # the pacer's lane gave up waiting: Retry-After 7 s
            seen["reads"] += 1
            return await read_pass(user_id)
        finally:
            seen["in_flight"] -= 1

    world.passes.current_pass = slow_and_once_throttled  # type: ignore[method-assign]
    # A revoke file: its check reads each row's pass (an issue file's check reads nothing per row).
    checked = await world.bulk.check_file(caller(ADELE), BulkKind.REVOKE, file_of(rows_for(many)), "u.csv", "UTC")
    assert checked.counts == {RowState.NO_PASS: len(many)}
    assert seen["peak"] == MAX_CONCURRENT_CHECKS, "never more row checks at once than the cap, and the cap is used"
    assert world.stopwatch.slept == [7], "the throttled step waited out its Retry-After once, then went again"
    assert seen["reads"] == len(many) and throttled_once == {many[7].object_id}


async def test_a_step_that_fails_the_file_stops_the_other_row_checks(world: World) -> None:
    never = asyncio.Event()
    stopped: list[str] = []

    async def down_for_one(user_id: str) -> PassInfo | None:
        if user_id == STAFF[0].object_id:
            raise GraphUnavailable("Microsoft Graph is unavailable right now.")
        try:
            await never.wait()
        except asyncio.CancelledError:
            stopped.append(user_id)
            raise
        return None

    world.passes.current_pass = down_for_one  # type: ignore[method-assign]
    with pytest.raises(GraphUnavailable):
        await world.bulk.check_file(caller(ADELE), BulkKind.REVOKE, file_of(rows_for(STAFF)), "u.csv", "UTC")
    await asyncio.sleep(0)
    assert sorted(stopped) == sorted(user.object_id for user in STAFF[1:]), "no check goes on for a refused file"


async def test_revoking_a_job_checks_the_users_it_delivered_to(world: World) -> None:
    issued = await world.checked_job(rows_for(STAFF[:3]))
    assert isinstance(await world.bulk.confirm(caller(ADELE), issued, replace_existing=False), Started)
    await world.runner.run(issued, Sink())
    checked = await world.bulk.check_job_revocation(caller(ADELE), issued)
    assert checked.job.kind is BulkKind.REVOKE and checked.job.file_name == f"job {issued}"
    assert checked.counts == {RowState.READY: 3}
    with pytest.raises(UnknownJob):
        await world.bulk.check_job_revocation(caller(ADELE), checked.job.id)  # a revoke job delivered nothing
    with pytest.raises(UnknownJob):
        await world.bulk.check_job_revocation(caller(ADELE), 404)


async def test_retry_needs_failed_rows_of_ones_own_job(world: World) -> None:
    job_id = await world.checked_job(rows_for(STAFF[:1]))
    with pytest.raises(NothingToRetry):
        await world.bulk.check_failed_rows(caller(ADELE), job_id)
    with pytest.raises(NotYourJob):
        await world.bulk.check_failed_rows(caller(ALEX), job_id)


# --- confirmation ----------------------------------------------------------------------------------------------------


async def test_confirm_queues_every_ready_row_and_the_run_skips_holders_unless_told_to_replace(world: World) -> None:
    await world.tap.issue(caller(ALEX), PassRequest(STAFF[0].object_id))
    held = world.passes.passes[STAFF[0].object_id]
    world.clock.advance(minutes=1)
    keep = await world.checked_job(rows_for(STAFF[:2]))
    replace_them = await world.checked_job(rows_for(STAFF[:2]))
    started = await world.bulk.confirm(caller(ADELE), keep, replace_existing=False)
    assert isinstance(started, Started) and started.job.status is JobStatus.RUNNING
    assert {row.state for row in await world.jobs.rows(keep)} == {RowState.PENDING}
    await world.runner.run(keep, Sink())
    assert [(row.state, row.reason) for row in await world.jobs.rows(keep)] == [
        (
            RowState.SKIPPED,
            f"Holds a pass created {held.created_at:%Y-%m-%d %H:%M} UTC; you chose not to replace passes users "
            "already hold.",
        ),
        (RowState.DELIVERED, ""),
    ]
    assert world.passes.passes[STAFF[0].object_id] == held, "not replaced"
    assert isinstance(await world.bulk.confirm(caller(ADELE), replace_them, replace_existing=True), Started)
    assert {row.state for row in await world.jobs.rows(replace_them)} == {RowState.PENDING}
    assert world.jobs.jobs[replace_them].replace_existing is True
    assert world.events(AuditOutcome.SUCCEEDED)[-1] == "issue:None"
    await world.runner.run(replace_them, Sink())
    rows = await world.jobs.rows(replace_them)
    assert [row.state for row in rows] == [RowState.DELIVERED, RowState.SKIPPED]
    assert world.passes.passes[STAFF[0].object_id] != held, "created before the check: replaced"
    assert "at or after the time the file was checked" in rows[1].reason, "job `keep` made it after this check"


async def test_confirm_is_for_the_requester_once(world: World) -> None:
    job_id = await world.checked_job(rows_for(STAFF[:1]))
    with pytest.raises(NotYourJob):
        await world.bulk.confirm(caller(ALEX), job_id, replace_existing=False)
    with pytest.raises(UnknownJob):
        await world.bulk.confirm(caller(ADELE), 0, replace_existing=False)
    await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    with pytest.raises(JobNotWaiting) as twice:
        await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert "already running" in twice.value.user_message


async def test_a_run_above_the_row_threshold_waits_for_a_second_operator() -> None:
    world = await world_with(ApprovalRules(bulk_row_threshold=3))
    small = await world.checked_job(rows_for(STAFF[:3]))
    assert isinstance(await world.bulk.confirm(caller(ADELE), small, replace_existing=False), Started)
    large = await world.checked_job(rows_for(STAFF[:4]))
    waiting = await world.bulk.confirm(caller(ADELE), large, replace_existing=False)
    assert isinstance(waiting, WaitingForApproval)
    assert waiting.job.status is JobStatus.AWAITING_APPROVAL and waiting.job.approval_request_id == waiting.request.id
    assert waiting.request.kind is ApprovalKind.BULK and waiting.request.target_id == f"job:{large}"
    assert "Bulk run of 4 passes is above the 3-row limit" in waiting.request.reason
    assert {row.state for row in await world.jobs.rows(large)} == {RowState.PENDING}


async def test_the_lifetime_threshold_counts_each_rows_own_lifetime() -> None:
    world = await world_with(ApprovalRules(lifetime_threshold_minutes=240))
    at_limit = await world.checked_job(rows_for(STAFF[:2], lifetime_minutes=240))
    assert isinstance(await world.bulk.confirm(caller(ADELE), at_limit, replace_existing=False), Started)
    both = await world_with(ApprovalRules(lifetime_threshold_minutes=240, bulk_row_threshold=1))
    job_id = await both.checked_job(rows_for(STAFF[:3], lifetime_minutes=300))
    waiting = await both.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert isinstance(waiting, WaitingForApproval)
    assert "above the 1-row limit" in waiting.request.reason
    assert "3 of its passes last longer than the 240-minute lifetime limit" in waiting.request.reason
    assert waiting.request.lifetime_minutes == 300


async def test_a_revoke_run_never_waits_for_approval() -> None:
    world = await world_with(ApprovalRules(bulk_row_threshold=1, lifetime_threshold_minutes=60))
    for user in STAFF[:3]:
        await world.tap.issue(caller(ALEX), PassRequest(user.object_id))
    job_id = await world.checked_job(rows_for(STAFF[:3]), BulkKind.REVOKE)
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False), Started)


async def test_a_run_needing_approval_without_an_approvals_channel_stays_checked() -> None:
    world = World(ApprovalRules(bulk_row_threshold=1))
    job_id = await world.checked_job(rows_for(STAFF[:2]))
    with pytest.raises(Refused) as refused:
        await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert refused.value.rule is Rule.NO_APPROVALS_CHANNEL
    assert world.jobs.jobs[job_id].status is JobStatus.CHECKED


async def test_an_approved_run_starts_once_and_not_after_a_cancel() -> None:
    world = await world_with(ApprovalRules(bulk_row_threshold=1))
    job_id = await world.checked_job(rows_for(STAFF[:2]))
    waiting = await world.bulk.confirm(caller(ADELE), job_id, replace_existing=False)
    assert isinstance(waiting, WaitingForApproval)
    job = await world.bulk.approved(waiting.request)
    assert job is not None and job.status is JobStatus.RUNNING and job.started_at == world.clock.now()
    assert await world.bulk.approved(waiting.request) is None, "a replayed approval starts nothing"

    other = await world.checked_job(rows_for(STAFF[2:4]))
    waiting = await world.bulk.confirm(caller(ADELE), other, replace_existing=False)
    assert isinstance(waiting, WaitingForApproval)
    assert (await world.bulk.cancel(caller(ADELE), other)).status is JobStatus.DISCARDED
    assert await world.bulk.approved(waiting.request) is None


# --- cancel ----------------------------------------------------------------------------------------------------------


async def test_cancel_discards_a_waiting_job_and_stops_a_running_one(world: World) -> None:
    checked = await world.checked_job(rows_for(STAFF[:1]))
    assert (await world.bulk.cancel(caller(ADELE), checked)).status is JobStatus.DISCARDED
    running = await world.checked_job(rows_for(STAFF[1:2]))
    await world.bulk.confirm(caller(ADELE), running, replace_existing=False)
    assert (await world.bulk.cancel(caller(ADELE), running)).status is JobStatus.CANCELLING
    with pytest.raises(NotYourJob):
        await world.bulk.cancel(caller(ALEX), running)
    assert world.events(AuditOutcome.NOTHING_TO_DO) == ["issue:None", "issue:None"]


async def test_job_numbers_no_job_can_have_are_unknown(world: World) -> None:
    assert await world.bulk.job(0) is None
    assert await world.bulk.job(10**12) is None
    with pytest.raises(UnknownJob):
        await world.bulk.cancel(caller(ADELE), -1)
