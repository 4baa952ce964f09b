"""Graph's HTTP transport (bot/adapters/graph_transport.py): aiohttp's connections under httpx's types send the bytes
httpcore sent, keep connections alive, hand httpx the raw body to decode, raise httpx's exceptions, and close."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from bot.adapters.graph import build_graph_client
from bot.adapters.graph_transport import AiohttpTransport
from bot.settings import GraphMode, GraphSettings

Reply = Callable[[bytes], bytes | None]  # request head -> raw answer (None: close without answering)


def answer(body: bytes = b'{"value": []}', *, status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 that records each request's head and body as received on the socket."""

    reply: Reply = field(default=lambda _head: answer())
    requests: list[tuple[bytes, bytes]] = field(default_factory=list[tuple[bytes, bytes]])
    connections: int = 0
    closed_by_client: int = 0
    url: str = ""
    _server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((head, body))
                raw = self.reply(head)
                if raw is None:
                    return
                writer.write(raw)
                await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    async with RawServer() as running:
        yield running


def head_lines(head: bytes) -> tuple[bytes, list[bytes]]:
    request_line, *headers = head.rstrip(b"\r\n").split(b"\r\n")
    return request_line, sorted(line.lower() for line in headers)


async def test_the_bytes_on_the_wire_are_those_httpcore_sent(server: RawServer) -> None:
    # A `$filter` with quotes, spaces and commas: Graph reads it as httpx encoded it, so nothing may re-quote it.
    query = {"$filter": "id in ('a b','c,d')", "$select": "id,displayName", "$top": "15"}
    body = json.dumps({"displayName": "Zoë", "isUsableOnce": True}).encode()
    for transport in (httpx.AsyncHTTPTransport(), AiohttpTransport()):
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(f"{server.url}/v1.0/users", params=query, headers={"Authorization": "Bearer t"})
            await client.post(
                f"{server.url}/v1.0/users/x/authentication/methods",
                content=body,
                headers={"Content-Type": "application/json", "x-ms-throttle-priority": "high"},
            )
        await transport.aclose()
    assert len(server.requests) == 4
    (httpcore_get, _), (httpcore_post, httpcore_body), (ours_get, _), (ours_post, ours_body) = server.requests
    assert head_lines(ours_get) == head_lines(httpcore_get)
    assert head_lines(ours_post) == head_lines(httpcore_post)
    assert ours_body == httpcore_body == body
    assert b"%24filter=id+in+%28%27a+b%27%2C%27c%2Cd%27%29" in ours_get.split(b"\r\n")[0]


async def test_connections_are_kept_alive_and_closed_with_the_client(server: RawServer) -> None:
    _client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=5), f"{server.url}/v1.0")
    for _ in range(5):
        answered = await http.get(f"{server.url}/v1.0/policies")
        assert answered.json() == {"value": []}
    assert (server.connections, server.closed_by_client) == (1, 0)
    await http.aclose()  # msgraph's transport does not pass aclose on: the client must close the connections
    for _ in range(100):
        if server.closed_by_client:
            break
        await asyncio.sleep(0.01)
    assert server.closed_by_client == 1


async def test_a_compressed_answer_is_decoded_once_by_httpx(server: RawServer) -> None:
    payload = json.dumps({"value": [{"id": "p", "isUsable": True}]}).encode()
    compressed = gzip.compress(payload)
    server.reply = lambda _head: answer(compressed, Content_Encoding="gzip")
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        answered = await client.get(f"{server.url}/v1.0/users/x/authentication/methods")
        assert answered.json() == {"value": [{"id": "p", "isUsable": True}]}
        assert answered.headers["content-encoding"] == "gzip"
        # Chunked too (as Graph often answers): aiohttp joins the chunks, httpx still decodes the gzip.
        half = len(compressed) // 2
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (compressed[:half], compressed[half:]))
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        server.reply = lambda _head: (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
        answered = await client.get(f"{server.url}/v1.0/users/x/authentication/methods")
        assert answered.json() == {"value": [{"id": "p", "isUsable": True}]}


async def test_failures_are_httpx_exceptions(server: RawServer) -> None:
    transport = AiohttpTransport()
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(0.2))
    try:
        # Nobody listens: the callers' `except httpx.HTTPError` sees a connect error.
        async with RawServer() as gone:
            port_url = gone.url
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{port_url}/v1.0/users")
        # The server hangs up without an answer (a create, which nobody may send twice).
        server.reply = lambda _head: None
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{server.url}/v1.0/users/x/authentication/methods", content=b"{}")
        assert len(server.requests) == 1
        # No answer within the read timeout: a timeout, which the gateway treats as an uncertain create.
        hung = asyncio.Event()

        def hang(_head: bytes) -> bytes | None:
            hung.set()
            return b""

        server.reply = hang
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/v1.0/users")
        assert hung.is_set()
    finally:
        await client.aclose()
        await transport.aclose()
