"""What the browser tests need from the machine, and how they behave without it.

``playwright`` comes from requirements-dev.txt (its bundled driver only: never ``playwright install``); the browser
is Debian's ``/usr/bin/chromium`` (``bash tools/install-browser.sh``); the Playground's npm package comes from
``npm ci``. Without one of them the tests are skipped on a developer machine and fail when ``CI`` is set.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest

from tests.support.playground import REPO_ROOT, require_playground

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
TIMEZONE = "Europe/Berlin"
LOCALE = "en-US"
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1280, 800


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if not in_ci():
        pytest.skip(f"browser tests need Playwright and Debian's Chromium: {reason}", allow_module_level=True)
    pytest.fail(f"browser tests cannot run: {reason} (CI is set: a missing browser is a failure there, not a skip)")


def import_playwright_api() -> ModuleType:
    """``playwright.async_api``; a test module that imports it is skipped without it (failed under CI)."""
    try:
        return importlib.import_module("playwright.async_api")
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install -r requirements-dev.txt)")
        raise


def require_browser() -> None:
    """The Playground, Playwright and Chromium are all there (else skip locally, fail under CI)."""
    require_playground()
    import_playwright_api()
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing: run `bash tools/install-browser.sh`")


@dataclass(frozen=True)
class Tapbot:
    """The real tapbot app the browser talks to (through the Playground), and its in-process sandbox tenant."""

    endpoint: str
    """``http://127.0.0.1:<port>/api/messages``"""
    sandbox_control: str
    """The sandbox's control plane, ``http://127.0.0.1:<port>/_sandbox`` (docs/sandbox.md)."""

    async def host_file(self, name: str, data: bytes) -> str:
        """Put a file where the sandbox plays SharePoint; returns the ``downloadUrl`` Teams would attach."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.sandbox_control}/files", params={"name": name}, data=data) as answer,
        ):
            answer.raise_for_status()
            return str((await answer.json())["downloadUrl"])

    async def slow_down_pass_creation(self, seconds: float) -> None:
        """Every pass creation in the sandbox takes ``seconds`` longer (a fault rule with only a delay)."""
        rule = {"method": "POST", "path_regex": "temporaryAccessPassMethods$", "delay_s": seconds, "count": None}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.sandbox_control}/faults", json=rule) as answer,
        ):
            answer.raise_for_status()
