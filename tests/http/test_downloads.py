"""No silent truncation (issue 9, item 6): an attached file is read to its end or refused, never previewed in part.

The file hosts here are raw sockets on loopback (listed in TAPBOT_DOWNLOAD_HOSTS), so a test decides exactly what
goes over the wire: small chunks with pauses, a Content-Length the body never reaches, a chunked body that stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.sandbox.generate import bulk_tenant, bulk_upns
from tests.harness.bot import sandbox_env, start_bot, stop_bot
from tests.http.test_bulk import attach, last_card
from tests.http.test_issue_flow import card_text, sandbox_passes

ROWS = 400
Serve = Callable[[asyncio.StreamWriter, bytes], Awaitable[None]]


def users_csv(count: int) -> bytes:
    return ("userPrincipalName\r\n" + "".join(f"{upn}\r\n" for upn in bulk_upns(count))).encode("utf-8")


class RawFileHost:
    """Answers every GET with `serve(writer, body)` and then closes the connection."""

    def __init__(self, body: bytes, serve: Serve) -> None:
        self._body = body
        self._serve = serve
        self._server: asyncio.Server | None = None
        self.authority = ""

    async def __aenter__(self) -> RawFileHost:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.authority = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://{self.authority}/personal/adele/users.csv"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self._serve(writer, self._body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def head(extra: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n{extra}\r\n".encode()


async def chunked_slowly(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(head("Transfer-Encoding: chunked\r\n"))
    for start in range(0, len(body), 700):
        piece = body[start : start + 700]
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.005)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def length_slowly(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(head(f"Content-Length: {len(body)}\r\n"))
    for start in range(0, len(body), 64):
        writer.write(body[start : start + 64])
        await writer.drain()
        await asyncio.sleep(0.005)


async def length_cut_short(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(head(f"Content-Length: {len(body)}\r\n") + body[: len(body) // 3])
    await writer.drain()


async def chunked_cut_short(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(head("Transfer-Encoding: chunked\r\n"))
    for start in range(0, len(body) // 3, 700):
        piece = body[start : start + 700]
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.005)
    # no terminating 0-length chunk: the connection just ends


async def until_close(writer: asyncio.StreamWriter, body: bytes) -> None:
    """Neither a length nor chunks: the body ends when the connection does, so a cut cannot be told apart."""
    writer.write(head("") + body[: len(body) // 3])
    await writer.drain()


async def chunked_without_end(writer: asyncio.StreamWriter, body: bytes) -> None:
    """Keeps streaming past any cap (no Content-Length to refuse up front)."""
    writer.write(head("Transfer-Encoding: chunked\r\n"))
    for _ in range(400):
        writer.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")
        await writer.drain()


async def preview_from(tmp_path: Path, host: RawFileHost, **env: str) -> tuple[list[str], str]:
    tenant = tmp_path / "bulk-tenant.json"
    if not tenant.exists():
        tenant.write_text(json.dumps(bulk_tenant(ROWS)), encoding="utf-8")
    running = await start_bot(
        sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_DOWNLOAD_HOSTS=host.authority, **env)
    )
    try:
        await attach(running, "users.csv", b"", url=host.url)
        texts = running.connector.texts()
        preview = card_text(last_card(running)) if running.connector.cards() else ""
        assert await sandbox_passes(running) == []
        return texts, preview
    finally:
        await stop_bot(running)


@pytest.mark.parametrize(
    ("serve", "rows"), [(chunked_slowly, ROWS), (length_slowly, 60)], ids=["chunked", "content-length"]
)
async def test_a_file_streamed_in_small_pieces_is_read_whole(tmp_path: Path, serve: Serve, rows: int) -> None:
    async with RawFileHost(users_csv(rows), serve) as host:
        texts, preview = await preview_from(tmp_path, host)
    assert f"Ready\n{rows}" in preview, (texts, preview)


@pytest.mark.parametrize(
    "serve",
    [length_cut_short, chunked_cut_short, until_close],
    ids=["short of content-length", "chunked", "delimited by close"],
)
async def test_a_file_cut_short_is_refused_not_previewed(tmp_path: Path, serve: Serve) -> None:
    async with RawFileHost(users_csv(ROWS), serve) as host:
        texts, preview = await preview_from(tmp_path, host)
    assert preview == "", "no preview of a partial file"
    assert len(texts) == 1 and "arrived incomplete" in texts[0] and "send it again" in texts[0], texts


async def test_an_endless_stream_stops_at_the_size_cap(tmp_path: Path) -> None:
    async with RawFileHost(users_csv(40), chunked_without_end) as host:
        texts, preview = await preview_from(tmp_path, host, TAPBOT_BULK_MAX_BYTES="65536")
    assert preview == ""
    assert len(texts) == 1 and "larger than 64 KB" in texts[0], texts
