"""Graph's aiohttp transport (bot/adapters/graph_transport.py) over TLS, as httpx's own transport was: certificates
always verified, against certifi's bundle or the one SSL_CERT_FILE names, on asyncio's loop and on uvloop (app.py's),
and a CA bundle that cannot be loaded stops the Graph client from being built, as it did before."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from bot.adapters.graph_client import build_graph_client
from bot.adapters.graph_transport import AiohttpTransport
from bot.settings import GraphMode, GraphSettings
from tests.support.tls_postgres import Pki

Work = Coroutine[Any, Any, list[str]]
Runner = Callable[[Work], list[str]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("graph-tls"), host_name="localhost")


async def _outcomes(pki: Pki) -> list[str]:
    """One GET per URL through the transport: its status, or the httpx exception it raised."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client refused the certificate during the handshake
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    outcomes: list[str] = []
    try:
        transport = AiohttpTransport()
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5)) as client:
            for host in ("localhost", "127.0.0.1"):  # the certificate names localhost only
                try:
                    answered = await client.get(f"https://{host}:{port}/v1.0/users")
                    outcomes.append(f"{answered.status_code} {answered.text}")
                except httpx.HTTPError as error:
                    outcomes.append(type(error).__name__)
        await transport.aclose()
    finally:
        server.close()
    return [*outcomes, f"{len(requests)} request(s) reached the server"]


def _asyncio_run(work: Work) -> list[str]:
    return asyncio.run(work)


def _uvloop_run(work: Work) -> list[str]:
    return uvloop.run(work)


@pytest.mark.parametrize("run", [_asyncio_run, _uvloop_run], ids=["asyncio", "uvloop"])
def test_certificates_are_verified_against_certifi_or_ssl_cert_file(
    run: Runner, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    # certifi's bundle does not know the test CA: nothing is sent.
    assert run(_outcomes(pki)) == ["ConnectError", "ConnectError", "0 request(s) reached the server"]
    # SSL_CERT_FILE (httpx's trust_env) names the CA: the right host name is served, the wrong one still refused.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
    assert run(_outcomes(pki)) == ["200 ok", "ConnectError", "1 request(s) reached the server"]
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca_file))
    assert run(_outcomes(pki)) == ["ConnectError", "ConnectError", "0 request(s) reached the server"]


def test_a_ca_bundle_that_cannot_be_loaded_stops_the_graph_client_being_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx's transport loaded the bundle when built, so `python app.py` and the doctor stopped at once. Loaded on the
    # first request instead, every Graph call would raise FileNotFoundError, which no caller's `except
    # httpx.HTTPError` expects, while the bot looked healthy.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        httpx.AsyncHTTPTransport()
    with pytest.raises(FileNotFoundError):
        build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=5), "http://127.0.0.1:9/v1.0")
