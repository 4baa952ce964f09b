"""Where one `/tap issue` spends the bot's CPU: cProfile over N issue + revoke rounds (the issues profiled).

The bot runs in a process of its own (bench/bot_process.py: the real app factory, the same settings as before) and
cProfile runs there, switched on and off by this process around each issue; the sandbox runs in a third process, the
HTTP client and the recording Bot Connector that play Teams in this one. Prints the share of the profiled CPU per
package (by each function's own time), the bot process's CPU per issue and per revoke from /proc (first N rounds
without the profiler, then N with it), its peak RSS and time to ready.

    python -m bench.profile_issue [--rounds 40] [--top 15] [--timer cpu|wall] [--loop app|asyncio|uvloop] [--save F]
        [--layers]

`--layers` also times the bot's layers without the profiler (bench/layers.py: the event loop thread's CPU while each
layer's coroutine runs, one command at a time) and prints their CPU per issue and per revoke: what each layer really
costs, where cProfile's shares inflate code made of many small calls.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.bot_process import LOOPS, RemoteBot, bot_process
from bench.external_sandbox import anonymous_env, external_sandbox
from tests.harness.bot import ADELE, MEGAN

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
    ("/bench/", "benchmark control"),
    ("asyncio", "asyncio"),
    ("/json/", "json"),
)


def print_package_table(stats: pstats.Stats, per: int) -> float:
    """Prints the profiled CPU per package (each function's own time) per one of `per` units; returns the total."""
    by_group: dict[str, float] = defaultdict(float)
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in raw.items():
        by_group[group_of(filename)] += own
    total = sum(by_group.values())
    for group, seconds in sorted(by_group.items(), key=lambda item: -item[1]):
        print(f"  {group:28s} {seconds / per * 1000:6.1f} ms  {seconds / total:5.1%}")
    return total


def group_of(filename: str) -> str:
    for marker, group in GROUPS:
        if marker in filename:
            return group
    return "other (stdlib, builtins)"


@dataclass
class Measured:
    """The bot process's CPU (from /proc, every thread) while it handled the issues and the revokes."""

    issues: float = 0.0
    issues_loop_thread: float = 0.0  # of issues, the event loop's thread (the profiler sees only that one)
    revokes: float = 0.0
    profiled_issues: float = 0.0
    layers: dict[str, dict[str, tuple[float, int]]] = field(default_factory=dict[str, dict[str, tuple[float, int]]])
    layer_process_cpu: dict[str, float] = field(default_factory=dict[str, float])  # /proc, the same commands
    start: str = ""
    errors: list[str] = field(default_factory=list[str])


async def command(bot: RemoteBot, text: str, expected: str, measured: Measured) -> tuple[float, float]:
    """Sends one command; returns the bot process's CPU seconds from its arrival to its answer, and of them its event
    loop thread's."""
    before = bot.usage()
    await bot.say(ADELE, text)
    after = bot.usage()
    cpu = (after.cpu_seconds - before.cpu_seconds, after.loop_thread_cpu_seconds - before.loop_thread_cpu_seconds)
    chat = bot.connector.in_conversation(bot.personal_chat_of(ADELE))
    if not chat or expected not in str(chat[-1].activity):
        measured.errors.append(f"{text}: {str(chat[-1].activity)[:200] if chat else 'no answer'}")
    return cpu


async def layer_round(bot: RemoteBot, command_line: tuple[str, str], name: str, measured: Measured) -> None:
    await bot.reset_layers()
    before = bot.usage()
    await command(bot, *command_line, measured)
    after = bot.usage()
    totals = measured.layers.setdefault(name, {})
    for layer, (seconds, calls) in (await bot.layers()).items():
        spent, counted = totals.get(layer, (0.0, 0))
        totals[layer] = (spent + seconds, counted + calls)
    spent_here = after.cpu_seconds - before.cpu_seconds
    measured.layer_process_cpu[name] = measured.layer_process_cpu.get(name, 0.0) + spent_here


def print_layers(measured: Measured, rounds: int) -> None:
    print("CPU per command by layer (event loop thread, inner layers included; bench/layers.py), without the profiler:")
    print(f"  {'layer':64s} {'issue':>9s} {'calls':>5s} {'revoke':>9s} {'calls':>5s}")
    issue, revoke = measured.layers.get("issue", {}), measured.layers.get("revoke", {})
    for layer in dict.fromkeys([*issue, *revoke]):
        cells = [
            f"{seconds / rounds * 1000:6.2f} ms {calls / rounds:5.1f}" if (seconds, calls) != (0.0, 0) else " " * 15
            for seconds, calls in (issue.get(layer, (0.0, 0)), revoke.get(layer, (0.0, 0)))
        ]
        print(f"  {layer:64s} {cells[0]} {cells[1]}")
    process = [measured.layer_process_cpu.get(name, 0.0) / rounds * 1000 for name in ("issue", "revoke")]
    label = "the bot process (/proc, every thread; 10 ms ticks)"
    print(f"  {label:64s} {process[0]:6.2f} ms       {process[1]:6.2f} ms")


async def run(rounds: int, stats_file: Path, timer: str, loop: str, layers: bool = False) -> Measured:
    measured = Measured()
    issue, revoke = (f"/tap issue {MEGAN.upn} 2h", "handed it over"), (f"/tap revoke {MEGAN.upn}", "Revoked")
    async with external_sandbox(None) as base_url:
        with tempfile.TemporaryDirectory() as directory:
            env = anonymous_env(base_url, Path(directory))
            async with bot_process(env, loop=loop, profile_timer=timer, layers=layers) as bot:
                for _ in range(3):  # warm every path once
                    await command(bot, *issue, measured)
                    await command(bot, *revoke, measured)
                for _ in range(rounds):  # the CPU an issue costs without the profiler
                    cpu, loop_cpu = await command(bot, *issue, measured)
                    measured.issues += cpu
                    measured.issues_loop_thread += loop_cpu
                    measured.revokes += (await command(bot, *revoke, measured))[0]
                for _ in range(rounds if layers else 0):
                    await layer_round(bot, issue, "issue", measured)
                    await layer_round(bot, revoke, "revoke", measured)
                for _ in range(rounds):
                    await bot.profile(True)
                    measured.profiled_issues += (await command(bot, *issue, measured))[0]
                    await bot.profile(False)
                    await command(bot, *revoke, measured)
                measured.start = bot.start_summary(bot.usage())
                await bot.dump_profile(stats_file)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--callers", default=None, help="also print who calls functions matching this")
    parser.add_argument("--save", type=Path, default=None, help="also keep the profile (pstats) in this file")
    parser.add_argument("--layers", action="store_true", help="also time the bot's layers without the profiler")
    parser.add_argument("--loop", choices=LOOPS, default="app", help="the bot's event loop (app: what app.py runs)")
    parser.add_argument(
        "--timer",
        choices=("cpu", "wall"),
        default="cpu",
        help="cProfile's clock in the bot process: the event loop thread's CPU time (default), or wall time as "
        "before (which counts epoll's waits for Graph's answers as the loop's own time)",
    )
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        stats_file = Path(directory) / "issue.pstats"
        measured = asyncio.run(run(arguments.rounds, stats_file, arguments.timer, arguments.loop, arguments.layers))
        stats = pstats.Stats(str(stats_file))
        if arguments.save is not None:
            stats.dump_stats(str(arguments.save))
    print(
        f"/tap issue, {arguments.rounds} commands profiled in the bot's process by {arguments.timer} time "
        "(revokes between them not profiled)"
    )
    total = print_package_table(stats, arguments.rounds)
    per_command = total / arguments.rounds * 1000
    print("top functions by own time:")
    stats.sort_stats("tottime").print_stats(arguments.top)
    if arguments.callers:
        stats.print_callers(arguments.callers)
    if arguments.layers:
        print_layers(measured, arguments.rounds)
    print(measured.start)
    print(
        f"bot process CPU (/proc, every thread): {measured.issues / arguments.rounds * 1000:.1f} ms per /tap issue "
        f"(event loop's thread {measured.issues_loop_thread / arguments.rounds * 1000:.1f} ms) "
        f"and {measured.revokes / arguments.rounds * 1000:.1f} ms per /tap revoke without the profiler, "
        f"{measured.profiled_issues / arguments.rounds * 1000:.1f} ms per /tap issue with it"
    )
    if measured.errors:
        print(f"{len(measured.errors)} commands not answered as expected; first: {measured.errors[0]}")
    calls = stats.total_calls / arguments.rounds  # type: ignore[attr-defined]
    # Unlike the times, the count of Python function calls does not move with the machine's load: a steadier
    # before/after comparison of the bot's own work (though not a measure of it: calls differ in cost).
    print(f"{calls:,.0f} Python function calls per /tap issue (profiled, event loop's thread)")
    print(f"profile: {per_command:.1f} ms of profiled CPU per /tap issue (cProfile overhead included)")


if __name__ == "__main__":
    main()
