"""Two versions of the bot side by side: one command to each in turn, so that both see the same machine.

On a shared machine whose speed drifts by a third within minutes, two benchmark runs one after the other compare the
machine as much as the code. Here each tree's bot runs in a process of its own (bench/bot_process.py from that tree,
with a sandbox of its own), and the commands alternate between them one by one (`/tap issue`, then `/tap revoke`,
the order of the two bots swapped every round). Each command's CPU is the bot process's (from /proc); the ratio is
taken per block of rounds, and its median printed.

    python -m bench.compare BEFORE_TREE AFTER_TREE [--rounds 200] [--block 25]

A tree is a directory holding the project (`git archive <commit> | tar -x -C DIR`, with bench/ of this version).
Last line: `compare: issue <a> -> <b> ms (<ratio>x), revoke <a> -> <b> ms (<ratio>x)`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import bench.bot_process as bot_process_module
from bench.bot_process import RemoteBot, bot_process
from bench.external_sandbox import anonymous_env, external_sandbox
from tests.harness.bot import ADELE, MEGAN

COMMANDS = (("issue", f"/tap issue {MEGAN.upn} 2h"), ("revoke", f"/tap revoke {MEGAN.upn}"))
WARM_UP_ROUNDS = 5


async def start(stack: AsyncExitStack, tree: Path) -> RemoteBot:
    base_url = await stack.enter_async_context(external_sandbox(None))
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    bot_process_module.PROJECT = tree  # the bot process runs that tree's code (its bench/bot_process.py)
    return await stack.enter_async_context(bot_process(anonymous_env(base_url, directory)))


async def compare(trees: tuple[Path, Path], rounds: int, block: int) -> dict[str, list[tuple[float, float]]]:
    """Per command, the two bots' CPU (ms per command) in each block of rounds."""
    async with AsyncExitStack() as stack:
        bots = [await start(stack, tree) for tree in trees]
        for bot in bots:
            for _ in range(WARM_UP_ROUNDS):
                for _name, text in COMMANDS:
                    await bot.say(ADELE, text)
        blocks: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in COMMANDS}
        spent = {name: [0.0, 0.0] for name, _ in COMMANDS}
        for round_number in range(rounds):
            order = (0, 1) if round_number % 2 == 0 else (1, 0)
            for name, text in COMMANDS:
                for index in order:
                    before = bots[index].usage()
                    await bots[index].say(ADELE, text)
                    spent[name][index] += bots[index].usage().cpu_seconds - before.cpu_seconds
            if (round_number + 1) % block == 0:
                for name, pair in spent.items():
                    blocks[name].append((pair[0] / block * 1000, pair[1] / block * 1000))
                    spent[name] = [0.0, 0.0]
        return blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--block", type=int, default=25)
    arguments = parser.parse_args()
    trees = (arguments.before.resolve(), arguments.after.resolve())
    blocks = asyncio.run(compare(trees, arguments.rounds, arguments.block))
    parts: list[str] = []
    for name, pairs in blocks.items():
        ratios = [after / before for before, after in pairs if before]
        before_ms = statistics.mean(before for before, _ in pairs)
        after_ms = statistics.mean(after for _, after in pairs)
        print(f"{name}: blocks of {arguments.block}, after/before {[round(ratio, 2) for ratio in ratios]}")
        parts.append(f"{name} {before_ms:.2f} -> {after_ms:.2f} ms ({statistics.median(ratios):.2f}x)")
    print(f"compare: {', '.join(parts)}")


if __name__ == "__main__":
    main()
