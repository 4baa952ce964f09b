"""The bulk preflight under a tight Graph limit, through /api/messages: its Graph requests go straight to the pacer
(bulk lane), at most MAX_CONCURRENT_CHECKS rows at once, and every row is checked without a storm of 429s. A revoke
file's check reads each row's pass; an issue file's check reads none (the run reads it under the user's lock)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.graph_costs import AUTH_METHOD_READS
from bot.domain.bulk import RowState
from bot.domain.bulk_service import MAX_CONCURRENT_CHECKS
from bot.domain.pacer import Lane, Pacer
from bot.sandbox.generate import bulk_tenant, bulk_upns
from bot.sandbox.throttle import GraphThrottle, ThrottleSettings
from tests.harness.bot import RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card
from tests.http.test_issue_flow import card_text

ROWS = 2 * MAX_CONCURRENT_CHECKS  # more rows than the preflight checks at once
# An unpublished limit Graph might have on authentication-method endpoints, reads included: a revoke preflight's pass
# reads (one per row) reach it halfway through the file, and the other half waits for the window to open.
LIMIT = MAX_CONCURRENT_CHECKS
WINDOW_S = 10.0


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(ROWS)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        yield running
    finally:
        await stop_bot(running)


def tight_limit(bot: RunningBot) -> None:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    state = sandbox.state
    state.throttle = GraphThrottle(
        ThrottleSettings(auth_method_limit=LIMIT, auth_method_window_s=WINDOW_S),
        ROWS,
        lambda: state.clock.now().timestamp(),
    )


async def test_an_issue_preflight_makes_no_authentication_method_request(bot: RunningBot) -> None:
    tight_limit(bot)
    sandbox = bot.components.sandbox
    assert sandbox is not None
    await attach(bot, "users.csv", csv_of(bulk_upns(ROWS)))
    job_id = job_id_of(last_card(bot))
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.READY: ROWS}
    assert sandbox.state.counters.authentication_method_requests == 0
    assert sandbox.state.counters.requests_throttled == 0


async def test_a_preflight_larger_than_the_cap_under_a_tight_limit_checks_every_row_without_a_429_storm(
    bot: RunningBot,
) -> None:
    sandbox = bot.components.sandbox
    pacer = bot.components.pacer
    assert sandbox is not None and pacer is not None
    state = sandbox.state
    tight_limit(bot)

    peak = {"waiting": 0}

    async def watch(pacer: Pacer) -> None:
        while True:
            peak["waiting"] = max(peak["waiting"], pacer.waiting(Lane.BULK))
            await asyncio.sleep(0.02)

    watcher = asyncio.ensure_future(watch(pacer))
    try:
        await attach(bot, "users.csv", csv_of(bulk_upns(ROWS)), text="revoke")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    preflight = last_card(bot)
    job_id = job_id_of(preflight)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.NO_PASS: ROWS}, card_text(preflight)
    counters = state.counters
    assert counters.authentication_method_requests == ROWS, "every row's pass read, each answered once"
    # The limit bound (the pacer learned it from Graph's answer) and was ridden out: a 429 or two, not one per
    # request in flight, all of them the tight limit's, and every one retried by the pacer.
    assert pacer.dimension(AUTH_METHOD_READS).learned is not None, "the limit was reached"
    assert 1 <= counters.requests_throttled <= 3, counters
    assert counters.throttled_by == {"authentication-method requests": counters.requests_throttled}
    assert pacer.stats.throttled == counters.requests_throttled
    # While the limit was closed, one request per row being checked waited for it: the cap's worth, no more.
    assert peak["waiting"] == MAX_CONCURRENT_CHECKS, peak
