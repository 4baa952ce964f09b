"""The bulk journal's crash safety (review of issue 13's last round): a pass a stopped run made and never showed is
neither forgotten by a run that stops in turn nor left live when the job ends without running the row again, and a
pass another operator handed over is never taken for it."""

from __future__ import annotations

import contextlib

from bot.domain.bulk import JobStatus, RowState
from bot.domain.errors import GraphUnavailable, SignInRequired
from bot.domain.model import DirectoryUser, IssuedPass
from tests.domain.test_bulk_run import started
from tests.domain.world import ADELE, STAFF, Sink, World, caller


async def test_a_row_caught_mid_create_stays_caught_when_the_resuming_run_stops_too(world: World) -> None:
    """Run 1 stops between a row's create and its journal entry (row CREATING, its pass live, never shown). Run 2
    saves the row PENDING (`resumed`) and then stops before reaching it (here: Graph answers 503 to its operator
    check, so the run ends with an error and 'a later round resumes it'). Run 3 sees a PENDING row and a pass made
    after the file was checked, takes it for someone else's, skips the row, and the unseen pass stays live."""
    job_id = await started(world, STAFF[:2])
    first, _second = await world.jobs.rows(job_id)
    world.clock.advance(seconds=30)
    unseen = await world.passes.create_pass(STAFF[0], lifetime_minutes=60, one_time=False, start_at=None)
    await world.jobs.save_rows([first.moved(RowState.CREATING, attempts=1)])  # run 1 stopped here

    is_operator = world.tap.is_operator
    calls = 0

    async def unavailable_once(caller: object) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise GraphUnavailable("Microsoft Graph is unavailable.")
        return await is_operator(caller)  # type: ignore[arg-type]

    world.tap.is_operator = unavailable_once  # type: ignore[method-assign]
    with contextlib.suppress(GraphUnavailable):
        await world.runner.run(job_id, Sink())  # run 2
    assert calls == 1
    world.clock.advance(seconds=30)
    await world.runner.run(job_id, Sink())  # run 3

    current = world.passes.passes.get(STAFF[0].object_id)
    row = next(row for row in await world.jobs.rows(job_id) if row.line == first.line)
    assert current is None or current.method_id != unseen.info.method_id, f"a live pass nobody was shown: {row}"


async def test_cancelling_a_paused_job_leaves_no_unseen_pass(world: World) -> None:
    """Run 1 stops between a row's create and its journal entry (CREATING, its pass live, never shown). Run 2 resumes
    it, but the requester's sign-in has lapsed (delegated writes): nothing is written, the job waits for the sign-in.
    The requester cancels instead (or housekeeping ends the wait after its patience): the rows end CANCELLED and the
    pass nobody saw stays live."""
    job_id = await started(world, STAFF[:2])
    first, _second = await world.jobs.rows(job_id)
    world.clock.advance(seconds=30)
    unseen = await world.passes.create_pass(STAFF[0], lifetime_minutes=60, one_time=False, start_at=None)
    await world.jobs.save_rows([first.moved(RowState.CREATING, attempts=1)])  # run 1 stopped here
    world.clock.advance(seconds=30)

    async def signed_out(user: DirectoryUser, **options: object) -> IssuedPass:
        raise SignInRequired(ADELE.object_id)  # before anything is sent, like the Graph adapter

    world.passes.create_pass = signed_out  # type: ignore[method-assign]
    paused = await world.runner.run(job_id, Sink())  # run 2
    assert paused.status is JobStatus.WAITING_SIGN_IN
    await world.bulk.cancel(caller(ADELE), job_id)

    assert {row.state for row in await world.jobs.rows(job_id)} == {RowState.CANCELLED}
    current = world.passes.passes.get(STAFF[0].object_id)
    assert current is None or current.method_id != unseen.info.method_id, "a live pass nobody was shown"


async def test_cancelling_a_paused_job_keeps_a_pass_another_operator_handed_over(world: World) -> None:
    """As above, but before the job paused another operator handed the user a pass through the bot (audited as
    created): that pass is theirs, dated in the window or not, and stays."""
    job_id = await started(world, STAFF[:2])
    first, _second = await world.jobs.rows(job_id)
    world.clock.advance(seconds=30)
    await world.passes.create_pass(STAFF[0], lifetime_minutes=60, one_time=False, start_at=None)  # the unseen one
    await world.jobs.save_rows([first.moved(RowState.CREATING, attempts=1)])
    world.clock.advance(seconds=30)
    create_pass = world.passes.create_pass
    handed: list[str] = []

    async def signed_out(user: DirectoryUser, **options: object) -> IssuedPass:
        world.clock.advance(seconds=5)
        theirs = await create_pass(user, **options)  # type: ignore[arg-type]
        handed.append(theirs.info.method_id)
        raise SignInRequired(ADELE.object_id)

    async def recorded_as_created(pass_method_id: str) -> bool:
        return pass_method_id in handed  # what the audit log would say of the other operator's command

    world.passes.create_pass = signed_out  # type: ignore[method-assign]
    world.tap.recorded_as_created = recorded_as_created  # type: ignore[method-assign]
    paused = await world.runner.run(job_id, Sink())
    assert paused.status is JobStatus.WAITING_SIGN_IN
    await world.bulk.cancel(caller(ADELE), job_id)
    current = world.passes.passes.get(STAFF[0].object_id)
    assert current is not None and current.method_id == handed[0], "another operator's pass was deleted"


async def test_a_resuming_run_never_replaces_a_pass_another_operator_made_for_a_row_caught_mid_create(
    world: World,
) -> None:
    """Run 1 stops in a row's create (CREATING; whether Graph made its pass is unknown). Before run 2 takes over,
    another operator gives the user a pass through the bot (audited as created). Dated in the window where the row's
    own pass would be, it is still theirs: the job (not told to replace passes) leaves it and skips the row."""
    job_id = await started(world, STAFF[:2])
    first, _second = await world.jobs.rows(job_id)
    world.clock.advance(seconds=30)
    await world.jobs.save_rows([first.moved(RowState.CREATING, attempts=1)])  # run 1 stopped here, no pass made
    theirs = await world.passes.create_pass(STAFF[0], lifetime_minutes=60, one_time=False, start_at=None)

    async def recorded_as_created(pass_method_id: str) -> bool:
        return pass_method_id == theirs.info.method_id

    world.tap.recorded_as_created = recorded_as_created  # type: ignore[method-assign]
    world.clock.advance(seconds=30)
    await world.runner.run(job_id, Sink())  # run 2

    current = world.passes.passes.get(STAFF[0].object_id)
    assert current is not None and current.method_id == theirs.info.method_id, "another operator's pass was replaced"
    row = next(row for row in await world.jobs.rows(job_id) if row.line == first.line)
    assert row.state is not RowState.CREATED and "Holds a pass" in (row.reason or ""), row


async def test_an_unseen_pass_that_cannot_be_read_at_the_jobs_end_is_alerted(world: World) -> None:
    """As above (run 1 stopped between a row's create and its journal entry; run 2 paused for a sign-in), but when
    the job is cancelled Graph cannot be read: the pass may be live and nobody will look again, so an alert says so."""
    job_id = await started(world, STAFF[:2])
    first, _second = await world.jobs.rows(job_id)
    world.clock.advance(seconds=30)
    await world.passes.create_pass(STAFF[0], lifetime_minutes=60, one_time=False, start_at=None)  # the unseen one
    await world.jobs.save_rows([first.moved(RowState.CREATING, attempts=1)])
    world.clock.advance(seconds=30)

    async def signed_out(user: DirectoryUser, **options: object) -> IssuedPass:
        raise SignInRequired(ADELE.object_id)

    world.passes.create_pass = signed_out  # type: ignore[method-assign]
    paused = await world.runner.run(job_id, Sink())
    assert paused.status is JobStatus.WAITING_SIGN_IN

    async def unavailable(user_id: str) -> None:
        raise GraphUnavailable("Microsoft Graph is unavailable.")

    world.passes.current_pass = unavailable  # type: ignore[method-assign]
    await world.bulk.cancel(caller(ADELE), job_id)

    [alert] = world.alerts.raised
    assert alert.target_id == STAFF[0].object_id and f"Bulk job {job_id}" in alert.summary
    assert f"/tap revoke {first.target}" in alert.summary  # the user as the file named them
