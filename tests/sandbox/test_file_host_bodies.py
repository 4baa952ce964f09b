"""The sandbox's file host keeps whole bodies: a chunked upload must not be cut to its first chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from bot.sandbox.generate import bulk_tenant
from bot.sandbox.server import start_sandbox
from bot.sandbox.tenant import parse_tenant

CSV = b"userPrincipalName\r\n" + b"".join(f"user{n:04d}@contoso.example\r\n".encode() for n in range(400))


async def _trickle(data: bytes, size: int = 97) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)  # each piece leaves as its own chunk


async def test_a_chunked_file_is_hosted_whole() -> None:
    sandbox = await start_sandbox(parse_tenant(bulk_tenant(3)))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sandbox.control_url}/files?name=users.csv", data=_trickle(CSV)) as posted:
                hosted = await posted.json()
            assert hosted["size"] == len(CSV)
            async with session.get(hosted["downloadUrl"]) as downloaded:
                assert await downloaded.read() == CSV
    finally:
        await sandbox.close()


async def test_a_chunked_upload_is_received_whole() -> None:
    sandbox = await start_sandbox(parse_tenant(bulk_tenant(3)))
    try:
        headers = {"Content-Range": f"bytes 0-{len(CSV) - 1}/{len(CSV)}"}
        async with aiohttp.ClientSession() as session:
            async with session.put(
                f"{sandbox.control_url}/uploads/results.csv", data=_trickle(CSV), headers=headers
            ) as answer:
                assert answer.status == 201, await answer.text()
                uploaded = await answer.json()
            assert uploaded["size"] == len(CSV)
            async with session.get(uploaded["webUrl"]) as downloaded:
                assert await downloaded.read() == CSV
    finally:
        await sandbox.close()
