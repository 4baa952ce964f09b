"""Graph's requests go through the egress proxy the environment names (HTTP_PROXY / HTTPS_PROXY, NO_PROXY), as
httpx's own transport and azure-identity's sent theirs: a deployment whose only way out is a proxy reaches Graph."""

from __future__ import annotations

import pytest

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.settings import GraphMode, GraphSettings
from tests.adapters.test_graph_transport import RawServer, answer

USER = b'{"id": "6832c635-8862-4324-872b-4990d834254a", "userPrincipalName": "megan@contoso.test"}'
GRAPH = "http://graph.contoso.invalid/v1.0"  # resolvable by no one: only a proxy can carry a request there


def clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_requests_go_through_the_proxy_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)
    async with RawServer(reply=lambda _head: answer(USER)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=5), GRAPH)
        try:
            user = await GraphGateway(client, SystemClock()).find_user("megan@contoso.test")
        finally:
            await http.aclose()
    assert user is not None and user.object_id == "6832c635-8862-4324-872b-4990d834254a"
    [(head, _body)] = proxy.requests
    request_line = head.split(b"\r\n")[0]
    # An HTTP proxy is asked for the absolute URL; the Graph host is named, never resolved by the bot.
    assert request_line.startswith(b"GET http://graph.contoso.invalid/v1.0/users/megan%40contoso.test?"), request_line


async def test_no_proxy_sends_straight_to_its_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)
    async with RawServer(reply=lambda _head: answer(USER)) as graph, RawServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=5), f"{graph.url}/v1.0")
        try:
            user = await GraphGateway(client, SystemClock()).find_user("megan@contoso.test")
        finally:
            await http.aclose()
    assert user is not None
    assert proxy.requests == [] and len(graph.requests) == 1
    assert graph.requests[0][0].startswith(b"GET /v1.0/users/megan%40contoso.test?")


async def test_the_loopback_is_never_sent_to_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy could not reach this machine's own loopback (the sandbox, a test double), NO_PROXY or not.
    clear_proxy_environment(monkeypatch)
    async with RawServer(reply=lambda _head: answer(USER)) as graph, RawServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=5), f"{graph.url}/v1.0")
        try:
            assert await GraphGateway(client, SystemClock()).find_user("megan@contoso.test") is not None
        finally:
            await http.aclose()
    assert proxy.requests == [] and len(graph.requests) == 1
