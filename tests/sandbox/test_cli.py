"""``python -m bot.sandbox`` announces its URL on stdout and serves the tenant."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import ClientSession

from tests.sandbox.support import LEE

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


async def test_cli_prints_the_url_and_serves(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox",
        "--port",
        "0",
        "--latency-ms",
        "1",
        "--budget",
        "50",
        cwd=REPOSITORY_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode().strip()
        assert line.startswith("SANDBOX_URL=http://127.0.0.1:")
        base_url = line.removeprefix("SANDBOX_URL=")
        assert base_url.endswith("/v1.0")
        async with ClientSession() as http, http.get(f"{base_url}/users/{LEE}") as response:
            assert response.status == 200
            assert (await response.json(content_type=None))["displayName"] == "Lee Gu"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_cli_refuses_an_invalid_tenant_file(tmp_path: Path) -> None:
    tenant_file = tmp_path / "tenant.json"
    await asyncio.to_thread(tenant_file.write_text, '{"tenantId": "nope"}')
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox",
        "--tenant",
        str(tenant_file),
        cwd=REPOSITORY_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 2
    assert stdout == b""
    assert b"tenant.json: tenant file: missing" in stderr


def test_cli_throttling_flags_become_options() -> None:
    from bot.sandbox.__main__ import build_options, parse_arguments

    flags = ["--graph-limits", "--tenant-size", "L", "--auth-method-limit", "20", "--auth-method-window", "5"]
    options = build_options(parse_arguments([*flags, "--auth-method-writes-only", "--budget", "9"]))
    assert (options.graph_limits, options.tenant_size, options.request_budget) == (True, "L", 9)
    assert (options.auth_method_limit, options.auth_method_window_s, options.auth_method_writes_only) == (20, 5.0, True)
    defaults = build_options(parse_arguments([]))
    assert (defaults.graph_limits, defaults.tenant_size, defaults.auth_method_limit) == (False, None, None)
