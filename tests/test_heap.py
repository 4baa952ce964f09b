"""The garbage collector is set for a long-running server once the bot's own process has started (bot/heap.py):
the objects start-up made are frozen and the young generation collected less often. Only in app.py's process: an
app made by a test leaves the collector as it is."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

import bot.server
from bot.heap import YOUNG_GENERATION_THRESHOLD, settle_after_start
from bot.server import create_app
from bot.settings import Settings
from tests.harness.bot import sandbox_env


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_settling_freezes_what_start_up_made_and_collects_the_young_less_often(collector_restored: None) -> None:
    made_at_start = [[index] for index in range(1000)]
    _young, middle, old = gc.get_threshold()
    settle_after_start()
    assert gc.get_freeze_count() >= len(made_at_start)
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, middle, old)


@pytest.mark.parametrize("own_process", [True, False])
async def test_the_bots_own_process_settles_after_the_warm_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_process: bool
) -> None:
    happened: list[str] = []
    monkeypatch.setattr(bot.server, "load_response_models", lambda: happened.append("warm-up"))
    monkeypatch.setattr(bot.server, "settle_after_start", lambda: happened.append("settled"))
    app = await create_app(Settings.from_env(sandbox_env(tmp_path)), own_process=own_process)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        for warm_up in [task for task in asyncio.all_tasks() if task.get_name() == "graph-warm-up"]:
            await warm_up  # (or it has ended already)
        assert happened == (["warm-up", "settled"] if own_process else ["warm-up"])
    finally:
        await runner.cleanup()


def test_app_py_serves_its_own_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    made: dict[str, object] = {}

    async def recorded(settings: Settings, **options: object) -> web.Application:
        made.update(options)
        raise RuntimeError("not served in this test")

    def run_app(started: object, **_options: object) -> None:
        with pytest.raises(RuntimeError, match="not served"):
            asyncio.run(started)  # type: ignore[arg-type]

    monkeypatch.setattr(app, "create_app", recorded)
    monkeypatch.setattr(app.web, "run_app", run_app)
    monkeypatch.setattr(app, "configure_logging", lambda *_: None)
    for name in [name for name in app.os.environ if name.startswith("TAPBOT_")]:
        monkeypatch.delenv(name)
    assert app.main([]) == 0
    assert made == {"own_process": True}
