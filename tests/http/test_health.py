"""Liveness and readiness through the real endpoint: /healthz needs nothing, /readyz names what is missing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bot.domain.model import TapPolicy
from bot.health import check_readiness
from tests.fakes import default_policy
from tests.harness.bot import RunningBot

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
