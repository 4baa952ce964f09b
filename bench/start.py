"""Cold start and memory of the bot alone: time to ready and peak RSS, over a few fresh bot processes.

Each run starts the bot in a process of its own (bench/bot_process.py: the real app factory, the benchmarks'
settings) against one sandbox in another process, waits for it to be ready (imports, app start, the Graph models'
warm-up), then sends `--commands` issue + revoke rounds. Time to ready is from the spawn to the ready line (and
without the interpreter and imports: app start + warm-up); peak RSS is the process's high-water mark (VmHWM) after
the warm-up and after the commands. The figures are the median of `--runs`.

    python -m bench.start [--runs 3] [--commands 10] [--loop app|asyncio|uvloop]

Last line: `start: ready <ms> ms (app start and warm-up <ms> ms, CPU <s> s), peak RSS <MiB> MiB after warm-up, <MiB>
MiB after <n> issue + revoke (median of <runs>)`; CPU: what the process spent until ready (every thread: interpreter,
imports, app start, warm-up). On a busy machine the time to ready is much more than that CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from bench.bot_process import LOOPS, bot_process
from bench.external_sandbox import anonymous_env, external_sandbox
from tests.harness.bot import ADELE, MEGAN


async def main(arguments: argparse.Namespace) -> None:
    ready: list[float] = []
    cpu: list[float] = []
    started: list[float] = []
    rss_ready: list[float] = []
    rss_end: list[float] = []
    async with external_sandbox(None) as base_url:
        for _ in range(arguments.runs):
            with tempfile.TemporaryDirectory() as directory:
                async with bot_process(anonymous_env(base_url, Path(directory)), loop=arguments.loop) as bot:
                    for _ in range(arguments.commands):
                        for text in (f"/tap issue {MEGAN.upn} 2h", f"/tap revoke {MEGAN.upn}"):
                            response = await bot.say(ADELE, text)
                            assert response.status in (200, 202), f"{text}: HTTP {response.status}"
                    end = bot.usage()
                    print(bot.start_summary(end))
                    ready.append(bot.ready_ms)
                    cpu.append(bot.ready_usage.cpu_seconds)
                    started.append(bot.reported["ready_ms"] - bot.reported["imports_ms"])
                    rss_ready.append(bot.ready_usage.peak_rss_mib)
                    rss_end.append(end.peak_rss_mib)
    print(
        f"start: ready {statistics.median(ready):.0f} ms (app start and warm-up {statistics.median(started):.0f} ms, "
        f"CPU {statistics.median(cpu):.2f} s), "
        f"peak RSS {statistics.median(rss_ready):.0f} MiB after warm-up, {statistics.median(rss_end):.0f} MiB after "
        f"{arguments.commands} issue + revoke (median of {arguments.runs})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=10)
    parser.add_argument("--loop", choices=LOOPS, default="app", help="the bot's event loop (app: what app.py runs)")
    asyncio.run(main(parser.parse_args()))
