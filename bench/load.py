"""50 operators at once, issuing and revoking through the real HTTP endpoint; then the same while a bulk job runs.

The bot runs in a process of its own (bench/bot_process.py: the real app factory, the same settings), the sandbox in
another, with Graph's published identity-and-access limits for its tenant size and `--latency-ms` per request; the
HTTP client and the recording Bot Connector that play Teams stay in this one. `bot CPU` is the bot process's
(user + system time of all its threads, from /proc, before and after the phase); this process's CPU (the harness) is
printed apart. Each operator works on their own user: issue, then revoke, `--rounds` times. The second
phase starts a `--bulk-rows` bulk issue job (requested by another operator) and runs the same load while it runs.

    python -m bench.load [--operators 50] [--rounds 4] [--bulk-rows 1000] [--latency-ms 0] [--loop app]

Last line: `load: <n> commands/s, p99 <ms> ms, during bulk p99 <ms> ms, bot CPU <ms> ms per command, errors <n>`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.bot_process import LOOPS, RemoteBot, bot_process
from bench.external_sandbox import anonymous_env, external_sandbox
from bot.sandbox.generate import bulk_tenant, bulk_upns, operator_upns, user_id
from cards import verbs
from tests.harness.bot import ADELE, Person


@dataclass
class Phase:
    timings: list[float] = field(default_factory=list[float])
    errors: list[str] = field(default_factory=list[str])
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the bot process's
    loop_cpu_seconds: float = 0.0  # of which its main thread's (the event loop)
    harness_cpu_seconds: float = 0.0  # this process's: the HTTP client and the recording connector
    collections: str = ""  # the bot's garbage collections during the phase

    def p(self, share: float) -> float:
        ordered = sorted(self.timings)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


async def operators_at_once(bot: RemoteBot, operators: list[Person], targets: list[str], rounds: int) -> Phase:
    phase = Phase()
    await bot.collections(reset=True)

    async def operator(index: int) -> None:
        person, target = operators[index], targets[index]
        for _ in range(rounds):
            for text, expected in (
                (f"/tap issue {target} replace", "handed it over"),
                (f"/tap revoke {target}", "Revoked"),
            ):
                started = time.perf_counter()
                response = await bot.say(person, text)
                phase.timings.append((time.perf_counter() - started) * 1000)
                if response.status not in (200, 202):
                    phase.errors.append(f"{text}: HTTP {response.status}")
                    continue
                chat = bot.connector.in_conversation(bot.personal_chat_of(person))
                if not chat or expected not in str(chat[-1].activity):
                    phase.errors.append(f"{text}: {str(chat[-1].activity)[:200] if chat else 'no answer'}")

    bot_before, harness_cpu, started = bot.usage(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(operator(index) for index in range(len(operators))))
    phase.seconds = time.perf_counter() - started
    bot_after = bot.usage()
    phase.cpu_seconds = bot_after.cpu_seconds - bot_before.cpu_seconds
    phase.loop_cpu_seconds = bot_after.loop_thread_cpu_seconds - bot_before.loop_thread_cpu_seconds
    phase.harness_cpu_seconds = time.process_time() - harness_cpu
    phase.collections = await bot.collections()
    return phase


async def start_bulk_job(bot: RemoteBot, base_url: str, upns: list[str]) -> Any:
    root = base_url.removesuffix("/v1.0")
    data = ("userPrincipalName\n" + "\n".join(upns) + "\n").encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{root}/_sandbox/files?name=users.csv", data=data) as hosted,
    ):
        url = (await hosted.json())["downloadUrl"]
    attachment = {
        "contentType": "application/vnd.microsoft.teams.file.download.info",
        "name": "users.csv",
        "content": {"downloadUrl": url, "fileType": "csv"},
    }
    await bot.post(bot.activity(ADELE, "", attachments=[attachment]))
    confirms = [
        action
        for sent in reversed(bot.connector.sent)
        if sent.card
        for action in sent.card.get("actions", [])
        if action.get("verb") == verbs.BULK_CONFIRM
    ]
    job_id = confirms[0]["data"]["jobId"]
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    return job_id


async def main(arguments: argparse.Namespace) -> None:
    count = arguments.operators
    tenant = bulk_tenant(count + arguments.bulk_rows, operators=count)
    sandbox_arguments = ["--graph-limits", "--latency-ms", str(arguments.latency_ms)]
    async with external_sandbox(tenant, *sandbox_arguments) as base_url:
        with tempfile.TemporaryDirectory() as directory:
            env = anonymous_env(base_url, Path(directory), TAPBOT_BULK_MAX_ROWS=str(arguments.bulk_rows + 10))
            async with bot_process(env, loop=arguments.loop) as bot:
                operators = [Person(user_id(upn), upn, upn.split("@")[0]) for upn in operator_upns(count)]
                upns = bulk_upns(count + arguments.bulk_rows)
                targets, bulk_rows = upns[:count], upns[count:]
                alone = await operators_at_once(bot, operators, targets, arguments.rounds)
                during = Phase()
                bulk_state = "not run"
                if arguments.bulk_rows:
                    job_id = await start_bulk_job(bot, base_url, bulk_rows)
                    during = await operators_at_once(bot, operators, targets, arguments.rounds)
                    counts = await bot.bulk_counts(job_id)
                    bulk_state = ", ".join(f"{state} {n}" for state, n in counts.items())
                end = bot.usage()  # before the pacer's summary loads its code into the bot's process
                paced = await bot.pacer_summary()
    commands = len(alone.timings)
    print(bot.start_summary(end))
    print(
        f"{count} operators x {arguments.rounds} rounds of issue + revoke: {commands} commands in "
        f"{alone.seconds:.1f} s; p50 {alone.p(0.5):.0f} ms, p99 {alone.p(0.99):.0f} ms"
    )
    if during.timings:
        print(
            f"same during a {arguments.bulk_rows}-row bulk job: {len(during.timings)} commands in "
            f"{during.seconds:.1f} s; p50 {during.p(0.5):.0f} ms, p99 {during.p(0.99):.0f} ms "
            f"(bulk rows when the load ended: {bulk_state})"
        )
    if paced:
        print(paced)
    print(f"the bot's garbage collections: alone {alone.collections}; during bulk {during.collections or 'not run'}")
    print(
        f"CPU per command without the bulk job: bot process {alone.cpu_seconds / commands * 1000:.1f} ms "
        f"(its event loop's thread {alone.loop_cpu_seconds / commands * 1000:.1f} ms, other threads "
        f"{(alone.cpu_seconds - alone.loop_cpu_seconds) / commands * 1000:.1f} ms), "
        f"this process (client and connector playing Teams) {alone.harness_cpu_seconds / commands * 1000:.1f} ms"
    )
    errors = alone.errors + during.errors
    if errors:
        print(f"first error: {errors[0]}")
    print(
        f"load: {commands / alone.seconds:.0f} commands/s, p99 {alone.p(0.99):.0f} ms, "
        f"during bulk p99 {during.p(0.99):.0f} ms, bot CPU {alone.cpu_seconds / commands * 1000:.1f} ms per command, "
        f"errors {len(errors)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--bulk-rows", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--loop", choices=LOOPS, default="app", help="the bot's event loop (app: what app.py runs)")
    asyncio.run(main(parser.parse_args()))
