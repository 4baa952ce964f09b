"""Browser end-to-end tests: the real tapbot app, the Agents Playground, and Debian's Chromium driven by Playwright.

What they need and how they skip: ``environment.py``.

Screenshots go to ``test-artifacts/screenshots/`` (git-ignored); a failing test also leaves
``FAILED-<test>.png`` and ``.html`` there.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from bot.sandbox.generate import bulk_tenant
from bot.server import COMPONENTS, create_app
from bot.settings import Settings
from tests.browser.environment import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LOCALE,
    SCREENSHOTS,
    TIMEZONE,
    VIEWPORT_HEIGHT,
    VIEWPORT_WIDTH,
    Tapbot,
    require_browser,
)
from tests.harness.bot import sandbox_env
from tests.support.playground import Playground

if TYPE_CHECKING:
    from tests.browser.teams_ui import OpenTeams, TeamsUI


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed, so ``open_teams`` keeps the page as evidence."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def bulk_users(request: pytest.FixtureRequest) -> int:
    """How many generated users the sandbox tenant gets besides the demo people (``bot.sandbox.generate``);
    set it with ``@pytest.mark.parametrize("bulk_users", [60], indirect=True)``."""
    return int(getattr(request, "param", 0))


@pytest.fixture
def tapbot_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings a scenario needs besides the defaults of ``sandbox_env``; set them with
    ``@pytest.mark.parametrize("tapbot_env", [{"TAPBOT_VERIFICATION": "manager"}], indirect=True)``."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def tapbot(tmp_path: Path, bulk_users: int, tapbot_env: dict[str, str]) -> AsyncIterator[Tapbot]:
    """The real tapbot app (sandbox tenant, a fresh SQLite file) on 127.0.0.1."""
    require_browser()
    overrides: dict[str, str] = dict(tapbot_env)
    if bulk_users:
        tenant_file = tmp_path / "bulk-tenant.json"
        tenant_file.write_text(json.dumps(bulk_tenant(bulk_users)), encoding="utf-8")
        overrides["TAPBOT_SANDBOX_TENANT"] = str(tenant_file)
    app = await create_app(Settings.from_env(sandbox_env(tmp_path, **overrides)))
    sandbox = app[COMPONENTS].sandbox
    assert sandbox is not None, "the browser tests run against the built-in sandbox tenant"
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield Tapbot(f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages", sandbox.control_url)
    finally:
        await runner.cleanup()


@pytest.fixture
async def open_teams(tapbot: Tapbot, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[OpenTeams]:
    """``ui = await open_teams(playground_config(...))``: a Playground for tapbot with that config, and a fresh
    Chromium (own profile dir, Europe/Berlin, en-US) showing its web UI. Everything stops after the test."""
    from playwright.async_api import async_playwright, expect

    from tests.browser.teams_ui import TIMEOUT_MS, TeamsUI

    expect.set_options(timeout=TIMEOUT_MS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    prefix, shots = _slug(request.node.name.removeprefix("test_")), itertools.count(1)
    for stale in (*SCREENSHOTS.glob(f"{prefix}-*"), *SCREENSHOTS.glob(f"{_failed(request)}*")):
        stale.unlink()  # this test's pictures from an earlier run
    opened: list[TeamsUI] = []
    async with contextlib.AsyncExitStack() as stack:
        playwright = await stack.enter_async_context(async_playwright())

        async def start(config: Mapping[str, Any]) -> TeamsUI:
            pg = await stack.enter_async_context(Playground(tapbot.endpoint, config, timezone=TIMEZONE))
            context = await playwright.chromium.launch_persistent_context(
                tmp_path / f"chromium-profile-{len(opened)}",
                executable_path=CHROMIUM,
                args=list(CHROMIUM_ARGS),
                headless=True,
                viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT},
                timezone_id=TIMEZONE,
                locale=LOCALE,
                service_workers="block",
                permissions=["clipboard-read", "clipboard-write"],  # pasting into the custom-activity editor
            )
            stack.push_async_callback(context.close)
            # Offline: the UI asks a CDN for Segoe UI fonts and an animation worklet; refuse at once.
            await context.route(lambda url: not url.startswith(pg.base_url + "/"), lambda route: route.abort())
            context.set_default_timeout(TIMEOUT_MS)
            page = context.pages[0] if context.pages else await context.new_page()
            ui = TeamsUI(context, page, pg, SCREENSHOTS, prefix, shots)
            opened.append(ui)
            await ui.open()
            return ui

        try:
            yield start
        finally:
            if request.node.stash.get(_CALL_FAILED, False):
                for ui in opened:
                    with contextlib.suppress(Exception):
                        name = f"{_failed(request)}-{opened.index(ui)}"
                        await ui.page.screenshot(path=SCREENSHOTS / f"{name}.png")
                        (SCREENSHOTS / f"{name}.html").write_text(await ui.page.content(), encoding="utf-8")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _failed(request: pytest.FixtureRequest) -> str:
    return f"FAILED-{_slug(request.node.name)}"
