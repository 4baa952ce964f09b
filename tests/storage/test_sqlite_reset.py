"""SQLite's pool rolls back a connection given back inside a transaction, so the next borrower never inherits its
writes (sqlite_driver.py `LoopThreadConnection` rolls back on the event loop's thread)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.store import SqlStore

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}")
    await opened.create_schema()
    try:
        yield opened
    finally:
        await opened.close()


def _write_without_commit(sync_connection: Any) -> None:
    cursor = sync_connection.connection.cursor()  # the DBAPI connection: no SQLAlchemy transaction to roll back
    cursor.execute(
        "INSERT INTO target_locks (target_id, holder, expires_at) VALUES ('megan', 'abandoned', '2999-01-01 00:00:00')"
    )
    cursor.close()


async def test_a_connection_given_back_inside_a_transaction_is_rolled_back(store: SqlStore) -> None:
    async with store.engine.connect() as connection:
        await connection.run_sync(_write_without_commit)
    # The same pooled connection serves the next transaction: had the abandoned INSERT stayed, the lock is taken.
    assert await store.lock_target("megan", "holder-b", NOW, TTL)
    async with store.engine.connect() as connection:
        assert connection.sync_connection is not None
        rows = (await connection.exec_driver_sql("SELECT holder FROM target_locks")).all()
    assert [row[0] for row in rows] == ["holder-b"]
