"""How long `/tap issue` takes through the real HTTP endpoint against the sandbox tenant.

Runs the real app on 127.0.0.1 with a recording Bot Connector, issues and revokes passes for one user in a loop,
and prints the latency of the HTTP answer (the whole turn: parsing, the rules' Graph reads, the create, the card
delivery and the SQL writes). Usage: python -m bench.issue_latency [rounds] [graph latency ms]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.external_sandbox import warmed_up
from tests.harness.bot import ADELE, MEGAN, sandbox_env, start_bot, stop_bot


async def measure(rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as directory:
        bot = await start_bot(sandbox_env(Path(directory)))
        timings: list[float] = []
        try:
            await warmed_up(bot)  # a real first command arrives long after start-up, when this is done
            await bot.say(ADELE, "/tap help")
            for _ in range(rounds):
                started = time.perf_counter()
                response = await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status in (200, 202)
                await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
            cards = sum(1 for sent in bot.connector.sent if sent.card and "handed it over" in str(sent.card))
            assert cards == rounds, f"expected {rounds} pass cards, got {cards}"
        finally:
            await stop_bot(bot)
    return timings


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    measured = asyncio.run(measure(rounds))
    first, timings = measured[0], sorted(measured[1:])
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    print(f"/tap issue over HTTP against the sandbox, {rounds} rounds (in-process sandbox, no added latency)")
    print(f"  first (cold) {first:.1f} ms")
    print(f"  then p50 {statistics.median(timings):.1f} ms   p95 {p95:.1f} ms   max {timings[-1]:.1f} ms")


if __name__ == "__main__":
    main()
