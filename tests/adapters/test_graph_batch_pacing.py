"""A `$batch` item Graph throttled is told to the pacer as a single request's 429 would be: Retry-After closes the
limit before the item is sent again on its own, and the refusal teaches an unpublished limit. Against the sandbox,
which answers each item on its own (a 429 inside a batch answered 200), with the pacer on a clock that only its own
waits move (no wall-clock time is asserted)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.graph_costs import AUTH_METHOD_READS, RESOURCE_UNITS, graph_limits
from bot.domain.errors import Throttled
from bot.domain.pacer import ItemAnswer, Lane, Pacer
from bot.sandbox.faults import parse_fault_rule
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import parse_tenant
from bot.sandbox.throttle import GraphThrottle, ThrottleSettings
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings

DEMO = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
LEE = "9d3562ea-aefc-4b97-9721-5e506d279f43"  # demo: an ordinary member, no role
GROUP_IDS = [str(group["id"]) for group in DEMO["groups"]]


class JumpingClock:
    """The pacer's clock and sleep: time moves only when the pacer waits, by exactly what it waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@dataclass
class Paced:
    gateway: GraphGateway
    pacer: Pacer
    time: JumpingClock
    sandbox: RunningSandbox
    sent: list[str]  # "METHOD path" of every request the client made (recorded before the pacer admits it)


@pytest.fixture
async def paced() -> AsyncIterator[Paced]:
    sandbox = await start_sandbox(parse_tenant(DEMO))
    time = JumpingClock()
    pacer = Pacer(graph_limits(), clock=time.clock, sleep=time.sleep)
    client, http = build_graph_client(
        GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), sandbox.base_url, pacer=pacer
    )
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    http.event_hooks["request"].append(record)
    try:
        yield Paced(GraphGateway(client, SystemClock()), pacer, time, sandbox, sent)
    finally:
        await http.aclose()
        await sandbox.close()


async def test_an_items_retry_after_closes_the_limit_before_it_is_sent_again(paced: Paced) -> None:
    # The batch's first item is refused for 3 s (an injected 429 names no scope: it closes what the item counts
    # toward, resource units). The rest of the batch is answered.
    paced.sandbox.state.faults.add(
        parse_fault_rule({"path_regex": r"/transitiveMemberOf/graph.group$", "status": 429, "retry_after_s": 3})
    )
    started = paced.time.now
    reading = await paced.gateway.target_reading(LEE, GROUP_IDS)

    assert reading.role_names == ()
    assert paced.pacer.stats.throttled == 1  # the item's 429, as a single request's would count
    assert paced.pacer.dimension(RESOURCE_UNITS).blocked_until == started + 3
    # The item went again on its own, admitted by the pacer only after its Retry-After.
    assert paced.sent == ["POST /v1.0/$batch", f"GET /v1.0/users/{LEE}/transitiveMemberOf/graph.group"]
    assert paced.sandbox.state.counters.requests_served == paced.sandbox.state.counters.requests_received
    assert paced.pacer.stats.waited[Lane.INTERACTIVE] == 1
    assert paced.time.now >= started + 3
    assert paced.pacer.dimension(RESOURCE_UNITS).learned is None  # nothing was admitted before the first item


async def test_an_items_429_teaches_the_unpublished_limit_and_nothing_is_sent_into_it(paced: Paced) -> None:
    # Graph allows 5 reads of authentication methods per 10 minutes (a limit it does not publish). Each target
    # check reads the user's pass in its batch: the sixth batch's pass item is refused with a Retry-After of minutes.
    state = paced.sandbox.state
    state.throttle = GraphThrottle(
        ThrottleSettings(auth_method_limit=5, auth_method_window_s=600),
        len(state.tenant.users),
        lambda: state.clock.now().timestamp(),
    )
    for _ in range(5):
        await paced.gateway.target_reading(LEE, GROUP_IDS)
    assert paced.pacer.dimension(AUTH_METHOD_READS).learned is None
    items_per_batch = state.counters.requests_received // 5

    with pytest.raises(Throttled):  # minutes: longer than a chat turn may wait
        await paced.gateway.target_reading(LEE, GROUP_IDS)

    reads = paced.pacer.dimension(AUTH_METHOD_READS)
    assert reads.learned == 5  # the reads admitted in the window before the refused item
    assert reads.blocked_until >= paced.time.now + 500
    assert paced.pacer.stats.throttled == 1 == state.counters.requests_throttled
    # The pacer knew the limit was closed: the pass read was not sent again on its own into it (Graph received the
    # six batches' items and nothing more).
    assert state.counters.requests_received == 6 * items_per_batch


async def test_the_limit_percentage_an_item_reports_reaches_the_pacer() -> None:
    # Graph answers each item with its own headers: an item's x-ms-throttle-limit-percentage says 90 % of the app's
    # resource units are in use while this process used a few: another replica uses the rest.
    async def batch(request: web.Request) -> web.Response:
        items = (await request.json())["requests"]
        return web.json_response(
            {
                "responses": [
                    {
                        "id": item["id"],
                        "status": 200,
                        "headers": {"Content-Type": "application/json", "x-ms-throttle-limit-percentage": "0.9"},
                        "body": {"value": []},
                    }
                    for item in items
                ]
            }
        )

    app = web.Application()
    app.router.add_post("/v1.0/$batch", batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    time = JumpingClock()
    pacer = Pacer(graph_limits(), clock=time.clock, sleep=time.sleep)
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1.0"
    client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS), base_url, pacer=pacer)
    try:
        reading = await GraphGateway(client, SystemClock()).target_reading(LEE, GROUP_IDS)
        assert reading.role_names == () and reading.current_pass is None
        learned = pacer.dimension(RESOURCE_UNITS).learned
        assert learned is not None and learned < 8_000 * 0.1
    finally:
        await http.aclose()
        await runner.cleanup()


# --- the pacer alone -----------------------------------------------------------------------------------------


async def test_a_batch_answer_counts_accepted_items_and_refunds_refused_ones() -> None:
    time = JumpingClock()
    pacer = Pacer(graph_limits(), clock=time.clock, sleep=time.sleep)
    for _ in range(6):
        pacer.answered(await pacer.admit({RESOURCE_UNITS: 1, AUTH_METHOD_READS: 1}))
    read = {RESOURCE_UNITS: 2}
    pass_read = {RESOURCE_UNITS: 1, AUTH_METHOD_READS: 1}
    ticket = await pacer.admit({RESOURCE_UNITS: 2 + 2 + 1 + 1, AUTH_METHOD_READS: 2})

    pacer.answered_batch(
        ticket,
        [
            ItemAnswer(read),
            ItemAnswer(pass_read),
            ItemAnswer(read, throttled=True, retry_after_s=9, scope=(RESOURCE_UNITS,)),
            ItemAnswer(pass_read, throttled=True, retry_after_s=4),
        ],
    )

    units, reads = pacer.dimension(RESOURCE_UNITS), pacer.dimension(AUTH_METHOD_READS)
    assert pacer.stats.throttled == 2
    assert units.used(time.now) == 6 + 3  # the refused items count against nothing
    assert reads.used(time.now) == 6 + 1
    assert units.blocked_until == time.now + 9  # the scope it named
    assert reads.blocked_until == time.now + 4  # unscoped: the unpublished limit it counted toward
    assert reads.learned == 6 + 1  # admitted before it: the window, and the accepted pass read ahead in the batch
    assert units.learned == 6 + 3  # a scoped 429 on a published limit lowers it to what was in use before it
