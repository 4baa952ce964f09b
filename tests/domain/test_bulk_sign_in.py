"""A bulk run whose requester's sign-in lapses (delegated writes): it pauses in WAITING_SIGN_IN with nothing written
twice or lost, nobody adopts it, the requester's sign-in resumes it where it stopped (every rule checked again),
Cancel still works, and a job nobody resumes is cancelled after the approval request lifetime."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.audit import AuditOutcome
from bot.domain.bulk import BulkKind, JobStatus, Progress, RowState
from bot.domain.bulk_row_runner import NO_LONGER_OPERATOR
from bot.domain.bulk_service import NotYourJob, Started
from bot.domain.errors import SignInRequired
from bot.domain.model import DirectoryUser, IssuedPass
from tests.domain.world import ADELE, ALEX, Sink, World, caller, rows_for

CROWD = [
    DirectoryUser(f"e0000000-0000-0000-0000-{n:012d}", f"person{n}@contoso.test", f"Person {n}") for n in range(30)
]


async def started(world: World, users: list[DirectoryUser], kind: BulkKind = BulkKind.ISSUE) -> int:
    job_id = await world.checked_job(rows_for(users), kind)
    assert isinstance(await world.bulk.confirm(caller(ADELE), job_id, replace_existing=True), Started)
    return job_id


def lapse_after(world: World, creates: int) -> None:
    """Adele's sign-in lapses (once) when `creates` passes were created: her later writes find no token until she
    signs in again."""
    create_pass = world.passes.create_pass
    lapsed = False

    async def lapsing(user: DirectoryUser, **options: object) -> IssuedPass:
        nonlocal lapsed
        if len(world.passes.created) >= creates and not lapsed:
            lapsed = True
            world.passes.signed_out.add(ADELE.object_id)
        if ADELE.object_id in world.passes.signed_out:
            raise SignInRequired(ADELE.object_id)  # before anything is sent, like the Graph adapter
        return await create_pass(user, **options)  # type: ignore[arg-type]

    world.passes.create_pass = lapsing  # type: ignore[method-assign]


def sign_in_again(world: World) -> None:
    world.passes.signed_out.discard(ADELE.object_id)


def counts(rows: list) -> dict[RowState, int]:  # type: ignore[type-arg]
    found: dict[RowState, int] = {}
    for row in rows:
        found[row.state] = found.get(row.state, 0) + 1
    return found


@pytest.fixture
def crowd(world: World) -> list[DirectoryUser]:
    for user in CROWD:
        world.directory.add(user)
    return CROWD


async def test_a_lapsed_sign_in_pauses_the_run_with_every_created_pass_shown_and_the_rest_waiting(
    world: World, crowd: list[DirectoryUser]
) -> None:
    lapse_after(world, 7)
    job_id = await started(world, crowd)
    sink = Sink()
    paused = await world.runner.run(job_id, sink)

    assert paused.status is JobStatus.WAITING_SIGN_IN and paused.paused_at == world.clock.now()
    assert len(world.passes.created) == 7
    assert counts(await world.jobs.rows(job_id)) == {RowState.DELIVERED: 7, RowState.PENDING: 23}
    assert sorted(entry.row.line for page in sink.pages for entry in page) == list(range(2, 9))
    assert sink.ends == [], "a paused run has not finished"
    assert len(sink.pauses) == 1 and sink.pauses[0].done == 7 and sink.pauses[0].total == 30
    assert sink.pauses[0].job.status is JobStatus.WAITING_SIGN_IN
    assert all(row.attempts == 0 for row in await world.jobs.rows(job_id, (RowState.PENDING,))), "nothing was tried"
    paused_events = [event.detail for event in world.audit.events if "paused" in event.detail]
    assert paused_events == ["paused: the requester's sign-in lapsed; 23 rows wait for them to sign in again"]


class LeaseWatchingSink(Sink):
    """Records whether the job's lease was still held when the sink heard of the pause."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.leases_at_pause: list[dict[int, object]] = []

    async def waiting_sign_in(self, progress: Progress) -> None:
        self.leases_at_pause.append(dict(self.world.jobs.leases))
        await super().waiting_sign_in(progress)


async def test_a_waiting_job_is_adopted_by_no_replica(world: World, crowd: list[DirectoryUser]) -> None:
    lapse_after(world, 3)
    job_id = await started(world, crowd[:10])
    sink = LeaseWatchingSink(world)
    world.runner.start(world.jobs.jobs[job_id], sink)
    await world.runner.wait(job_id)
    assert world.jobs.jobs[job_id].status is JobStatus.WAITING_SIGN_IN
    assert world.jobs.leases == {}, "the lease is given back when the run pauses"
    # Given back before the sign-in card goes out: the sign-in it brings may resume the job on any replica at once.
    assert sink.leases_at_pause == [{}] and sink.pauses[0].done == 3
    world.clock.advance(minutes=5)
    sign_in_again(world)  # even with a token available again, only the requester's sign-in resumes it
    assert await world.runner.adopt(Sink()) == 0
    assert not await world.jobs.claim_job(job_id, "replica-b", world.clock.now(), timedelta(seconds=30))
    assert len(world.passes.created) == 3


async def test_signing_in_again_resumes_where_it_stopped_and_every_user_gets_one_pass(
    world: World, crowd: list[DirectoryUser]
) -> None:
    lapse_after(world, 12)
    job_id = await started(world, crowd)
    first_start = world.jobs.jobs[job_id].started_at
    await world.runner.run(job_id, Sink())
    world.clock.advance(minutes=20)

    sign_in_again(world)
    resumed = await world.bulk.resume(caller(ADELE), job_id)
    assert resumed is not None and resumed.status is JobStatus.RUNNING
    assert resumed.started_at == first_start and resumed.finished_at is None
    sink = Sink()
    finished = await world.runner.run(job_id, sink)

    assert finished.status is JobStatus.FINISHED
    assert sorted(world.passes.created) == sorted(user.object_id for user in crowd), "each user exactly once"
    assert world.passes.actors == [("create", user_id, ADELE.object_id) for user_id in world.passes.created], (
        "every row written with the requester's rights"
    )
    assert counts(await world.jobs.rows(job_id)) == {RowState.DELIVERED: 30}
    assert sorted(entry.row.line for page in sink.pages for entry in page) == list(range(14, 32))
    assert "resumed after the requester signed in again: 18 rows" in [event.detail for event in world.audit.events]
    assert await world.bulk.resume(caller(ADELE), job_id) is None, "a running or finished job is not resumed"


async def test_resuming_every_rule_is_checked_again(world: World, crowd: list[DirectoryUser]) -> None:
    lapse_after(world, 2)
    job_id = await started(world, crowd[:6])
    await world.runner.run(job_id, Sink())
    sign_in_again(world)
    with pytest.raises(NotYourJob):
        await world.bulk.resume(caller(ALEX), job_id)
    assert world.jobs.jobs[job_id].status is JobStatus.WAITING_SIGN_IN

    world.remove_operator(ADELE)
    assert await world.bulk.resume(caller(ADELE), job_id) is not None
    await world.runner.run(job_id, Sink())
    rows = await world.jobs.rows(job_id)
    assert counts(rows) == {RowState.DELIVERED: 2, RowState.FAILED: 4}
    assert {row.reason for row in rows if row.state is RowState.FAILED} == {NO_LONGER_OPERATOR}
    assert len(world.passes.created) == 2


async def test_cancel_while_waiting_ends_the_job_and_nothing_more_is_written(
    world: World, crowd: list[DirectoryUser]
) -> None:
    lapse_after(world, 4)
    job_id = await started(world, crowd[:10])
    await world.runner.run(job_id, Sink())
    sign_in_again(world)

    with pytest.raises(NotYourJob):
        await world.bulk.cancel(caller(ALEX), job_id)
    cancelled = await world.bulk.cancel(caller(ADELE), job_id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at == world.clock.now()
    rows = await world.jobs.rows(job_id)
    assert counts(rows) == {RowState.DELIVERED: 4, RowState.CANCELLED: 6}
    assert {row.reason for row in rows if row.state is RowState.CANCELLED} == {"Cancelled."}
    assert await world.bulk.resume(caller(ADELE), job_id) is None
    assert await world.runner.adopt(Sink()) == 0
    assert len(world.passes.created) == 4


async def test_cancel_pressed_while_the_run_loses_the_sign_in_ends_cancelled(
    world: World, crowd: list[DirectoryUser]
) -> None:
    job_id = await started(world, crowd[:8])
    create_pass = world.passes.create_pass

    async def cancel_then_lapse(user: DirectoryUser, **options: object) -> IssuedPass:
        if len(world.passes.created) == 3:
            await world.bulk.cancel(caller(ADELE), job_id)  # pressed while the run is still going
            raise SignInRequired(ADELE.object_id)
        return await create_pass(user, **options)  # type: ignore[arg-type]

    world.passes.create_pass = cancel_then_lapse  # type: ignore[method-assign]
    ended = await world.runner.run(job_id, Sink())
    assert ended.status is JobStatus.CANCELLED
    assert counts(await world.jobs.rows(job_id)) == {RowState.DELIVERED: 3, RowState.CANCELLED: 5}


async def test_a_job_nobody_resumes_is_cancelled_after_the_approval_request_lifetime(
    world: World, crowd: list[DirectoryUser]
) -> None:
    lapse_after(world, 5)
    job_id = await started(world, crowd[:9])
    await world.runner.run(job_id, Sink())
    assert world.bulk.sign_in_patience == timedelta(hours=24)

    world.clock.advance(hours=23, minutes=59)
    assert await world.bulk.expire_waiting() == []
    assert world.jobs.jobs[job_id].status is JobStatus.WAITING_SIGN_IN
    world.clock.advance(minutes=1)
    ended = await world.bulk.expire_waiting()
    assert [job.id for job in ended] == [job_id] and ended[0].status is JobStatus.CANCELLED
    rows = await world.jobs.rows(job_id)
    assert counts(rows) == {RowState.DELIVERED: 5, RowState.CANCELLED: 4}
    reasons = {row.reason for row in rows if row.state is RowState.CANCELLED}
    assert reasons == {"Not run: you did not sign in again within 24 hours of the pause."}
    event = world.audit.events[-1]
    assert event.outcome is AuditOutcome.NOTHING_TO_DO and event.actor_id == ADELE.object_id
    assert event.detail == "cancelled: its requester did not sign in again within 24 hours"
    assert await world.bulk.expire_waiting() == [], "once"
    sign_in_again(world)
    assert await world.bulk.resume(caller(ADELE), job_id) is None


async def test_a_bulk_revoke_pauses_and_resumes_the_same_way(world: World, crowd: list[DirectoryUser]) -> None:
    issue_job = await started(world, crowd[:6])
    await world.runner.run(issue_job, Sink())
    revoke_job = await started(world, crowd[:6], BulkKind.REVOKE)
    delete_pass = world.passes.delete_pass

    async def lapsing(user_id: str, method_id: str, **options: object) -> str | None:
        if len(world.passes.deleted) >= 2:
            world.passes.signed_out.add(ADELE.object_id)
        if ADELE.object_id in world.passes.signed_out:
            raise SignInRequired(ADELE.object_id)
        return await delete_pass(user_id, method_id, **options)  # type: ignore[arg-type]

    world.passes.delete_pass = lapsing  # type: ignore[method-assign]
    paused = await world.runner.run(revoke_job, Sink())
    assert paused.status is JobStatus.WAITING_SIGN_IN
    assert counts(await world.jobs.rows(revoke_job)) == {RowState.REVOKED: 2, RowState.PENDING: 4}

    sign_in_again(world)
    world.passes.delete_pass = delete_pass  # type: ignore[method-assign]
    assert await world.bulk.resume(caller(ADELE), revoke_job) is not None
    assert (await world.runner.run(revoke_job, Sink())).status is JobStatus.FINISHED
    assert counts(await world.jobs.rows(revoke_job)) == {RowState.REVOKED: 6}
    assert sorted(world.passes.deleted) == sorted(user.object_id for user in crowd[:6])
