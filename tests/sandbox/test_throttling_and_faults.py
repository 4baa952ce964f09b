"""Benchmark and test knobs: latency, the request budget, injected faults."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import ClientSession, ClientTimeout

from bot.sandbox import SandboxClock, SandboxOptions
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import LEE, MEGAN, call, passes_path


async def test_requests_over_budget_get_429_with_whole_second_retry_after(
    start: StartSandbox, clock: SandboxClock
) -> None:
    sandbox = await start(options=SandboxOptions(request_budget=3, budget_window_s=10, clock=clock))
    async with ClientSession(base_url=sandbox.root_url) as http:
        answers = [await call(http, "GET", f"/v1.0/users/{LEE}") for _ in range(4)]
        control = await call(http, "GET", "/_sandbox/state")

    assert [answer.status for answer in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    assert throttled.error["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert control.status == 200  # the control plane is never throttled
    counters = control.body["counters"]
    assert counters["requests_received"] == 4
    assert counters["requests_served"] == 3
    assert counters["requests_throttled"] == 1
    assert counters["peak_window_usage"] == 3


async def test_budget_frees_up_as_the_window_slides(start: StartSandbox, clock: SandboxClock) -> None:
    sandbox = await start(options=SandboxOptions(request_budget=1, budget_window_s=0.2, clock=clock))
    async with ClientSession(base_url=sandbox.root_url) as http:
        first = await call(http, "GET", f"/v1.0/users/{LEE}")
        second = await call(http, "GET", f"/v1.0/users/{LEE}")
        clock.advance(0.25)  # windows slide on the sandbox's clock, not the wall clock
        third = await call(http, "GET", f"/v1.0/users/{LEE}")
    assert [first.status, second.status, third.status] == [200, 429, 200]
    assert second.headers["Retry-After"] == "1"


async def test_latency_is_added_to_every_graph_request(start: StartSandbox, clock: SandboxClock) -> None:
    sandbox = await start(options=SandboxOptions(latency_ms=60, clock=clock))
    async with ClientSession(base_url=sandbox.root_url) as http:
        began = time.perf_counter()
        await call(http, "GET", f"/v1.0/users/{LEE}")
        elapsed = time.perf_counter() - began
    assert elapsed >= 0.06


async def test_fault_answers_instead_of_graph_and_is_used_up(http: ClientSession) -> None:
    added = await call(
        http,
        "POST",
        "/_sandbox/faults",
        json={"method": "POST", "path_regex": "temporaryAccessPassMethods$", "status": 503, "count": 1},
    )
    failed = await call(http, "POST", passes_path(LEE))
    after_failure = await call(http, "GET", passes_path(LEE))
    retried = await call(http, "POST", passes_path(LEE))

    assert added.status == 201
    assert (failed.status, failed.error["code"]) == (503, "serviceNotAvailable")
    assert after_failure.body == {"value": []}
    assert retried.status == 201


async def test_after_effect_fault_performs_the_request_but_still_fails(http: ClientSession) -> None:
    await call(
        http,
        "POST",
        "/_sandbox/faults",
        json={"method": "POST", "path_regex": "temporaryAccessPassMethods$", "status": 504, "after_effect": True},
    )
    failed = await call(http, "POST", passes_path(LEE))
    listed = await call(http, "GET", passes_path(LEE))
    state = await call(http, "GET", "/_sandbox/state")

    assert failed.status == 504
    assert len(listed.body["value"]) == 1  # the pass exists although the caller saw a failure
    assert state.body["counters"]["faults_injected"] == 1
    assert state.body["faults"] == []


async def test_fault_only_matches_its_method(http: ClientSession) -> None:
    await call(http, "POST", "/_sandbox/faults", json={"method": "GET", "path_regex": "manager$", "status": 500})
    assert (await call(http, "POST", passes_path(LEE))).status == 201
    assert (await call(http, "GET", f"/v1.0/users/{LEE}/manager")).status == 500


async def test_unlimited_fault_until_cleared_with_retry_after(http: ClientSession) -> None:
    await call(
        http,
        "POST",
        "/_sandbox/faults",
        json={"path_regex": "^/users/", "status": 429, "count": None, "retry_after_s": 2},
    )
    statuses = [(await call(http, "GET", f"/v1.0/users/{MEGAN}")).status for _ in range(3)]
    throttled = await call(http, "GET", f"/v1.0/users/{MEGAN}")
    cleared = await call(http, "DELETE", "/_sandbox/faults")

    assert statuses == [429, 429, 429]
    assert throttled.headers["Retry-After"] == "2"
    assert cleared.status == 204
    assert (await call(http, "GET", f"/v1.0/users/{MEGAN}")).status == 200


async def test_delay_fault_lets_a_client_time_out(http: ClientSession) -> None:
    await call(http, "POST", "/_sandbox/faults", json={"path_regex": "manager$", "delay_s": 0.5})
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(f"/v1.0/users/{LEE}/manager", timeout=ClientTimeout(total=0.1)) as response:
            await response.read()


@pytest.mark.parametrize(
    "rule",
    [
        {"status": 503},
        {"path_regex": "(", "status": 503},
        {"path_regex": "x"},
        {"path_regex": "x", "status": 200},
        {"path_regex": "x", "after_effect": True, "delay_s": 1},
        {"path_regex": "x", "status": 503, "count": 0},
        {"path_regex": "x", "status": 503, "colour": "red"},
    ],
)
async def test_invalid_fault_rules_are_refused(http: ClientSession, rule: dict[str, object]) -> None:
    answer = await call(http, "POST", "/_sandbox/faults", json=rule)
    assert answer.status == 400
    assert answer.error["message"].startswith("Invalid fault rule:")
