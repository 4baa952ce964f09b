"""Storage tests on both engines: every test taking ``store`` or ``database_url`` runs on SQLite and PostgreSQL.

PostgreSQL is a real server (``tests/support/postgres.py``): one per session, a fresh database per test. Without
the server binaries the PostgreSQL half is skipped with the reason locally and fails when ``CI`` is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.store import SqlStore
from tests.support.postgres import empty_postgres_url, postgres, postgres_url

__all__ = ["empty_postgres_url", "postgres", "postgres_url"]  # the fixtures, for the tests of this package

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database (no table yet) on the engine of this run."""
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}"
    return request.getfixturevalue("empty_postgres_url")


@pytest.fixture
def store_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The database the ``store`` fixture opens: on PostgreSQL a copy of the template already migrated to head."""
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """The store as the app opens it (``create_schema`` migrates it to head: a no-op on the PostgreSQL copy)."""
    opened = SqlStore.from_url(store_url)
    await opened.create_schema()
    try:
        yield opened
    finally:
        await opened.close()
