"""Traces and metrics: what a turn, a Graph call, an audit event and a bulk job record, and that no span or metric
carries a pass value or a token (checked like the logs: over full issue turns through the HTTP endpoint)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot import telemetry
from bot.settings import PROJECT_DIR, Settings
from tests.harness.bot import ADELE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.card_reading import pass_value
from tests.harness.tokens import install_test_keys, registered_env

POLICY_PATH = "authenticationMethodConfigurations/TemporaryAccessPass$"


@pytest.fixture
def recorded() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    telemetry.install(spans, reader)
    try:
        yield spans, reader
    finally:
        telemetry.shutdown()


@pytest.fixture
async def bot(tmp_path: Path, recorded: Any) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path))
    try:
        yield running
    finally:
        await stop_bot(running)


def span_text(span: ReadableSpan) -> str:
    """Everything a span carries that an exporter sends: name, attributes, events, links, status, resource."""
    return json.dumps(json.loads(span.to_json()))


def attribute(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


def metric_points(reader: InMemoryMetricReader) -> list[tuple[str, dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    points: list[tuple[str, dict[str, Any], Any]] = []
    if data is None:
        return points
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = getattr(point, "count", None)
                    points.append((metric.name, dict(point.attributes or {}), value))
    return points


def total(points: list[tuple[str, dict[str, Any], Any]], name: str, **attributes: Any) -> int:
    return sum(
        value
        for metric, labels, value in points
        if metric == name and all(labels.get(key) == wanted for key, wanted in attributes.items())
    )


async def inject(bot: RunningBot, **rule: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/faults", json=rule) as answer,
    ):
        assert answer.status == 201, await answer.text()


async def test_an_issue_turn_is_traced_and_counted_without_the_pass(
    bot: RunningBot, recorded: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, reader = recorded
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    await bot.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} replace", kind="channel")
    await bot.say(ADELE, "/tap issue LynneR@contoso.onmicrosoft.com one-time", kind="groupChat")
    secrets = [
        pass_value(sent.card)
        for sent in bot.connector.sent
        if sent.card is not None and "I have handed it over" in str(sent.card)
    ]
    assert len(secrets) == 3

    finished = spans.get_finished_spans()
    turns = [span for span in finished if span.name == "tapbot.turn"]
    assert len(turns) == 3
    assert {str(attribute(span, "tapbot.conversation.type")) for span in turns} == {
        "personal",
        "channel",
        "groupChat",
    }
    assert all(attribute(span, "http.response.status_code") in (200, 202) for span in turns)
    graph = [span for span in finished if span.name.startswith(("GET ", "POST ", "DELETE "))]
    created = [span for span in graph if span.name == "POST /v1.0/users/{id}/authentication/temporaryAccessPassMethods"]
    assert len(created) == 3, sorted({span.name for span in graph})
    assert all(attribute(span, "http.response.status_code") == 201 for span in created)
    assert all(span.parent is not None for span in created), "Graph calls are children of the turn"

    points = metric_points(reader)
    assert total(points, "tapbot.turns", **{"tapbot.activity.type": "message"}) == 3
    assert (
        total(points, "tapbot.audit.events", **{"tapbot.audit.action": "issue", "tapbot.audit.outcome": "succeeded"})
        == 3
    )
    assert (
        total(points, "tapbot.graph.requests", **{"http.request.method": "POST", "http.response.status_code": 201}) == 3
    )

    everything = "\n".join(span_text(span) for span in finished) + "\n" + repr(points)
    for secret in secrets:
        assert secret not in everything, "a pass value in a span or a metric"
    assert "lifetimeInMinutes" not in everything, "no request or response body"


async def test_graph_throttling_is_counted_with_its_retry_after(
    bot: RunningBot, recorded: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, reader = recorded
    await inject(bot, method="GET", path_regex=POLICY_PATH, status=429, count=1, retry_after_s=1)
    await bot.say(ADELE, "/tap policy")
    throttled = [
        span
        for span in spans.get_finished_spans()
        if span.attributes and span.attributes.get("http.response.status_code") == 429
    ]
    assert throttled, "the 429 attempt has its own span (the retry another)"
    assert throttled[0].attributes and throttled[0].attributes.get("graph.retry_after") == "1"
    points = metric_points(reader)
    assert total(points, "tapbot.graph.throttled") >= 1


def test_a_graph_span_never_carries_the_token_the_query_or_the_body() -> None:
    spans = InMemorySpanExporter()
    telemetry.install(spans, InMemoryMetricReader())
    try:
        secret_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token-part.signature"

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                201,
                headers={"request-id": "2c1f7d2e-0000-4000-8000-000000000001", "x-secret": "s3cret-header"},
                json={"temporaryAccessPass": "Pass-Value-123!"},
            )

        async def call() -> None:
            transport = telemetry.GraphTelemetryTransport(httpx.MockTransport(answer))
            async with httpx.AsyncClient(transport=transport) as client:
                response = await client.post(
                    "https://graph.microsoft.com/v1.0/users/AdeleV%40contoso.com/authentication/temporaryAccessPassMethods"
                    "?$filter=userPrincipalName%20eq%20%27hidden-query%27",
                    headers={"Authorization": f"Bearer {secret_token}"},
                    json={"lifetimeInMinutes": 4321},
                )
                assert response.status_code == 201

        asyncio.run(call())
        (span,) = spans.get_finished_spans()
        text = span_text(span)
        assert span.name == "POST /v1.0/users/{user}/authentication/temporaryAccessPassMethods"
        for leaked in (
            secret_token,
            "secret-token-part",
            "hidden-query",
            "s3cret-header",
            "Pass-Value-123!",
            "4321",
            "lifetimeInMinutes",
        ):
            assert leaked not in text, leaked
        assert span.attributes and span.attributes["graph.request_id"] == "2c1f7d2e-0000-4000-8000-000000000001"
    finally:
        telemetry.shutdown()


def test_route_templates_hide_ids_and_user_names() -> None:
    assert (
        telemetry.route_template("/v1.0/users/884f0a7d-eeec-4d58-b136-0634982d6c8f/authentication/methods")
        == "/v1.0/users/{id}/authentication/methods"
    )
    assert telemetry.route_template("/v1.0/users/AdeleV@contoso.com/manager") == "/v1.0/users/{user}/manager"


def test_off_without_a_connection_string_and_the_exporter_is_not_imported() -> None:
    assert Settings.from_env({}).telemetry_connection_string is None
    code = (
        "import sys, asyncio\n"
        "from bot import telemetry\n"
        "import bot.server\n"
        "assert telemetry.configure(None) is False and not telemetry.enabled()\n"
        "print('azure.monitor.opentelemetry.exporter' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


async def test_a_connection_string_exports_to_azure_monitor_without_the_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Azure Monitor exporter, pointed at a local stand-in for the ingestion endpoint."""
    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    monkeypatch.setenv("APPLICATIONINSIGHTS_SDKSTATS_DISABLED", "true")  # its own stats would export at exit
    received: list[bytes] = []

    async def track(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        received.append(body)
        items = body.count(b'"iKey"') or 1
        return web.json_response({"itemsReceived": items, "itemsAccepted": items, "errors": []})

    ingestion = web.Application()
    ingestion.router.add_post("/{path:.*}", track)  # /v2.1/track (the endpoint's trailing slash doubles it)
    runner = web.AppRunner(ingestion)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    connection = (
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        f"IngestionEndpoint=http://127.0.0.1:{port}/;LiveEndpoint=http://127.0.0.1:{port}/"
    )
    running = await start_bot(sandbox_env(tmp_path, APPLICATIONINSIGHTS_CONNECTION_STRING=connection))
    try:
        assert telemetry.enabled()
        await running.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
        secret = next(
            pass_value(sent.card)
            for sent in running.connector.sent
            if sent.card is not None and "I have handed it over" in str(sent.card)
        )
    finally:
        await stop_bot(running)
        await asyncio.to_thread(telemetry.shutdown)  # flushes spans and metrics to the stand-in
        await runner.cleanup()
    exported = b"\n".join(received).decode("utf-8", "replace")
    assert "tapbot.turn" in exported and "temporaryAccessPassMethods" in exported, exported[:2000]
    assert "tapbot.audit.events" in exported
    assert secret not in exported


async def test_an_unauthenticated_request_is_counted_but_its_body_is_never_read(
    tmp_path: Path, recorded: tuple[InMemorySpanExporter, InMemoryMetricReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    install_test_keys(monkeypatch)
    running = await start_bot(sandbox_env(tmp_path, **registered_env()))
    try:
        activity = running.activity(ADELE, f"/tap issue {MEGAN.upn}")
        async with running.session.post(f"{running.url}/api/messages", json=activity) as answer:
            assert answer.status == 401
    finally:
        await stop_bot(running)
    spans, _ = recorded
    (turn,) = [span for span in spans.get_finished_spans() if span.name == "tapbot.turn"]
    assert attribute(turn, "http.response.status_code") == 401
    assert attribute(turn, "tapbot.activity.type") is None, "nothing from an unauthenticated body"
