"""The Graph client without kiota's no-op spans (graph_adapter.py) sends, follows, retries and maps errors as the same
client with msgraph's adapter and kiota's own redirect and retry handlers; and once a global tracer provider is set,
it records the very spans they record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from kiota_http import httpx_request_adapter as kiota_adapter
from kiota_http.middleware import RedirectHandler, RetryHandler
from kiota_http.middleware import middleware as kiota_middleware
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.adapters import graph_client
from bot.adapters.graph_adapter import UNTRACED, GraphAdapter, kiota_traced
from bot.adapters.graph_client import build_graph_client
from bot.settings import GraphMode, GraphSettings

USER = {"id": "b", "displayName": "B"}
NOT_FOUND = {"error": {"code": "Request_ResourceNotFound", "message": "gone", "innerError": {"request-id": "r-404"}}}


@dataclass
class Graph:
    base_url: str
    received: list[tuple[str, str, str]] = field(default_factory=list)  # method, path and query, retry-attempt
    unavailable_once: set[str] = field(default_factory=set)


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    state = Graph("")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.received.append((request.method, request.path_qs, request.headers.get("retry-attempt", "")))
        user = request.match_info["user"]
        if user == "moved":
            raise web.HTTPFound("/v1.0/users/b?$select=id")
        if user == "b" and user not in state.unavailable_once:
            state.unavailable_once.add(user)
            return web.json_response({}, status=503, headers={"Retry-After": "1"})
        if user == "b":
            return web.json_response(USER)
        return web.json_response(NOT_FOUND, status=404)

    app = web.Application()
    app.router.add_get("/v1.0/users/{user}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1.0"
    try:
        yield state
    finally:
        await runner.cleanup()


async def exchanges(graph: Graph) -> tuple[list[tuple[str, str, str]], list[Any]]:
    """A redirect to a user first answered 503 (so retried), then a user Graph does not know: what the server
    received and what the caller got."""
    graph.received.clear()
    graph.unavailable_once.clear()
    client, http_client = build_graph_client(GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), graph.base_url)
    outcomes: list[Any] = []
    try:
        user = await client.users.by_user_id("moved").get()
        outcomes.append((user.id, user.display_name) if user else None)
        try:
            await client.users.by_user_id("nobody").get()
        except ODataError as error:
            assert error.error is not None and error.error.inner_error is not None
            outcomes.append((error.response_status_code, error.error.code, error.error.inner_error.request_id))
    finally:
        await http_client.aclose()
    return list(graph.received), outcomes


def with_kiotas_own_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_client, "GraphAdapter", GraphRequestAdapter)
    monkeypatch.setattr(graph_client, "Redirects", RedirectHandler)
    monkeypatch.setattr(graph_client, "Retries", RetryHandler)


def test_kiotas_spans_are_traced_only_once_a_global_tracer_provider_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not kiota_traced()  # tapbot's own telemetry never sets the global provider (bot/telemetry.py)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", TracerProvider())
    assert kiota_traced()


async def test_redirects_retries_and_errors_are_kiotas_without_its_spans(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = await exchanges(graph)
    with_kiotas_own_classes(monkeypatch)
    reference = await exchanges(graph)

    assert ours == reference
    received, outcomes = ours
    assert received == [
        ("GET", "/v1.0/users/moved", ""),
        ("GET", "/v1.0/users/b?$select=id", ""),
        ("GET", "/v1.0/users/b?$select=id", "1"),
        ("GET", "/v1.0/users/nobody", ""),
    ]
    assert outcomes == [("b", "B"), (404, "Request_ResourceNotFound", "r-404")]


async def test_the_adapter_hands_kiota_no_span_while_nothing_traces() -> None:
    client, http_client = build_graph_client(GraphSettings(GraphMode.SANDBOX), "http://127.0.0.1:1/v1.0")
    try:
        adapter = client.request_adapter
        assert isinstance(adapter, GraphAdapter)
        request = client.users.by_user_id("b").to_get_request_information()
        assert adapter.start_tracing_span(request, "send_async") is UNTRACED
    finally:
        await http_client.aclose()


async def test_with_a_global_tracer_provider_the_spans_are_kiotas_own(
    graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    # kiota's module tracers are OpenTelemetry proxies that keep the first real tracer they find: a tracer of this
    # test's provider instead, so that nothing outlives the test.
    monkeypatch.setattr(kiota_adapter, "tracer", provider.get_tracer("kiota"))
    monkeypatch.setattr(kiota_middleware, "tracer", provider.get_tracer("kiota"))

    def spans() -> list[tuple[str, str | None, list[tuple[str, Any]]]]:
        by_id = {span.context.span_id: span.name for span in exporter.get_finished_spans() if span.context}
        found = [
            (
                span.name,
                by_id.get(span.parent.span_id) if span.parent else None,
                sorted((name, value) for name, value in (span.attributes or {}).items()),
            )
            for span in exporter.get_finished_spans()
        ]
        exporter.clear()
        return found

    ours = await exchanges(graph)
    our_spans = spans()
    with_kiotas_own_classes(monkeypatch)
    reference = await exchanges(graph)
    reference_spans = spans()

    assert ours == reference
    assert our_spans == reference_spans
    names = [name for name, _, _ in our_spans]
    assert "RedirectHandler_send" in names and "RetryHandler_send - attempt 1" in names
    assert any(name.startswith("get_request_from_request_information") for name in names)


async def test_the_request_goes_to_the_url_kiota_would_send_it_to() -> None:
    client, http_client = build_graph_client(GraphSettings(GraphMode.SANDBOX), "http://127.0.0.1:1/v1.0")
    try:
        adapter = client.request_adapter
        assert isinstance(adapter, GraphAdapter)
        methods = client.users.by_user_id("o'neil+x@contoso.com").authentication.temporary_access_pass_methods
        explicit = client.users.by_user_id("u").to_get_request_information()
        explicit.url = "http://127.0.0.1:1/v1.0/users/v?$select=id"  # set: kiota clears the template's parameters
        requests = [
            methods.by_temporary_access_pass_authentication_method_id("m 1").to_delete_request_information(),
            methods.to_get_request_information(),
            explicit,
            client.users.with_url("http://127.0.0.1:1/v1.0/users?$skiptoken=a%2Fb").to_get_request_information(),
        ]
        urls: list[str] = []
        for request in requests:
            adapter.set_base_url_for_request_information(request)
            urls.append(str(adapter.get_request_from_request_information(request, UNTRACED, UNTRACED).url))
        assert urls == [str(httpx.URL(request.url)) for request in requests]
        assert urls[-1].endswith("/users?$skiptoken=a%2Fb") and "o%27neil%2Bx%40contoso.com" in urls[0]
    finally:
        await http_client.aclose()
