"""Where one `/tap issue` spends the bot's CPU: cProfile over N issue + revoke rounds, the sandbox in another process.

Prints CPU per command (process time) and the share of it per package (by each function's own time).

    python -m bench.profile_issue [--rounds 40] [--top 15]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.external_sandbox import anonymous_env, external_sandbox, warmed_up
from tests.harness.bot import ADELE, MEGAN, start_bot, stop_bot

GROUPS = (
    ("jsonschema", "test harness"),
    ("referencing", "test harness"),
    ("stduritemplate", "msgraph/kiota"),
    ("msgraph", "msgraph/kiota"),
    ("kiota", "msgraph/kiota"),
    ("httpx", "httpx/httpcore"),
    ("httpcore", "httpx/httpcore"),
    ("microsoft_agents", "Agents SDK"),
    ("aiohttp", "aiohttp"),
    ("sqlalchemy", "SQLAlchemy/SQLite"),
    ("aiosqlite", "SQLAlchemy/SQLite"),
    ("sqlite3", "SQLAlchemy/SQLite"),
    ("opentelemetry", "OpenTelemetry"),
    ("/bot/", "tapbot"),
    ("/cards/", "tapbot"),
    ("/tests/", "test harness"),
    ("asyncio", "asyncio"),
    ("/json/", "json"),
)


def group_of(filename: str) -> str:
    for marker, group in GROUPS:
        if marker in filename:
            return group
    return "other (stdlib, builtins)"


async def run(rounds: int, profiler: cProfile.Profile) -> tuple[float, int]:
    async with external_sandbox(None) as base_url:
        with tempfile.TemporaryDirectory() as directory:
            bot = await start_bot(anonymous_env(base_url, Path(directory)))
            bot.connector.validate_cards = False  # the harness's card schema check is not the bot's work
            try:
                await warmed_up(bot)
                for _ in range(3):  # warm every path once
                    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
                    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
                cpu_started = time.process_time()
                profiler.enable()
                for _ in range(rounds):
                    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
                    profiler.disable()
                    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
                    profiler.enable()
                profiler.disable()
                cpu = time.process_time() - cpu_started
            finally:
                await stop_bot(bot)
    return cpu, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--callers", default=None, help="also print who calls functions matching this")
    arguments = parser.parse_args()
    profiler = cProfile.Profile()
    asyncio.run(run(arguments.rounds, profiler))
    stats = pstats.Stats(profiler)
    by_group: dict[str, float] = defaultdict(float)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in raw.items():
        by_group[group_of(filename)] += own
    total = sum(by_group.values())
    per_command = total / arguments.rounds * 1000
    print(f"/tap issue, {arguments.rounds} commands profiled (revokes between them not profiled)")
    for group, seconds in sorted(by_group.items(), key=lambda item: -item[1]):
        print(f"  {group:28s} {seconds / arguments.rounds * 1000:6.1f} ms  {seconds / total:5.1%}")
    print("top functions by own time:")
    stats.sort_stats("tottime").print_stats(arguments.top)
    if arguments.callers:
        stats.print_callers(arguments.callers)
    print(f"profile: {per_command:.1f} ms of profiled CPU per /tap issue (cProfile overhead included)")


if __name__ == "__main__":
    main()
