"""The Graph HTTP client builds and sends kiota's requests in one pass (graph_httpx.py): the same request and the same
sending as httpx's own `build_request` and `send`, compared field by field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.adapters.graph_client import GraphHttpClient
from bot.adapters.graph_httpx import OnePassClient

GRAPH = "https://graph.microsoft.com/v1.0"
USER_URL = f"{GRAPH}/users/adele%40contoso.com?$select=id,displayName&$filter=startswith%28displayName%2C%27A%27%29"


class Answering(httpx.AsyncBaseTransport):
    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answer is not None:
            return httpx.Response(
                self.answer.status_code, headers=self.answer.headers, stream=httpx.ByteStream(self.answer.content)
            )
        return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=httpx.ByteStream(b"{}"))


def client(transport: httpx.AsyncBaseTransport | None = None) -> OnePassClient:
    made = GraphHttpClient(transport=transport or Answering(), timeout=httpx.Timeout(7))
    made.headers["User-Agent"] = "python-httpx kiota-python/1"
    made.headers["SdkVersion"] = "graph-python-core/1"
    return made


def fields(request: httpx.Request) -> dict[str, Any]:
    """Everything a request holds, its body as bytes."""
    held = dict(vars(request))
    held["headers"] = request.headers._list
    held["url"] = (
        str(request.url),
        request.url.raw_scheme,
        request.url.raw_host,
        request.url.port,
        request.url.raw_path,
    )
    held["stream"] = (type(request.stream), b"".join(request.stream))  # type: ignore[arg-type]
    return held


CASES: list[tuple[str, dict[str, Any]]] = [
    ("GET", {"url": USER_URL, "headers": {"client-request-id": "r1", "Accept": "application/json"}}),
    ("get", {"url": USER_URL}),
    ("GET", {"url": USER_URL, "headers": {"user-agent": "theirs", "ConsistencyLevel": "eventual"}}),
    (
        "POST",
        {
            "url": f"{GRAPH}/users/u/authentication/temporaryAccessPassMethods",
            "headers": {"Content-Type": "application/json", "client-request-id": "r2"},
            "content": b'{"lifetimeInMinutes":60}',
        },
    ),
    ("POST", {"url": f"{GRAPH}/$batch", "headers": {"Content-Type": "application/json"}, "content": b""}),
    ("POST", {"url": f"{GRAPH}/users/u/revokeSignInSessions"}),
    ("PATCH", {"url": f"{GRAPH}/users/u", "headers": {"Content-Length": "2"}, "content": b"{}"}),
    ("DELETE", {"url": f"{GRAPH}/users/u/authentication/temporaryAccessPassMethods/m", "headers": {}}),
    ("GET", {"url": "http://127.0.0.1:8123/v1.0/users/u", "extensions": {"kiota_request_options": {"a": 1}}}),
    ("GET", {"url": "http://[::1]:8123/v1.0/users", "headers": {"Host": "elsewhere"}}),
    # httpx's own path: a relative URL, params, cookies, another timeout.
    ("GET", {"url": "/users/u"}),
    ("GET", {"url": USER_URL, "params": {"$top": "1"}}),
    ("GET", {"url": USER_URL, "cookies": {"a": "b"}}),
    ("GET", {"url": USER_URL, "timeout": 3.0}),
    ("POST", {"url": f"{GRAPH}/$batch", "json": {"requests": []}}),
]


@pytest.mark.parametrize(("method", "arguments"), CASES)
async def test_a_request_is_built_as_httpx_builds_it(method: str, arguments: dict[str, Any]) -> None:
    ours = client()
    try:
        built = ours.build_request(method, **arguments)
        assert fields(built) == fields(httpx.AsyncClient.build_request(ours, method, **arguments))
        assert isinstance(built, httpx.Request) and built.read() == built.content
    finally:
        await ours.aclose()


async def test_a_client_holding_cookies_builds_as_httpx_does() -> None:
    ours = client()
    try:
        ours.cookies.set("affinity", "abc", domain="graph.microsoft.com")
        built = ours.build_request("GET", USER_URL)
        assert built.headers["cookie"] == "affinity=abc"
        assert fields(built) == fields(httpx.AsyncClient.build_request(ours, "GET", USER_URL))
    finally:
        await ours.aclose()


async def sent(
    send: Any, answer: httpx.Response | None, **options: Any
) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    """What the hooks saw, what went to the transport, and the response: through `send` of a fresh client."""
    transport = Answering(answer)
    made = client(transport)
    seen: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        seen.append(f"request {request.method} {request.url}")

    async def on_response(response: httpx.Response) -> None:
        seen.append(f"response {response.status_code}")

    made.event_hooks["request"].append(on_request)
    made.event_hooks["response"].append(on_response)
    try:
        request = made.build_request("GET", USER_URL, headers={"client-request-id": "r1"})
        response: httpx.Response = await send(made, request, **options)
        if options.get("stream"):
            await response.aread()
        answer_fields = {
            "status": response.status_code,
            "headers": response.headers.raw,
            "content": response.content,
            "history": response.history,
            "next": fields(response.next_request) if response.next_request else None,
            "closed": response.is_closed,
            "elapsed": response.elapsed >= response.elapsed * 0,  # set once the body was read and closed
            "cookies": dict(made.cookies),
            "request": fields(response.request),
        }
        return seen, [fields(request) for request in transport.requests], answer_fields
    finally:
        await made.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        None,
        httpx.Response(302, headers={"Location": "/v1.0/users/b"}),
        httpx.Response(503, headers={"Retry-After": "1", "Set-Cookie": "x=1; Path=/"}, content=b"busy"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_is_sent_as_httpx_sends_it(answer: httpx.Response | None, stream: bool) -> None:
    ours = await sent(OnePassClient.send, answer, stream=stream)
    assert ours == await sent(httpx.AsyncClient.send, answer, stream=stream)
    hooks, requests, _ = ours
    assert len(hooks) == 2 and len(requests) == 1


async def test_a_closed_client_refuses_to_send_as_httpx_does() -> None:
    made = client()
    request = made.build_request("GET", USER_URL)
    await made.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await made.send(request)
