"""What Graph receives from the bot's client, now that kiota's handlers that change nothing for tapbot's requests are
left out and the constant headers are set once (graph_client.py): the same URL and headers as the SDK's full
default pipeline sends, and on the sandbox `$` query names, kiota's User-Agent and a client-request-id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web
from kiota_abstractions.authentication import AnonymousAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_http._version import VERSION as KIOTA_VERSION
from kiota_http.middleware import HeadersInspectionHandler
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from yarl import URL

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.graph_client import GraphHttpClient, HeadersInspected
from bot.adapters.graph_costs import RESOURCE_UNITS, batch_item_charges
from bot.adapters.graph_transport import AiohttpTransport
from bot.sandbox.server import create_sandbox_app
from bot.sandbox.tenant import load_tenant
from bot.sandbox.throttle import request_cost
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings
from tests.harness.bot import MEGAN

GRAPH = "https://graph.microsoft.com/v1.0"
REQUEST_ID = "3f1b6c1e-0000-4000-8000-000000000001"
ADDED_BY_THE_PACER = "x-ms-throttle-priority"


class Answering(httpx.AsyncBaseTransport):
    """The bottom of a client: keeps each request and answers an empty collection."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"value": []}, request=request)


def users_query() -> RequestConfiguration[UsersRequestBuilder.UsersRequestBuilderGetQueryParameters]:
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="startswith(displayName,'Meg an')", select=["id", "displayName"], top=5, count=True
    )
    configuration = RequestConfiguration(query_parameters=query)
    configuration.headers.add("client-request-id", REQUEST_ID)
    configuration.headers.add("ConsistencyLevel", "eventual")
    return configuration


def wire(request: httpx.Request) -> tuple[str, dict[str, str]]:
    headers = {name.lower(): value for name, value in request.headers.multi_items()}
    headers.pop(ADDED_BY_THE_PACER, None)
    return str(request.url), headers


async def test_a_graph_cloud_gets_the_url_and_headers_of_the_sdks_full_default_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK as shipped: kiota's seven default handlers and msgraph's telemetry handler, on its own Graph transport.
    reference = Answering()
    shipped = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(transport=reference))
    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=shipped)
    adapter.base_url = GRAPH
    await GraphServiceClient(request_adapter=adapter).users.get(users_query())

    # The bot's client, down to its bottom transport.
    ours = Answering()
    monkeypatch.setattr(AiohttpTransport, "handle_async_request", lambda _, request: ours.handle_async_request(request))
    client, http_client = build_graph_client(GraphSettings(GraphMode.ANONYMOUS), GRAPH)
    try:
        await client.users.get(users_query())
    finally:
        await http_client.aclose()

    assert len(reference.requests) == len(ours.requests) == 1
    url, headers = wire(ours.requests[0])
    assert (url, headers) == wire(reference.requests[0])
    assert "?$count=true&$filter=startswith%28" in url and "%24" not in url
    assert headers["user-agent"] == f"python-httpx/{httpx.__version__} kiota-python/{KIOTA_VERSION}"
    assert headers["sdkversion"].startswith("graph-python-core/")
    assert {"hostos", "runtimeenvironment", "client-request-id"} <= headers.keys()


@dataclass
class Received:
    path_and_query: str
    headers: dict[str, str]
    body: bytes


@pytest.fixture
async def sandbox_wire() -> AsyncIterator[tuple[GraphGateway, GraphServiceClient, list[Received]]]:
    received: list[Received] = []

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        received.append(Received(request.raw_path, headers, await request.read()))
        return await handler(request)

    app = create_sandbox_app(load_tenant(DEMO_TENANT_FILE))
    app.middlewares.insert(0, record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    client, http_client = build_graph_client(
        GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), f"http://127.0.0.1:{port}/v1.0"
    )
    try:
        yield GraphGateway(client, SystemClock()), client, received
    finally:
        await http_client.aclose()
        await runner.cleanup()


async def test_the_sandbox_receives_dollar_names_kiotas_user_agent_and_a_request_id(
    sandbox_wire: tuple[GraphGateway, GraphServiceClient, list[Received]],
) -> None:
    gateway, client, received = sandbox_wire
    user = await gateway.find_user(MEGAN.upn)  # expanded by graph_urls.expanded_url
    assert user is not None and user.object_id == MEGAN.object_id
    assert await gateway.any_user_id()  # expanded by kiota: `%24select=id&%24top=1`, names decoded on the way
    await client.users.get(users_query())  # kiota's expansion with a `%` in a value too
    paths = [entry.path_and_query for entry in received]
    assert paths[0].startswith("/v1.0/users/") and "?$select=id," in paths[0]
    assert paths[1] == "/v1.0/users?$select=id&$top=1"
    assert (
        paths[2]
        == "/v1.0/users?$count=true&$filter=startswith%28displayName%2C%27Meg%20an%27%29&$select=id,displayName&$top=5"
    )
    for entry in received:
        assert "%24" not in entry.path_and_query
        assert entry.headers["user-agent"] == f"python-httpx/{httpx.__version__} kiota-python/{KIOTA_VERSION}"
        assert entry.headers["client-request-id"]
        # Not a Graph cloud: msgraph's telemetry headers were never sent to it.
        assert "sdkversion" not in entry.headers and "hostos" not in entry.headers
    assert received[2].headers["client-request-id"] == REQUEST_ID


async def test_an_answer_that_sets_a_cookie_is_still_read_into_the_clients_cookies() -> None:
    bottom = Answering()

    class SettingCookie(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await bottom.handle_async_request(request)
            return httpx.Response(200, headers={"Set-Cookie": "affinity=abc; Path=/"}, request=request)

    client = GraphHttpClient(transport=SettingCookie(), timeout=httpx.Timeout(5))
    try:
        await client.get("https://graph.microsoft.com/v1.0/me")
        assert client.cookies.get("affinity") == "abc"
        await client.get("https://graph.microsoft.com/v1.0/me")
        assert bottom.requests[1].headers.get("cookie") == "affinity=abc"
        assert (await client.get("https://graph.microsoft.com/v1.0/users")).status_code == 200
    finally:
        await client.aclose()


async def test_the_pacer_counts_each_item_of_a_batch_it_sends_as_the_sandbox_does(
    sandbox_wire: tuple[GraphGateway, GraphServiceClient, list[Received]],
) -> None:
    """A batch item's URL carries `$select` as a request of its own does (it carried `%24select`, which the pacer
    did not read as `$select`: one resource unit more per item than Graph's table and the sandbox count)."""
    gateway, _client, received = sandbox_wire
    groups = [str(group["id"]) for group in json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))["groups"]]
    await gateway.target_reading(MEGAN.object_id, groups, with_methods=True)
    batches = [entry.body for entry in received if entry.path_and_query == "/v1.0/$batch"]
    assert batches
    for body in batches:
        items = json.loads(body)["requests"]
        charged = batch_item_charges(body)
        assert charged is not None and len(charged) == len(items)
        assert any("&$select=" in item["url"] for item in items) and any("?$expand=" in item["url"] for item in items)
        for item, (_item_id, charges) in zip(items, charged, strict=True):
            assert "%24" not in item["url"]
            url = URL(item["url"])  # as the sandbox reads it
            assert charges[RESOURCE_UNITS] == request_cost(item["method"], url.path, dict(url.query)).resource_units


def test_response_headers_are_captured_as_kiotas_handler_captures_them() -> None:
    headers = httpx.Headers(
        [
            ("Content-Type", "application/json"),
            ("request-id", "r1"),
            ("Set-Cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("Content-Length", "5"),
            ("X-Many", "1, 2"),
            ("x-many", "3"),
        ]
    )
    kiotas, ours = HeadersCollection(), HeadersCollection()
    HeadersInspectionHandler()._capture_headers(headers, kiotas)
    HeadersInspected()._capture_headers(headers, ours)
    assert ours.get_all() == kiotas.get_all()
    assert ours.get("request-id") == {"r1"}
