from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness.bot import RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.sign_in import delegated_env


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path))
    try:
        yield running
    finally:
        await stop_bot(running)


@pytest.fixture
async def delegated(tmp_path: Path) -> AsyncIterator[RunningBot]:
    """A bot that writes passes with the technician's own rights (issue 14)."""
    running = await start_bot(sandbox_env(tmp_path, **delegated_env()))
    try:
        yield running
    finally:
        await stop_bot(running)
