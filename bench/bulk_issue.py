"""Bulk issue through the real bot against a slow, throttling sandbox, next to the one-at-a-time loop.

The sandbox adds `--latency-ms` to every Graph request and admits `--budget` requests per `--window` seconds
(429 with Retry-After beyond). The bot checks every row (user, roles, groups, existing pass) and then issues with
adaptive concurrency; the baseline does what the PowerShell script does: for each row, look the user up and create
the pass, each row waiting for the previous one (no checks at all). Prints rows/s for both, their ratio, the share
of the budget used, 429s seen, and peak memory. Also parses a 50,000-row file.

    python -m bench.bulk_issue [--users 1000] [--latency-ms 150] [--budget 600] [--window 10] [--baseline-rows 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from bench.parse_bulk_file import build_csv
from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client, load_response_models
from bot.domain.bulk_file import read_bulk_file
from bot.domain.errors import Throttled
from bot.domain.model import DirectoryUser
from bot.sandbox.generate import bulk_tenant, bulk_upns
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import parse_tenant
from bot.settings import GraphMode, GraphSettings
from cards import verbs
from tests.harness.bot import ADELE, TENANT_ID, ShiftableClock, start_bot, stop_bot

OPERATORS = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"


async def counters(sandbox: RunningSandbox) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"{sandbox.control_url}/state") as answer:
        return (await answer.json())["counters"]


async def reset_counters(sandbox: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{sandbox.control_url}/reset", json={}) as answer:
        assert answer.status == 200


async def bot_run(sandbox: RunningSandbox, users: int, directory: Path) -> tuple[float, dict[str, int]]:
    env = {
        "TAPBOT_GRAPH_AUTH": "anonymous",
        "TAPBOT_GRAPH_BASE_URL": sandbox.base_url,
        "TAPBOT_ALLOWED_TENANT_IDS": TENANT_ID,
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        "TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'bench.db'}",
        "TAPBOT_DOWNLOAD_HOSTS": sandbox.root_url.removeprefix("http://"),
        "TAPBOT_BULK_MAX_ROWS": str(users + 10),
        "TAPBOT_GRAPH_TIMEOUT_SECONDS": "60",
    }
    bot = await start_bot(env, clock=ShiftableClock())
    try:
        data = ("userPrincipalName\n" + "\n".join(bulk_upns(users)) + "\n").encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{sandbox.control_url}/files?name=users.csv", data=data) as hosted,
        ):
            url = (await hosted.json())["downloadUrl"]
        started = time.perf_counter()
        attachment = {
            "contentType": "application/vnd.microsoft.teams.file.download.info",
            "name": "users.csv",
            "content": {"downloadUrl": url, "fileType": "csv"},
        }
        await bot.post(bot.activity(ADELE, "", attachments=[attachment]))
        card = next(sent.card for sent in bot.connector.sent if sent.card)
        job_id = next(a["data"]["jobId"] for a in card["actions"] if a["verb"] == verbs.BULK_CONFIRM)
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        await bot.components.bulk.wait(job_id)
        elapsed = time.perf_counter() - started
        counts = await bot.components.bulk._bulk.counts(job_id)
        assert {state.value: n for state, n in counts.items()} == {"delivered": users}, counts
    finally:
        await stop_bot(bot)
    return elapsed, await counters(sandbox)


async def one_at_a_time(sandbox: RunningSandbox, rows: int) -> float:
    """The PowerShell loop: Get-MgUser, then New-Mg…TemporaryAccessPassMethod, row after row."""
    client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=60), sandbox.base_url)
    graph = GraphGateway(client, SystemClock())
    started = time.perf_counter()
    for upn in bulk_upns(rows)[::-1]:  # other users than the bot run's first ones: no replacing needed
        while True:
            try:
                user = await graph.find_user(upn)
                assert user is not None
                await graph.create_pass(
                    DirectoryUser(user.object_id, upn, upn), lifetime_minutes=60, one_time=False, start_at=None
                )
                break
            except Throttled as throttled:
                await asyncio.sleep(throttled.retry_after_seconds)
    elapsed = time.perf_counter() - started
    await http.aclose()
    return elapsed


async def main(arguments: argparse.Namespace) -> None:
    load_response_models()  # both contenders start warm (the bot does this at start-up)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tenant = parse_tenant(json.loads(json.dumps(bulk_tenant(arguments.users))))
    options = SandboxOptions(
        latency_ms=arguments.latency_ms, request_budget=arguments.budget, budget_window_s=arguments.window
    )
    sandbox = await start_sandbox(tenant, options)
    try:
        with tempfile.TemporaryDirectory() as directory:
            bot_seconds, bot_counters = await bot_run(sandbox, arguments.users, Path(directory))
        rss_after_bot = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await reset_counters(sandbox)
        loop_seconds = await one_at_a_time(sandbox, arguments.baseline_rows)
        loop_counters = await counters(sandbox)
    finally:
        await sandbox.close()
    bot_rate = arguments.users / bot_seconds
    loop_rate = arguments.baseline_rows / loop_seconds
    budget_rate = arguments.budget / arguments.window
    print(
        f"sandbox: {arguments.latency_ms:.0f} ms per request, budget {arguments.budget} requests / "
        f"{arguments.window:.0f} s ({budget_rate:.0f}/s)"
    )
    print(
        f"bot bulk issue: {arguments.users} users in {bot_seconds:.1f} s = {bot_rate:.1f} rows/s "
        f"(preflight checks included; {bot_counters['requests_served']} requests, "
        f"{bot_counters['requests_throttled']} answered 429, peak window use {bot_counters['peak_window_usage']}"
        f"/{arguments.budget} = {bot_counters['peak_window_usage'] / arguments.budget:.0%} of the budget; "
        f"average {bot_counters['requests_served'] / bot_seconds / budget_rate:.0%} of it)"
    )
    print(
        f"one-at-a-time loop: {arguments.baseline_rows} users in {loop_seconds:.1f} s = {loop_rate:.2f} rows/s "
        f"({loop_counters['requests_served']} requests, no checks)"
    )
    print(f"ratio: {bot_rate / loop_rate:.1f}x")
    print(
        f"peak memory: process max RSS {rss_after_bot / 1024:.0f} MiB after the bot run "
        f"({rss_before / 1024:.0f} MiB before it; bot, sandbox and test connector share this process)"
    )
    data = build_csv(50_000)
    now, utc = datetime.now(UTC), ZoneInfo("UTC")
    started = time.perf_counter()
    parsed = read_bulk_file(data, "users.csv", max_rows=60_000, now=now, tz=utc)
    parse_seconds = time.perf_counter() - started
    tracemalloc.start()  # a second parse, traced: tracing slows the code down several times
    read_bulk_file(data, "users.csv", max_rows=60_000, now=now, tz=utc)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"parse 50,000-row CSV ({len(data) / 2**20:.1f} MiB): {parse_seconds * 1000:.0f} ms, "
        f"{len(parsed.rows)} rows, peak {peak / 2**20:.1f} MiB traced"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--budget", type=int, default=600)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--baseline-rows", type=int, default=60)
    asyncio.run(main(parser.parse_args()))
