"""The pacer with Graph's costs: against the sandbox's throttling model on a fake clock, and through msgraph-sdk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.graph_costs import (
    APP_WRITES,
    AUTH_METHOD_READS,
    AUTH_METHOD_WRITES,
    RESOURCE_UNITS,
    TENANT_WRITES,
    graph_limits,
    request_charges,
)
from bot.adapters.graph_pacing import _scope_dimensions
from bot.domain.errors import Throttled
from bot.domain.pacer import Lane, Pacer, lane
from bot.sandbox.server import start_sandbox
from bot.sandbox.tenant import load_tenant
from bot.sandbox.throttle import GraphThrottle, ThrottleSettings, request_cost
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings
from tests.fake_time import FakeTime
from tests.harness.bot import MEGAN

USER = "0e5ef5a1-6f2c-4d4b-8f43-1b2a3c4d5e6f"
PASSES = f"users/{USER}/authentication/temporaryAccessPassMethods"


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", f"users/{USER}", {"$select": "id,displayName"}),
        ("GET", f"users/{USER}", {}),
        ("GET", "users", {"$filter": "id in ('a')", "$select": "id", "$top": "15"}),
        ("GET", PASSES, {}),
        ("POST", PASSES, {}),
        ("DELETE", f"{PASSES}/m1", {}),
        ("POST", f"users/{USER}/checkMemberGroups", {}),
        ("GET", f"users/{USER}/transitiveMemberOf/microsoft.graph.group", {"$select": "id"}),
        ("GET", f"users/{USER}/transitiveMemberOf/graph.group", {}),
        ("GET", "roleManagement/directory/roleAssignments", {"$filter": "principalId eq 'x'"}),
        ("GET", "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass", {}),
        ("GET", f"groups/{USER}/transitiveMembers", {}),
    ],
)
def test_the_bot_counts_its_requests_as_the_sandbox_model_does(method: str, path: str, query: dict[str, str]) -> None:
    charges = request_charges(method, f"/v1.0/{path}", query)
    cost = request_cost(method, path, query)
    assert charges[RESOURCE_UNITS] == cost.resource_units
    assert charges.get(APP_WRITES, 0) == charges.get(TENANT_WRITES, 0) == cost.writes
    on_passes = "/authentication/" in path
    assert (AUTH_METHOD_WRITES in charges) == (on_passes and cost.writes == 1)
    assert (AUTH_METHOD_READS in charges) == (on_passes and cost.writes == 0)


def test_a_batch_counts_its_items_one_by_one() -> None:
    body = (
        b'{"requests": [{"id": "1", "method": "GET", "url": "/users/a?$select=id"},'
        b' {"id": "2", "method": "POST", "url": "/users/a/authentication/temporaryAccessPassMethods"}]}'
    )
    charges = request_charges("POST", "/v1.0/$batch", {}, body)
    assert charges == {RESOURCE_UNITS: 2, APP_WRITES: 1, TENANT_WRITES: 1, AUTH_METHOD_WRITES: 1}


async def bulk_against_the_model(rows: int, workers: int, settings: ThrottleSettings) -> tuple[float, float, int]:
    """Bulk rows (read the user's pass, create one) through the pacer against the sandbox's throttling model, with
    150 ms per request, on a fake clock: rows per second, share of requests answered 429, requests sent."""
    time = FakeTime()
    model = GraphThrottle(settings, 1000, time.clock)
    paced = Pacer(graph_limits(), clock=time.clock, sleep=time.sleep)
    sent = refused = 0

    async def send(method: str, path: str) -> None:
        nonlocal sent, refused
        charges = request_charges(method, path, {})
        while True:  # the transport's paced retry
            ticket = await paced.admit(charges, Lane.BULK)
            await time.sleep(0.075)
            decision = model.admit(method, path, {}, {})
            await time.sleep(0.075)
            sent += 1
            if decision.admitted:
                percentage = decision.headers.get("x-ms-throttle-limit-percentage")
                paced.answered(ticket, limit_percentage=float(percentage) if percentage else None)
                return
            refused += 1
            scope = _scope_dimensions(decision.headers.get("x-ms-throttle-scope"))
            paced.answered(ticket, throttled=True, retry_after_s=decision.retry_after_s, scope=scope)

    queue = list(range(rows))

    async def worker() -> None:
        while queue:
            await paced.ready(Lane.BULK)
            if not queue:
                return
            path = f"users/00000000-0000-0000-0000-{queue.pop():012d}/authentication/temporaryAccessPassMethods"
            await send("GET", path)
            await send("POST", path)

    started = time.now
    await time.run(asyncio.gather(*(worker() for _ in range(workers))))
    return rows / (time.now - started), refused / sent, sent


async def test_no_429_storm_under_an_unpublished_creation_limit() -> None:
    # 20 creations per 10 s that Graph does not publish: the pacer learns it and stays just under it.
    settings = ThrottleSettings(
        graph_limits=True, auth_method_limit=20, auth_method_window_s=10, auth_method_writes_only=True
    )
    rate, throttled_share, sent = await bulk_against_the_model(200, 48, settings)
    assert rate >= 0.9 * 2.0, rate
    assert throttled_share <= 0.02, (throttled_share, sent)


async def test_no_429_storm_when_reads_and_writes_share_an_unpublished_limit() -> None:
    settings = ThrottleSettings(graph_limits=True, auth_method_limit=30, auth_method_window_s=10)
    rate, throttled_share, sent = await bulk_against_the_model(200, 48, settings)
    assert rate >= 0.9 * 1.5, rate  # two requests per row count: 1.5 rows/s at most
    # Reads start from a generous guess (a read refused is only retried), and each kind learns the limit on its own:
    # learning two kinds of request against one limit costs more 429s than the 2 % (its limit is on pass
    # creation alone) on this short run, though no storm.
    assert throttled_share <= 0.04, (throttled_share, sent)


# --- through msgraph-sdk --------------------------------------------------------------------------------------


@pytest.fixture
async def sandbox_graph() -> AsyncIterator[tuple[GraphGateway, Pacer, object]]:
    sandbox = await start_sandbox(load_tenant(DEMO_TENANT_FILE))
    paced = Pacer(graph_limits())
    client, http = build_graph_client(GraphSettings(GraphMode.SANDBOX), sandbox.base_url, pacer=paced)
    try:
        yield GraphGateway(client, SystemClock()), paced, sandbox
    finally:
        await http.aclose()
        await sandbox.close()


async def test_priority_is_high_for_a_technician_and_low_for_bulk_work(sandbox_graph) -> None:  # type: ignore[no-untyped-def]
    gateway, paced, sandbox = sandbox_graph
    counters = sandbox.state.counters
    await gateway.current_pass(MEGAN.object_id)
    assert counters.by_priority == {"high": 1}
    with lane(Lane.BULK):
        await gateway.current_pass(MEGAN.object_id)
        await asyncio.create_task(gateway.find_user(MEGAN.object_id))  # a task started inside keeps the lane
    assert counters.by_priority == {"high": 1, "low": 2}
    assert paced.stats.admitted == {Lane.INTERACTIVE: 1, Lane.BULK: 2}


@pytest.fixture
async def fake_graph() -> AsyncIterator[tuple[dict[str, object], str]]:
    answer: dict[str, object] = {"status": 200, "headers": {}}
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-ms-throttle-priority", ""))
        headers = dict(answer["headers"])  # type: ignore[call-overload]
        return web.json_response({"id": "u1", "value": []}, status=answer["status"], headers=headers)  # type: ignore[arg-type]

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    answer["seen"] = seen
    try:
        yield answer, f"http://127.0.0.1:{runner.addresses[0][1]}/v1.0"
    finally:
        await runner.cleanup()


async def test_the_limit_percentage_header_reaches_the_pacer(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answer, base_url = fake_graph
    time = FakeTime()
    paced = Pacer(graph_limits(), clock=time.clock, sleep=time.sleep)
    client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS), base_url, pacer=paced)
    try:
        gateway = GraphGateway(client, SystemClock())
        answer["headers"] = {"x-ms-throttle-limit-percentage": "0.9", "x-ms-resource-unit": "1"}
        await gateway.current_pass("u1")
        # Graph says 90 % of the app's limit is used while this process used 1 unit: another replica uses the rest.
        learned = paced.dimension(RESOURCE_UNITS).learned
        assert learned is not None and learned < 8_000 * 0.1
    finally:
        await http.aclose()


async def test_a_scoped_429_closes_the_limit_it_names_until_retry_after(fake_graph) -> None:  # type: ignore[no-untyped-def]
    answer, base_url = fake_graph
    time = FakeTime()
    paced = Pacer(graph_limits(), clock=time.clock, sleep=time.sleep)
    client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS), base_url, pacer=paced)
    try:
        gateway = GraphGateway(client, SystemClock())
        answer["status"] = 429
        answer["headers"] = {
            "Retry-After": "40",
            "x-ms-throttle-scope": "Tenant/Write/app/tenant",
            "x-ms-throttle-information": "WriteLimitExceeded",
        }
        with pytest.raises(Throttled):  # 40 s is beyond a chat turn's patience
            await gateway.delete_pass("u1", "m1")
        assert paced.dimension(TENANT_WRITES).blocked_until == pytest.approx(time.now + 40)
        assert paced.dimension(APP_WRITES).blocked_until == 0
        assert answer["seen"] == ["high"]  # one request: neither the SDK nor the pacer retried a 40 s wait
    finally:
        await http.aclose()
