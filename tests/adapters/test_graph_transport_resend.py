"""A pass create is never sent twice by Graph's aiohttp transport (bot/adapters/graph_transport.py): aiohttp resends
an idempotent request (GET, PUT, DELETE) once when a connection breaks, but a POST or PATCH that lost its connection
goes up as an httpx error, one request on the wire, as with httpcore; the gateway then reads the pass back
(graph.py)."""

from __future__ import annotations

import httpx
import pytest

from bot.adapters.graph_transport import AiohttpTransport
from tests.adapters.test_graph_transport import RawServer, answer


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_write_on_a_kept_alive_connection_the_server_drops_is_sent_once(method: str) -> None:
    async with RawServer() as server:
        # The first answer keeps the connection alive; the write on it gets none (Graph's side went away).
        server.reply = lambda head: None if head.startswith(method.encode()) else answer()
        transport = AiohttpTransport()
        try:
            async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5)) as client:
                await client.get(f"{server.url}/v1.0/users/x/authentication/temporaryAccessPassMethods")
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.request(
                        method, f"{server.url}/v1.0/users/x/authentication/temporaryAccessPassMethods", content=b"{}"
                    )
        finally:
            await transport.aclose()
        assert [head.split(b" ", 1)[0] for head, _ in server.requests] == [b"GET", method.encode()]
        assert server.connections == 1
