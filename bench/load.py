"""50 operators at once, issuing and revoking through the real HTTP endpoint against the sandbox.

Each operator works on their own user: issue, then revoke, `--rounds` times. Prints the latency of the bot's
answer to each activity (the whole turn: rules, Graph calls to the in-process sandbox, private delivery, SQL)
as p50/p99/max, the throughput, and the errors (expected: zero).

    python -m bench.load [--operators 50] [--rounds 10] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bot.sandbox.generate import bulk_tenant, bulk_upns, operator_upns, user_id
from tests.harness.bot import Person, sandbox_env, start_bot, stop_bot


async def main(arguments: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        tenant = Path(directory) / "tenant.json"
        tenant.write_text(json.dumps(bulk_tenant(arguments.operators, operators=arguments.operators)))
        bot = await start_bot(sandbox_env(Path(directory), TAPBOT_SANDBOX_TENANT=str(tenant)))
        if arguments.latency_ms:
            bot.components.sandbox.state.options = type(bot.components.sandbox.state.options)(  # type: ignore[union-attr]
                latency_ms=arguments.latency_ms
            )
        bot.connector.validate_cards = False
        warm = bot.components.warm_up_task
        if warm is not None:
            await warm
        operators = [Person(user_id(upn), upn, upn.split("@")[0]) for upn in operator_upns(arguments.operators)]
        targets = bulk_upns(arguments.operators)
        timings: list[float] = []
        errors: list[str] = []

        async def operator(index: int) -> None:
            person, target = operators[index], targets[index]
            for _ in range(arguments.rounds):
                for text, expected in (
                    (f"/tap issue {target} replace", "handed it over"),
                    (f"/tap revoke {target}", "Revoked"),
                ):
                    started = time.perf_counter()
                    response = await bot.say(person, text)
                    timings.append((time.perf_counter() - started) * 1000)
                    if response.status not in (200, 202):
                        errors.append(f"{text}: HTTP {response.status}")
                    chat = bot.connector.in_conversation(bot.personal_chat_of(person))
                    if not chat or expected not in str(chat[-1].activity):
                        errors.append(f"{text}: unexpected answer")

        started = time.perf_counter()
        try:
            await asyncio.gather(*(operator(index) for index in range(arguments.operators)))
        finally:
            elapsed = time.perf_counter() - started
            await stop_bot(bot)
    timings.sort()
    p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
    print(
        f"{arguments.operators} operators x {arguments.rounds} rounds of issue + revoke: {len(timings)} commands "
        f"in {elapsed:.1f} s ({len(timings) / elapsed:.0f} commands/s)"
    )
    print(f"bot's answer: p50 {statistics.median(timings):.0f} ms, p99 {p99:.0f} ms, max {timings[-1]:.0f} ms")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    asyncio.run(main(parser.parse_args()))
