"""Shared pytest configuration for the tapbot test suite."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.store import SqlStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    """The store on a SQLite file of the test's own, migrated as the app does (tests/storage/conftest.py's `store`
    runs on PostgreSQL too)."""
    opened = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}")
    await opened.create_schema()
    try:
        yield opened
    finally:
        await opened.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "playground: end-to-end tests that start the Microsoft 365 Agents Playground (Node; needs `npm ci`)",
    )
    config.addinivalue_line(
        "markers",
        "browser: end-to-end tests in Debian's Chromium driven by Playwright "
        "(needs /usr/bin/chromium: bash tools/install-browser.sh)",
    )
