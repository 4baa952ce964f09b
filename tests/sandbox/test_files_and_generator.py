from __future__ import annotations

import aiohttp

from bot.sandbox.generate import bulk_tenant, bulk_upns
from bot.sandbox.server import start_sandbox
from bot.sandbox.tenant import parse_tenant
from bot.settings import DEMO_TENANT_FILE


async def test_hosted_file_round_trip() -> None:
    sandbox = await start_sandbox(parse_tenant(bulk_tenant(3)))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{sandbox.control_url}/files?name=users.csv", data=b"upn\r\na@b.c\r\n") as posted:
                hosted = await posted.json()
            assert hosted["downloadUrl"].startswith(sandbox.root_url) and hosted["downloadUrl"].endswith("/users.csv")
            async with session.get(hosted["downloadUrl"]) as downloaded:
                assert await downloaded.read() == b"upn\r\na@b.c\r\n"
            async with session.get(f"{sandbox.control_url}/files/nope/users.csv") as missing:
                assert missing.status == 404
            async with session.get(f"{sandbox.base_url}/users/{bulk_upns(3)[2]}") as user:
                assert (await user.json())["displayName"] == "Bulk User 00003"
    finally:
        await sandbox.close()


def test_generated_tenant_is_valid_and_deterministic() -> None:
    first = bulk_tenant(50)
    assert first == bulk_tenant(50)
    tenant = parse_tenant(first, DEMO_TENANT_FILE)
    assert tenant.user(bulk_upns(50)[49]) is not None
