"""Bulk issue through the real bot next to the one-at-a-time loop, against Graph's limits as the sandbox models them.

Two sandboxes, each with `--latency-ms` per Graph request:
 (a) Graph's published identity-and-access limits for a tenant of more than 500 users (8,000 resource units per
     10 s, 3,000 writes per 150 s per app, 18,000 writes per 5 min per tenant; see docs/sandbox.md);
 (b) the same plus a tight, unpublished limit on pass creation (`--tight-creates` per `--tight-window` seconds).
In each, the bot (with the product's default verification setting; in a process of its own, bench/bot_process.py, as
the sandbox is, so that what is measured is the bot and not the connector and client that play Teams here) checks
every row (preflight) and then issues;
the loop does what the PowerShell script does: for each row, look the user up and create the pass, row after row, no
checks. `rows/s` counts from the file's arrival
to the last row delivered. The binding limit is the one that allows the fewest rows per second given what a row of
this run cost (resource units, writes, creations per row). Also parses a 50,000-row file.

    python -m bench.bulk_issue [--users 1000] [--latency-ms 150] [--loop-rows 40] [--tight-users 100]
                               [--tight-creates 20 --tight-window 10] [--simple-budget N] [--profile TOP]

`--profile TOP` profiles the bot's process during (a) (cProfile on its event loop's CPU clock; the run is slower for
it) and prints its CPU per row by package and its TOP functions.

Last two lines, (a) then (b): `bulk: <rows/s> rows/s (<pct> % of the binding limit <name> <n>/s), loop <rows/s>
rows/s, <ratio>x, 429s <pct> % of requests, <k> requests per row`.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import resource
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import aiohttp

from bench.bot_process import bot_process
from bench.external_sandbox import anonymous_env, external_sandbox, reset_sandbox, sandbox_counters
from bench.parse_bulk_file import build_csv
from bench.profile_issue import print_package_table
from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.domain.bulk_file import read_bulk_file
from bot.domain.errors import Throttled
from bot.domain.model import DirectoryUser
from bot.domain.pacer import Lane, Pacer
from bot.sandbox.generate import bulk_tenant, bulk_upns
from bot.sandbox.throttle import APP_WRITES_LIMIT, APP_WRITES_WINDOW_S, RESOURCE_UNITS_WINDOW_S, TENANT_SIZE_UNITS
from bot.settings import GraphMode, GraphSettings
from cards import verbs
from tests.harness.bot import ADELE


@dataclass
class Run:
    rows: int
    seconds: float
    counters: dict[str, Any]
    preflight_requests: int | None = None  # of the bot's requests, those made before the run was confirmed
    pacer: str = ""  # what the bot's pacer did (lanes, waits, 429s, learned limits)
    bot_cpu_seconds: float | None = None  # the bot process's, from the file's arrival to the job's end

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def served(self) -> int:
        return int(self.counters["requests_served"])

    @property
    def throttled(self) -> int:
        return int(self.counters["requests_throttled"])


async def bot_run(base_url: str, users: list[str], directory: Path, profile: Path | None = None) -> Run:
    env = anonymous_env(base_url, directory, TAPBOT_BULK_MAX_ROWS=str(len(users) + 10))
    # What a customer gets: recovery passes need a verification unless TAPBOT_VERIFICATION says otherwise, so every
    # row is also checked for the methods that would make its pass a recovery one.
    env.pop("TAPBOT_VERIFICATION", None)
    async with bot_process(env) as bot:
        root = base_url.removesuffix("/v1.0")
        data = ("userPrincipalName\n" + "\n".join(users) + "\n").encode()
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{root}/_sandbox/files?name=users.csv", data=data) as hosted,
        ):
            url = (await hosted.json())["downloadUrl"]
        baseline = await sandbox_counters(base_url)
        if profile is not None:
            await bot.profile(True)
        usage = bot.usage()
        started = time.perf_counter()
        attachment = {
            "contentType": "application/vnd.microsoft.teams.file.download.info",
            "name": "users.csv",
            "content": {"downloadUrl": url, "fileType": "csv"},
        }
        await bot.post(bot.activity(ADELE, "", attachments=[attachment]))
        card = next(sent.card for sent in bot.connector.sent if sent.card)
        job_id = next(a["data"]["jobId"] for a in card["actions"] if a["verb"] == verbs.BULK_CONFIRM)
        checked = since(await sandbox_counters(base_url), baseline)
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        counts = await bot.bulk_finished(job_id)
        elapsed = time.perf_counter() - started
        cpu_seconds = bot.usage().cpu_seconds - usage.cpu_seconds
        if profile is not None:
            await bot.profile(False)
            await bot.dump_profile(profile)
        assert counts == {"delivered": len(users)}, counts
        paced = await bot.pacer_summary()
    counters = since(await sandbox_counters(base_url), baseline)
    return Run(len(users), elapsed, counters, int(checked["requests_served"]), paced, cpu_seconds)


def pacer_summary(pacer: Pacer | None) -> str:
    if pacer is None:
        return ""
    stats = pacer.stats
    learned = {name: f"{d.learned:.0f}" for name, d in pacer.dimensions.items() if d.learned is not None}
    return (
        f"pacer: admitted {stats.admitted[Lane.BULK]} bulk / {stats.admitted[Lane.INTERACTIVE]} interactive, "
        f"waited: {stats.waited[Lane.BULK]} bulk, {stats.waited[Lane.INTERACTIVE]} interactive; "
        f"{stats.throttled} answered 429, "
        f"learned per window {learned or 'nothing'}"
    )


def since(counters: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """The counters' growth since `baseline` (the warm-up's and the upload's requests left out)."""
    delta: dict[str, Any] = {}
    for name, value in counters.items():
        if isinstance(value, int):
            delta[name] = value - int(baseline.get(name, 0))
        elif isinstance(value, dict):
            earlier = cast(dict[str, int], baseline.get(name, {}))
            delta[name] = {key: n - earlier.get(key, 0) for key, n in cast(dict[str, int], value).items()}
    return delta


async def one_at_a_time(base_url: str, upns: list[str]) -> Run:
    """The PowerShell loop: Get-MgUser, then New-Mg…TemporaryAccessPassMethod, row after row."""
    client, http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS, timeout_seconds=60), base_url)
    graph = GraphGateway(client, SystemClock())
    await reset_sandbox(base_url)
    started = time.perf_counter()
    for upn in upns:
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
    return Run(len(upns), elapsed, await sandbox_counters(base_url))


def binding_limit(run: Run, arguments: argparse.Namespace, tight: bool) -> tuple[str, float]:
    """The limit allowing the fewest rows per second at what one row of this run cost."""
    counters, rows = run.counters, run.rows
    allowed: dict[str, float] = {}
    units_per_row = int(counters["resource_units"]) / rows
    writes_per_row = int(counters["writes"]) / rows
    allowed["resource units per app+tenant"] = TENANT_SIZE_UNITS["L"] / RESOURCE_UNITS_WINDOW_S / units_per_row
    if writes_per_row:
        allowed["writes per app+tenant"] = APP_WRITES_LIMIT / APP_WRITES_WINDOW_S / writes_per_row
    if tight:
        creates_per_row = int(counters["writes"]) / rows  # creations and deletions both count against it
        allowed["pass creations"] = arguments.tight_creates / arguments.tight_window / creates_per_row
    name = min(allowed, key=lambda key: allowed[key])
    return name, allowed[name]


def summary(bot: Run, loop: Run, arguments: argparse.Namespace, tight: bool) -> str:
    name, limit_rows = binding_limit(bot, arguments, tight)
    requests = bot.served + bot.throttled
    return (
        f"bulk: {bot.rate:.1f} rows/s ({bot.rate / limit_rows * 100:.0f} % of the binding limit {name} "
        f"{limit_rows:.1f}/s), loop {loop.rate:.2f} rows/s, {bot.rate / loop.rate:.1f}x, "
        f"429s {bot.throttled / max(1, requests) * 100:.1f} % of requests, {bot.served / bot.rows:.1f} requests per row"
    )


async def scenario(
    arguments: argparse.Namespace, label: str, users: int, loop_rows: int, extra: list[str], profile: Path | None = None
) -> tuple[Run, Run]:
    upns = bulk_upns(users + loop_rows)
    tenant = bulk_tenant(len(upns))
    sandbox_arguments = ["--graph-limits", "--tenant-size", "L", "--latency-ms", str(arguments.latency_ms), *extra]
    if arguments.simple_budget:
        sandbox_arguments += ["--budget", str(arguments.simple_budget)]
    async with external_sandbox(tenant, *sandbox_arguments) as base_url:
        with tempfile.TemporaryDirectory() as directory:
            bot = await bot_run(base_url, upns[:users], Path(directory), profile)
        loop = await one_at_a_time(base_url, upns[users:])
    for run, who in ((bot, "bot"), (loop, "loop")):
        counters = run.counters
        split = ""
        if run.preflight_requests is not None:
            split = (
                f" = preflight {run.preflight_requests / run.rows:.2f} + run "
                f"{(run.served - run.preflight_requests) / run.rows:.2f}"
            )
        cpu = (
            ""
            if run.bot_cpu_seconds is None
            else f"; bot process CPU {run.bot_cpu_seconds / run.rows * 1000:.1f} ms per row"
        )
        print(
            f"  {label} {who}: {run.rows} rows in {run.seconds:.1f} s = {run.rate:.2f} rows/s; "
            f"{run.served} requests ({run.served / run.rows:.2f}/row{split}), {run.throttled} answered 429 "
            f"{counters.get('throttled_by') or ''}; {int(counters['resource_units']) / run.rows:.1f} units, "
            f"{int(counters['writes']) / run.rows:.1f} writes per row{cpu}"
        )
        if run.pacer:
            print(f"    {run.pacer}")
    return bot, loop


async def main(arguments: argparse.Namespace) -> None:
    print(
        f"sandbox in its own process: {arguments.latency_ms:.0f} ms per request; (a) Graph's published limits, "
        f"tenant > 500 users; (b) plus {arguments.tight_creates} pass creations per {arguments.tight_window:.0f} s"
    )
    with tempfile.TemporaryDirectory() as directory:
        profile = Path(directory) / "bulk.pstats" if arguments.profile else None
        published = await scenario(arguments, "(a)", arguments.users, arguments.loop_rows, [], profile)
        if profile is not None:
            print(
                f"(a) the bot's CPU per row, profiled in its process ({arguments.users} rows; the run's rate suffers):"
            )
            stats = pstats.Stats(str(profile))
            print_package_table(stats, arguments.users)
            stats.sort_stats("tottime").print_stats(arguments.profile)
    tight_limit = [
        "--auth-method-limit",
        str(arguments.tight_creates),
        "--auth-method-window",
        str(arguments.tight_window),
        "--auth-method-writes-only",
    ]
    tight = await scenario(arguments, "(b)", arguments.tight_users, arguments.loop_rows, tight_limit)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = build_csv(50_000)
    started = time.perf_counter()
    parsed = read_bulk_file(data, "users.csv", max_rows=60_000, now=datetime.now(UTC), tz=ZoneInfo("UTC"))
    print(
        f"parse 50,000-row CSV ({len(data) / 2**20:.1f} MiB): {(time.perf_counter() - started) * 1000:.0f} ms, "
        f"{len(parsed.rows)} rows; process max RSS {rss:.0f} MiB "
        "(this process: test connector and loop; bot and sandbox apart)"
    )
    print(summary(*published, arguments, tight=False))
    print(summary(*tight, arguments, tight=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1000, help="bulk rows against the published limits")
    parser.add_argument("--tight-users", type=int, default=100, help="bulk rows against the tight creation limit")
    parser.add_argument("--loop-rows", type=int, default=40, help="rows the one-at-a-time loop issues")
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--tight-creates", type=int, default=20)
    parser.add_argument("--tight-window", type=float, default=10.0)
    parser.add_argument("--simple-budget", type=int, default=None, help="also apply the old one-number budget")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="TOP",
        help="profile the bot's process in (a); print the top functions",
    )
    asyncio.run(main(parser.parse_args()))
