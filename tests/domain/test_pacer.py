"""The pacer on a fake clock: admission per dimension, Retry-After, the limit-percentage header, lanes."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.domain.pacer import (
    BULK_ROWS_PER_SECOND_WHILE_BUSY,
    BULK_SHARE,
    TECHNICIANS_QUIET_S,
    Lane,
    Limit,
    Overdue,
    Pacer,
    current_lane,
    lane,
)
from tests.fake_time import FakeTime

UNITS = "units"
WRITES = "writes"
SECRET = "unpublished"


def pacer(time: FakeTime, *limits: Limit) -> Pacer:
    chosen = limits or (Limit(UNITS, 10.0, 100, reported=True), Limit(WRITES, 150.0, 10, reported=True))
    return Pacer(chosen, clock=time.clock, sleep=time.sleep)


async def admitted_at(time: FakeTime, paced: Pacer, charges: dict[str, int], which: Lane) -> float:
    await paced.admit(charges, which)
    return time.now


async def test_each_dimension_admits_up_to_its_share_then_waits_for_the_window() -> None:
    time = FakeTime()
    paced = pacer(time)
    # Writes: 10 per 150 s; bulk work takes BULK_SHARE of it (9), the tenth waits until the first slides out.
    started = time.now
    for _ in range(int(10 * BULK_SHARE)):
        assert await time.run(admitted_at(time, paced, {UNITS: 1, WRITES: 1}, Lane.BULK)) == started
    assert await time.run(admitted_at(time, paced, {UNITS: 1, WRITES: 1}, Lane.BULK)) == started + 150.0
    # Reads do not count toward writes: they go at once (units still have room).
    assert await time.run(admitted_at(time, paced, {UNITS: 5}, Lane.BULK)) == started + 150.0


async def test_the_interactive_lane_may_use_what_bulk_work_leaves() -> None:
    time = FakeTime()
    paced = pacer(time)
    for _ in range(9):
        await paced.admit({WRITES: 1}, Lane.BULK)
    # Bulk work has taken its share; a technician's write still goes now.
    assert await time.run(admitted_at(time, paced, {WRITES: 1}, Lane.INTERACTIVE)) == 1000.0
    assert paced.stats.waited[Lane.INTERACTIVE] == 0


async def test_retry_after_closes_the_dimension_it_names_for_everyone_until_then() -> None:
    time = FakeTime()
    paced = pacer(time)
    ticket = await paced.admit({UNITS: 1, WRITES: 1}, Lane.BULK)
    paced.answered(ticket, throttled=True, retry_after_s=7, scope=[WRITES])
    assert await time.run(admitted_at(time, paced, {UNITS: 1}, Lane.BULK)) == 1000.0  # units are not closed
    assert await time.run(admitted_at(time, paced, {WRITES: 1}, Lane.INTERACTIVE)) == 1007.0
    assert paced.stats.throttled == 1


async def test_an_unscoped_429_closes_the_unpublished_dimension_and_teaches_its_limit() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(UNITS, 10.0, 1000), Limit(SECRET, 10.0, bulk_start=100))
    tickets = [await paced.admit({UNITS: 1, SECRET: 1}, Lane.INTERACTIVE) for _ in range(8)]
    for ticket in tickets:
        paced.answered(ticket)
    refused = await paced.admit({UNITS: 1, SECRET: 1}, Lane.INTERACTIVE)
    paced.answered(refused, throttled=True, retry_after_s=3)
    dimension = paced.dimension(SECRET)
    assert dimension.learned == 8  # the 9th was refused: 8 per window
    assert paced.dimension(UNITS).blocked_until == 0  # published and not named: only the unpublished one closes
    # Now held to the learned limit, after Retry-After: 8 per 10 s, so room again once the first 8 slide out.
    for _ in range(8):
        assert await time.run(admitted_at(time, paced, {SECRET: 1}, Lane.INTERACTIVE)) == pytest.approx(1010.0)
    assert await time.run(admitted_at(time, paced, {SECRET: 1}, Lane.INTERACTIVE)) == pytest.approx(1020.0)


async def test_a_429_after_a_few_requests_is_honoured_but_teaches_nothing() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(SECRET, 10.0))
    ticket = await paced.admit({SECRET: 1}, Lane.INTERACTIVE)
    paced.answered(ticket, throttled=True, retry_after_s=2)
    assert paced.dimension(SECRET).learned is None
    assert await time.run(admitted_at(time, paced, {SECRET: 1}, Lane.INTERACTIVE)) == 1002.0


async def test_the_limit_percentage_header_slows_admission() -> None:
    time = FakeTime()
    paced = pacer(time)
    tickets = [await paced.admit({UNITS: 1}, Lane.BULK) for _ in range(10)]
    for ticket in tickets[:-1]:
        paced.answered(ticket)
    # Without the header the next request would go now: 10 of 100 units used.
    assert paced.dimension(UNITS).wait(time.now, 1, Lane.BULK) == 0
    # Graph says 90 % of the app's limit is in use (another replica): this process's 10 units are its share.
    paced.answered(tickets[-1], limit_percentage=0.9)
    assert paced.dimension(UNITS).learned == pytest.approx(10 / 0.9)
    assert await time.run(admitted_at(time, paced, {UNITS: 1}, Lane.BULK)) == 1010.0
    # A header that says no more than this process already counted changes nothing.
    ticket = await paced.admit({WRITES: 1}, Lane.BULK)
    paced.answered(ticket, limit_percentage=0.05)
    assert paced.dimension(WRITES).learned is None


async def test_an_unpublished_limit_is_approached_evenly_from_a_growing_guess() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(SECRET, 10.0, bulk_start=10))
    moments: list[float] = []
    for _ in range(4):
        ticket = await time.run(paced.admit({SECRET: 1}, Lane.BULK))
        moments.append(time.now)
        paced.answered(ticket)
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert all(gap > 0 for gap in gaps) and gaps == sorted(gaps, reverse=True)  # evenly spaced, faster each time
    # The interactive lane is not held to the guess.
    assert await time.run(admitted_at(time, paced, {SECRET: 1}, Lane.INTERACTIVE)) == moments[-1]


async def test_a_waiting_technician_goes_before_queued_bulk_work() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(WRITES, 10.0, 2))
    await paced.admit({WRITES: 1}, Lane.BULK)
    await paced.admit({WRITES: 1}, Lane.INTERACTIVE)  # the window is full now
    order: list[str] = []

    async def request(name: str, which: Lane) -> None:
        await paced.admit({WRITES: 1}, which)
        order.append(name)

    bulk = [asyncio.ensure_future(request(f"bulk {n}", Lane.BULK)) for n in range(3)]
    await time.settle()
    assert paced.waiting(Lane.BULK) == 3
    technician = asyncio.ensure_future(request("technician", Lane.INTERACTIVE))
    await time.settle()
    assert paced.waiting(Lane.INTERACTIVE) == 1
    await time.run(asyncio.gather(technician, *bulk))
    assert order[0] == "technician"
    assert sorted(order[1:]) == ["bulk 0", "bulk 1", "bulk 2"]


async def test_bulk_work_takes_a_new_row_only_without_a_backlog() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(WRITES, 10.0, 1))
    await paced.admit({WRITES: 1}, Lane.INTERACTIVE)
    waiting = [asyncio.ensure_future(paced.admit({WRITES: 1}, Lane.BULK)) for _ in range(2)]
    ready = asyncio.ensure_future(paced.ready(Lane.BULK))
    await time.settle()
    assert not ready.done() and paced.waiting(Lane.BULK) == 2
    await time.run(asyncio.gather(*waiting))
    await time.run(ready)
    assert paced.waiting(Lane.BULK) == 0


async def test_the_lane_follows_the_work_into_its_tasks() -> None:
    assert current_lane() is Lane.INTERACTIVE
    with lane(Lane.BULK):
        inner = await asyncio.create_task(_lane_now())
    assert inner is Lane.BULK and current_lane() is Lane.INTERACTIVE


async def _lane_now() -> Lane:
    return current_lane()


async def test_a_request_that_would_wait_longer_than_its_caller_may_is_given_up_at_once() -> None:
    time = FakeTime()
    paced = pacer(time)
    ticket = await paced.admit({WRITES: 1}, Lane.BULK)
    paced.answered(ticket, throttled=True, retry_after_s=60, scope=[WRITES])
    with pytest.raises(Overdue) as caught:
        await paced.admit({WRITES: 1}, Lane.INTERACTIVE, max_wait_s=5)
    assert caught.value.seconds == 60 and time.now == 1000.0
    assert paced.stats.overdue[Lane.INTERACTIVE] == 1 and paced.waiting(Lane.INTERACTIVE) == 0
    # Within the caller's patience it waits.
    assert await time.run(paced.admit({WRITES: 1}, Lane.INTERACTIVE, max_wait_s=61)) is not None
    assert time.now == 1060.0


async def test_bulk_work_starts_no_row_while_graph_said_to_wait() -> None:
    time = FakeTime()
    paced = pacer(time)
    ticket = await paced.admit({UNITS: 1}, Lane.BULK)
    paced.answered(ticket, throttled=True, retry_after_s=30, scope=[UNITS])
    await time.run(paced.ready(Lane.BULK))
    assert time.now == 1030.0


async def test_bulk_work_slows_to_a_trickle_while_technicians_are_at_work() -> None:
    time = FakeTime()
    paced = pacer(time)
    bulk = [await paced.admit({UNITS: 1}, Lane.BULK) for _ in range(2)]
    await time.run(paced.ready(Lane.BULK))  # nobody else at work: a third row may start
    technician = await paced.admit({UNITS: 1}, Lane.INTERACTIVE)
    held = asyncio.ensure_future(paced.ready(Lane.BULK))
    await time.settle()
    assert not held.done(), "two bulk requests in flight while a technician's is"
    paced.answered(technician)
    paced.answered(bulk[0])  # one bulk request left in flight: below the trickle
    await time.run(held)
    assert time.now == 1000.0 + 1 / BULK_ROWS_PER_SECOND_WHILE_BUSY  # spaced from the row started before
    paced.answered(bulk[1])


async def test_while_technicians_are_at_work_bulk_rows_start_spaced_out() -> None:
    time = FakeTime()
    paced = pacer(time)
    spacing = 1 / BULK_ROWS_PER_SECOND_WHILE_BUSY
    starts = []
    for _ in range(3):  # nobody at work: rows start at once
        await time.run(paced.ready(Lane.BULK))
        starts.append(time.now)
    assert starts == [1000.0] * 3
    paced.answered(await paced.admit({UNITS: 1}, Lane.INTERACTIVE))  # a technician's request, answered at once
    starts = []
    for _ in range(4):
        await time.run(paced.ready(Lane.BULK))
        starts.append(time.now)
    assert starts == pytest.approx([1000.0 + spacing * n for n in range(1, 5)])
    time.now += TECHNICIANS_QUIET_S  # the technicians quiet again: at once
    started = time.now
    await time.run(paced.ready(Lane.BULK))
    await time.run(paced.ready(Lane.BULK))
    assert time.now == started


async def test_once_learned_a_limit_falls_by_a_tenth_at_most_per_refusal() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(SECRET, 10.0))
    tickets = [await paced.admit({SECRET: 1}, Lane.INTERACTIVE) for _ in range(10)]
    for ticket in tickets:
        paced.answered(ticket)
    refused = await paced.admit({SECRET: 1}, Lane.INTERACTIVE)
    paced.answered(refused, throttled=True, retry_after_s=1)
    assert paced.dimension(SECRET).learned == 10
    # After the window emptied here, a request Graph still refuses (its window ends a little later) says little.
    time.now += 11
    late = [await paced.admit({SECRET: 1}, Lane.INTERACTIVE) for _ in range(6)]
    paced.answered(late[-1], throttled=True, retry_after_s=1)
    assert paced.dimension(SECRET).learned == pytest.approx(9.0)


async def test_an_accepted_request_counts_from_its_answer_on() -> None:
    time = FakeTime()
    paced = pacer(time, Limit(WRITES, 10.0, 1))
    ticket = await paced.admit({WRITES: 1}, Lane.INTERACTIVE)
    time.now += 5  # a slow answer: Graph counted it somewhere in these 5 s
    paced.answered(ticket)
    time.now += 7  # 12 s after admission, 7 after the answer: Graph may still count it
    assert paced.dimension(WRITES).used(time.now) == 1
    assert await time.run(admitted_at(time, paced, {WRITES: 1}, Lane.INTERACTIVE)) == 1015.0
