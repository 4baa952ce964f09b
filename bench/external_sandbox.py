"""A sandbox tenant in its own process, so that a benchmark's CPU time and profile are the bot's alone."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.harness.bot import TENANT_ID, RunningBot

OPERATORS = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"


@asynccontextmanager
async def external_sandbox(tenant: dict[str, object] | None, *arguments: str) -> AsyncIterator[str]:
    """Starts `python -m bot.sandbox` (the demo tenant, or `tenant`) and yields its Graph root URL."""
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, "-m", "bot.sandbox", "--port", "0", "--log-level", "WARNING", *arguments]
        if tenant is not None:
            path = Path(directory) / "tenant.json"
            path.write_text(json.dumps(tenant))
            command += ["--tenant", str(path)]
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        try:
            assert process.stdout is not None
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
            if not line.startswith("SANDBOX_URL="):
                raise RuntimeError(f"the sandbox did not start: {line!r}")
            yield line.removeprefix("SANDBOX_URL=")
        finally:
            process.terminate()
            await process.wait()


def anonymous_env(base_url: str, directory: Path, **more: str) -> dict[str, str]:
    """The bot's settings against a sandbox it did not start itself."""
    root = base_url.removesuffix("/v1.0")
    return {
        "TAPBOT_GRAPH_AUTH": "anonymous",
        "TAPBOT_GRAPH_BASE_URL": base_url,
        "TAPBOT_ALLOWED_TENANT_IDS": TENANT_ID,
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        "TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'bench.db'}",
        "TAPBOT_DOWNLOAD_HOSTS": root.removeprefix("http://"),
        "TAPBOT_HOUSEKEEPING_SECONDS": "3600",
        "TAPBOT_GRAPH_TIMEOUT_SECONDS": "60",
        "TAPBOT_VERIFICATION": "off",  # the benchmarks measure issuing, not people answering verifications
        # ... nor approvals: past 20 passes an hour per operator (the default), the velocity alert holds every further
        # single pass for a second operator, and the benchmarks would measure refusals instead.
        "TAPBOT_VELOCITY_LIMIT": "100000",
        "TAPBOT_LOG_FORMAT": "json",  # what a deployment logs (the sandbox's default is the text console)
        **more,
    }


async def sandbox_counters(base_url: str) -> dict[str, object]:
    root = base_url.removesuffix("/v1.0")
    async with aiohttp.ClientSession() as session, session.get(f"{root}/_sandbox/state") as answer:
        return (await answer.json())["counters"]


async def reset_sandbox(base_url: str) -> None:
    root = base_url.removesuffix("/v1.0")
    async with aiohttp.ClientSession() as session, session.post(f"{root}/_sandbox/reset", json={}) as answer:
        assert answer.status == 200


async def warmed_up(bot: RunningBot) -> None:
    """Waits for the bot's start-up warm-up (Graph models loaded in a thread), wherever this version keeps it."""
    for task in asyncio.all_tasks():
        if task.get_name() == "graph-warm-up":
            await task
