"""Interactive commands first: a bulk job held back by a tight Graph limit never makes a technician's command wait."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.graph_costs import AUTH_METHOD_WRITES
from bot.domain.bulk import JobStatus, RowState
from bot.domain.pacer import Lane, Pacer
from bot.sandbox.generate import bulk_tenant, bulk_upns
from bot.sandbox.throttle import GraphThrottle, ThrottleSettings
from cards import verbs
from tests.harness.bot import ADELE, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card
from tests.http.test_issue_flow import card_text

USERS = 30
BULK_ROWS = 20


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(USERS)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        yield running
    finally:
        await stop_bot(running)


def pacer_of(bot: RunningBot) -> Pacer:
    pacer = bot.components.pacer
    assert pacer is not None
    return pacer


async def until(condition: object, what: str) -> None:
    """Lets the bot work until `condition()` holds (a state, not a time, is asserted)."""
    for _ in range(600):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_status_is_answered_while_bulk_work_queues_behind_a_tight_limit(bot: RunningBot) -> None:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    state = sandbox.state
    # An unpublished limit Graph might have: 3 pass creations per 10 minutes. The fourth create is refused with a
    # Retry-After of minutes; the pacer closes that limit, and the bulk job holds its rows until it opens.
    state.throttle = GraphThrottle(
        ThrottleSettings(auth_method_limit=3, auth_method_window_s=600, auth_method_writes_only=True),
        USERS,
        lambda: state.clock.now().timestamp(),
    )
    upns = bulk_upns(USERS)
    await attach(bot, "users.csv", csv_of(upns[:BULK_ROWS]))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    pacer = pacer_of(bot)
    creates = pacer.dimension(AUTH_METHOD_WRITES)
    await until(lambda: creates.blocked_until > 0 and pacer.stats.throttled >= 1, "the creation limit closed")
    held = asyncio.ensure_future(pacer.ready(Lane.BULK))
    low_before = state.counters.by_priority.get("low", 0)
    high_before = state.counters.by_priority.get("high", 0)
    interactive_before = pacer.stats.admitted[Lane.INTERACTIVE]

    bot.connector.clear()
    await bot.say(ADELE, f"/tap status {upns[-1]}")

    # The answer came while the bulk job was still held back, its rows still waiting for the limit to open.
    status = card_text(last_card(bot))
    assert upns[-1] in status and "holds no Temporary Access Pass" in status, status
    assert not held.done(), "the bulk lane is still closed"
    held.cancel()
    assert pacer.waiting(Lane.INTERACTIVE) == 0
    assert pacer.stats.waited[Lane.INTERACTIVE] == 0, "no request of the command waited for admission"
    job = await bot.components.bulk._bulk.job(job_id)
    assert job is not None and job.status is JobStatus.RUNNING
    counts = await bot.components.bulk._bulk.counts(job_id)
    assert counts.get(RowState.DELIVERED, 0) + counts.get(RowState.CREATED, 0) <= 3
    assert counts.get(RowState.PENDING, 0) + counts.get(RowState.CREATING, 0) >= BULK_ROWS - 3
    # Graph was told which requests a person waits for: the command's were high priority, the job's low.
    assert pacer.stats.admitted[Lane.INTERACTIVE] > interactive_before
    assert state.counters.by_priority.get("high", 0) - high_before == (
        pacer.stats.admitted[Lane.INTERACTIVE] - interactive_before
    )
    assert low_before >= BULK_ROWS  # the preflight's reads and the run's requests
    assert state.counters.throttled_by == {"authentication-method requests": state.counters.requests_throttled}
