"""The Graph HTTP client builds and sends kiota's requests in one pass (graph_httpx.py): the same request and the same
sending as httpx's own `build_request` and `send`, compared field by field."""

from __future__ import annotations

import gzip
import random
import zlib
from typing import Any

import httpx
import pytest

from bot.adapters.graph_client import GraphHttpClient
from bot.adapters.graph_httpx import OnePassClient, graph_url

GRAPH = "https://graph.microsoft.com/v1.0"
USER_URL = f"{GRAPH}/users/adele%40contoso.com?$select=id,displayName&$filter=startswith%28displayName%2C%27A%27%29"


Answer = tuple[int, dict[str, str], bytes]  # status, headers, the body as sent


class Answering(httpx.AsyncBaseTransport):
    """Answers as our transports do: the raw body in memory, in a ByteStream."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (200, {"Content-Type": "application/json"}, b"{}")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, headers, body = self.answer
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


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
    send: Any, answer: Answer | None, **options: Any
) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
    """What the hooks saw, what went to the transport, and the response (or the error): through `send` of a fresh
    client."""
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
        try:
            response: httpx.Response = await send(made, request, **options)
            if options.get("stream"):
                await response.aread()
        except httpx.HTTPError as error:
            return seen, [fields(request) for request in transport.requests], {"error": repr(error)}
        answer_fields = {
            "status": response.status_code,
            "headers": response.headers.raw,
            "content": response.content,
            "text": response.text,
            "history": response.history,
            "next": fields(response.next_request) if response.next_request else None,
            "consumed": response.is_stream_consumed,
            "closed": response.is_closed,
            "downloaded": response.num_bytes_downloaded,
            "elapsed": response.elapsed >= response.elapsed * 0,  # set once the body was read and closed
            "cookies": dict(made.cookies),
            "request": fields(response.request),
        }
        return seen, [fields(request) for request in transport.requests], answer_fields
    finally:
        await made.aclose()


BODY = b'{"value": [{"id": "u1", "displayName": "\xc3\x9cnal"}]}'


@pytest.mark.parametrize(
    "answer",
    [
        None,
        (200, {"Content-Type": "application/json"}, BODY),
        (200, {"Content-Encoding": "gzip"}, gzip.compress(BODY)),
        (200, {"Content-Encoding": "deflate, gzip"}, gzip.compress(zlib.compress(BODY))),
        (200, {"Content-Encoding": "gzip"}, b"not gzip"),
        (204, {}, b""),
        (302, {"Location": "/v1.0/users/b"}, b""),
        (503, {"Retry-After": "1", "Set-Cookie": "x=1; Path=/"}, b"busy"),
    ],
    ids=["json", "plain", "gzip", "two-encodings", "broken-gzip", "no-content", "redirect", "unavailable"],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_is_sent_as_httpx_sends_it(answer: Answer | None, stream: bool) -> None:
    ours = await sent(OnePassClient.send, answer, stream=stream)
    assert ours == await sent(httpx.AsyncClient.send, answer, stream=stream)
    hooks, requests, got = ours
    assert len(hooks) == 2 and len(requests) == 1
    assert ("error" in got) == (answer is not None and answer[2] == b"not gzip")


async def test_a_closed_client_refuses_to_send_as_httpx_does() -> None:
    made = client()
    request = made.build_request("GET", USER_URL)
    await made.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await made.send(request)


GRAPH_URLS = [
    USER_URL,
    f"{GRAPH}/$batch",
    f"{GRAPH}/users?$count=true&$filter=startswith%28displayName%2C%27Meg%20an%27%29&$select=id,displayName&$top=5",
    f"{GRAPH}/users/u/authentication/temporaryAccessPassMethods",
    "http://127.0.0.1:8123/v1.0/users/u?$select=id",
    "http://[::1]:8123/v1.0/users",
    "HTTPS://Graph.Microsoft.COM:443/v1.0/users/",
    "https://graph.microsoft.com",
    "https://graph.microsoft.com?",
    "https://graph.microsoft.com/v1.0/users?",
    "https://user:pa%20ss@graph.microsoft.com/v1.0/me",
    "https://graph.microsoft.com/v1.0/./users/../groups",
    "https://graph.microsoft.com/v1.0/users/a.b/..x/.../.",
    "https://graph.microsoft.com/v1.0/users/o'brien@contoso.com",
    "https://graph.microsoft.com/v1.0/users/%zz%4",
    "https://graph.microsoft.com/v1.0/users/a b?x=<y>",
    "https://graph.microsoft.com/v1.0/users/{id}?$filter={x}`",
    "https://graph.microsoft.com/v1.0/users/ünï?q=ü",
    "https://graph.microsoft.com/v1.0/users#fragment",
    "https://graph.microsoft.com:abc/v1.0/users",
    "https://graph.micro\tsoft.com/v1.0/users",
    "https://bücher.example/v1.0/users",
    "http:///v1.0/users",
    "https://graph.microsoft.com/v1.0/users/\x7f",
]


def parsed(url: str) -> object:
    try:
        return httpx.URL(url)._uri_reference
    except httpx.InvalidURL as error:
        return ("InvalidURL", str(error))


def parsed_ours(url: str) -> object:
    try:
        return graph_url(url)._uri_reference
    except httpx.InvalidURL as error:
        return ("InvalidURL", str(error))


@pytest.mark.parametrize("url", GRAPH_URLS)
def test_a_url_is_parsed_as_httpx_parses_it(url: str) -> None:
    assert parsed_ours(url) == parsed(url)


def test_any_url_is_parsed_as_httpx_parses_it() -> None:
    alphabet = "aZ09-._~!$&'()*+,;=:@/?#[]%\"<>`{}|\\^ \t\x7fé2F.."
    chosen = random.Random(13)
    for _ in range(20_000):
        tail = "".join(chosen.choice(alphabet) for _ in range(chosen.randint(0, 24)))
        url = chosen.choice(["https://graph.microsoft.com", "http://127.0.0.1:80", "https://h:8443", "https://"]) + tail
        assert parsed_ours(url) == parsed(url), url
