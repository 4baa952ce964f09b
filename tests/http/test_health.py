"""Liveness and readiness through the real endpoint: /healthz needs nothing, /readyz names what is missing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.model import TapPolicy
from bot.health import ReadinessCache, check_readiness
from bot.settings import Settings, SettingsError
from tests.fakes import default_policy
from tests.harness.bot import RunningBot, sandbox_env, start_bot, stop_bot

POLICY_PATH = "authenticationMethodConfigurations/TemporaryAccessPass$"


async def get(bot: RunningBot, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with bot.session.get(f"{bot.url}{path}") as response:
        return response.status, await response.json(), {key.lower(): value for key, value in response.headers.items()}


async def inject(bot: RunningBot, **rule: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/faults", json=rule) as answer,
    ):
        assert answer.status == 201, await answer.text()


async def test_ready_when_database_and_graph_answer(bot: RunningBot) -> None:
    status, body, headers = await get(bot, "/readyz")
    assert status == 200, body
    assert body["status"] == "ready"
    assert {check["name"]: check["ok"] for check in body["checks"]} == {"database": True, "graph": True}
    assert "failed" not in body
    assert headers.get("x-correlation-id")


async def test_not_ready_when_graph_refuses_the_policy_read(bot: RunningBot) -> None:
    await inject(bot, method="GET", path_regex=POLICY_PATH, status=403, count=None)
    status, body, _ = await get(bot, "/readyz")
    assert status == 503
    assert body["status"] == "not ready" and body["failed"] == ["graph"]
    graph = next(check for check in body["checks"] if check["name"] == "graph")
    assert "not allowed" in graph["detail"]
    health, _, _ = await get(bot, "/healthz")
    assert health == 200, "liveness does not depend on Graph"


async def test_not_ready_when_graph_keeps_failing(bot: RunningBot) -> None:
    await inject(bot, method="GET", path_regex=POLICY_PATH, status=503, count=None)
    status, body, _ = await get(bot, "/readyz")
    assert status == 503 and body["failed"] == ["graph"]


async def test_not_ready_when_the_database_fails(bot: RunningBot, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken() -> None:
        raise ConnectionRefusedError("could not connect to postgres@db.internal:5432")

    monkeypatch.setattr(bot.components.store, "ping", broken)
    status, body, _ = await get(bot, "/readyz")
    assert status == 503 and body["failed"] == ["database"]
    database = next(check for check in body["checks"] if check["name"] == "database")
    assert "db.internal" not in database["detail"], "the answer never echoes connection details"
    assert "ConnectionRefusedError" in database["detail"]


class SlowGraph:
    async def tap_policy(self) -> TapPolicy:
        await asyncio.sleep(10)
        return default_policy()


class QuickStore:
    async def ping(self) -> None:
        return None


async def test_a_dependency_that_hangs_fails_within_the_timeout() -> None:
    readiness = await asyncio.wait_for(check_readiness(QuickStore(), SlowGraph(), timeout=0.05), 2)
    assert not readiness.ready
    assert readiness.document()["failed"] == ["graph"]
    assert "no answer within 0.05 s" in str(readiness.document())


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def graph_requests(bot: RunningBot) -> int:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    return sandbox.state.counters.requests_received


def fake_window(bot: RunningBot) -> FakeMonotonic:
    clock = FakeMonotonic()
    bot.components.readiness = ReadinessCache(10.0, monotonic=clock)
    return clock


async def test_many_readiness_requests_make_at_most_one_graph_request_per_window(bot: RunningBot) -> None:
    clock = fake_window(bot)
    before = graph_requests(bot)
    answers = await asyncio.gather(*(get(bot, "/readyz") for _ in range(40)))
    assert {status for status, _, _ in answers} == {200}
    assert graph_requests(bot) - before == 1, "40 concurrent probes share one check"
    for _ in range(20):
        status, _, _ = await get(bot, "/readyz")
        assert status == 200
    assert graph_requests(bot) - before == 1, "later probes in the window are answered from the last check"

    clock.now += 10.5  # the window has passed
    await asyncio.gather(*(get(bot, "/readyz") for _ in range(10)))
    assert graph_requests(bot) - before == 2
    assert bot.components.readiness.checks == 2


async def test_a_failed_check_is_cached_too_and_recovers_after_the_window(bot: RunningBot) -> None:
    """A failing Graph is not hammered either: the 503 is the answer for the window, then Graph is asked again."""
    clock = fake_window(bot)
    await inject(bot, method="GET", path_regex=POLICY_PATH, status=503, count=None)
    before = graph_requests(bot)
    for _ in range(5):
        status, body, _ = await get(bot, "/readyz")
        assert status == 503 and body["failed"] == ["graph"]
    failing_requests = graph_requests(bot) - before
    assert failing_requests >= 1
    async with aiohttp.ClientSession() as session, session.delete(f"{bot.sandbox_control}/faults") as answer:
        assert answer.status < 300
    status, _, _ = await get(bot, "/readyz")
    assert status == 503, "still the cached answer"
    assert graph_requests(bot) - before == failing_requests
    clock.now += 11
    status, body, _ = await get(bot, "/readyz")
    assert status == 200, body


async def test_a_probe_that_hangs_up_does_not_cancel_the_shared_check() -> None:
    cache = ReadinessCache(10.0, timeout=2)
    slow = SlowGraph()
    first = asyncio.ensure_future(cache.check(QuickStore(), slow))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.check(QuickStore(), slow))
    await asyncio.sleep(0)
    first.cancel()  # the load balancer gave up on this one
    readiness = await asyncio.wait_for(second, 5)
    assert not readiness.ready and cache.checks == 1


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_health_port_serves_the_health_paths_and_the_public_port_does_not(tmp_path: Path) -> None:
    port = free_port()
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_HEALTH_PORT=str(port)))
    try:
        for path in ("/healthz", "/readyz"):
            async with running.session.get(f"{running.url}{path}") as public:
                assert public.status == 404, f"{path} is not served on the port the ingress forwards"
            async with running.session.get(f"http://127.0.0.1:{port}{path}") as probe:
                assert probe.status == 200, await probe.text()
        async with running.session.post(f"http://127.0.0.1:{port}/api/messages", json={}) as elsewhere:
            assert elsewhere.status in (404, 405), "the health port serves nothing else"
    finally:
        await stop_bot(running)
    with pytest.raises(SettingsError, match="TAPBOT_HEALTH_PORT"):
        Settings.from_env({"PORT": "3978", "TAPBOT_HEALTH_PORT": "3978"})
