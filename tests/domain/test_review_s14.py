"""Review of 279bc9c (`Pacer.ready`: bulk rows spaced to BULK_ROWS_PER_SECOND_WHILE_BUSY while technicians are at
work): a job's own requests do not slow it, it is never starved, and the spacing never makes `ready` spin."""

from __future__ import annotations

import pytest

from bot.domain.pacer import BULK_ROWS_PER_SECOND_WHILE_BUSY, Lane, Limit, Pacer
from tests.fake_time import FakeTime

UNITS = "units"
SPACING = 1 / BULK_ROWS_PER_SECOND_WHILE_BUSY


class CountedSleep:
    """FakeTime's sleep, counted: how many naps `ready` took."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.naps = 0

    async def __call__(self, seconds: float) -> None:
        self.naps += 1
        await self.time.sleep(seconds)


def pacer(time: FakeTime, sleep: CountedSleep | None = None) -> Pacer:
    return Pacer([Limit(UNITS, 10.0, 10_000)], clock=time.clock, sleep=sleep or time.sleep)


async def test_a_bulk_jobs_own_requests_are_not_technicians_at_work() -> None:
    """Without a technician, the job's own admissions, answers and the request it still has in flight leave its rows
    unspaced: bulk throughput with nobody at work is what it was before the spacing."""
    time = FakeTime()
    paced = pacer(time)
    started = time.now
    in_flight = None
    for _ in range(50):
        await time.run(paced.ready(Lane.BULK))
        ticket = await time.run(paced.admit({UNITS: 1}, Lane.BULK))
        if in_flight is not None:
            paced.answered(in_flight)
        in_flight = ticket  # one of the job's requests always in flight
    assert time.now == started


@pytest.mark.parametrize("start", [1000.0, 1e7 + 0.1])  # 1e7: a monotonic clock after months, coarser floats
async def test_rows_keep_starting_while_technicians_never_stop_and_each_waits_one_nap(start: float) -> None:
    time = FakeTime(start)
    sleep = CountedSleep(time)
    paced = pacer(time, sleep)
    paced._last_bulk_row = time.now  # pyright: ignore[reportPrivateUsage]  # a row has just started
    technician = await time.run(paced.admit({UNITS: 1}, Lane.INTERACTIVE))  # never answered: at work throughout
    rows = 200
    for _ in range(rows):
        await time.run(paced.ready(Lane.BULK))
        paced.answered(await time.run(paced.admit({UNITS: 1}, Lane.BULK)))
    assert time.now == pytest.approx(start + rows * SPACING, abs=1e-6)
    assert sleep.naps == rows, "ready napped more than once per row (float rounding)"
    paced.answered(technician)


async def test_a_technician_arriving_mid_job_spaces_the_next_row_from_the_last_one() -> None:
    """The row started before the technician arrived counts: the next waits out the rest of its spacing only."""
    time = FakeTime()
    paced = pacer(time)
    await time.run(paced.ready(Lane.BULK))  # a row at 1000.0, nobody at work
    time.now += SPACING / 2
    paced.answered(await time.run(paced.admit({UNITS: 1}, Lane.INTERACTIVE)))
    await time.run(paced.ready(Lane.BULK))
    assert time.now == pytest.approx(1000.0 + SPACING)
