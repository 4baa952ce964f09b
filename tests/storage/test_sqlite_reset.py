"""SQLite's pool gives a connection back without a trip to aiosqlite's thread for the no-op rollback after a commit
(sqlite_driver.py `OneTripConnection`), but still rolls back one given back inside a transaction, so the next
borrower never inherits its writes; a transaction that only read makes no trip for its COMMIT."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text

from bot.adapters.store import SqlStore
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


def issued() -> AuditEvent:
    return AuditEvent(NOW, AuditAction.ISSUE, AuditOutcome.SUCCEEDED, "adele", "Adele Vance", "diego", "diego@x")


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


async def test_a_committed_transaction_is_given_back_without_a_rollback(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollbacks: list[object] = []
    rollback = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        rollbacks.append(self)
        await rollback(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    assert await store.lock_target("megan", "holder-a", NOW, TTL)
    async with store.together():
        await store.unlock_target("megan", "holder-a")
    assert rollbacks == []
    async with store.engine.connect() as connection:
        await connection.run_sync(_write_without_commit)
    assert len(rollbacks) == 1


async def test_a_transaction_that_only_read_makes_no_trip_to_commit(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[object] = []
    commit = aiosqlite.Connection.commit

    async def counted(self: aiosqlite.Connection) -> None:
        commits.append(self)
        await commit(self)

    monkeypatch.setattr(aiosqlite.Connection, "commit", counted)
    assert await store.unredacted_cards_for_pass("method-1") == []
    assert commits == []
    assert await store.lock_target("megan", "holder-a", NOW, TTL)
    assert len(commits) == 1


async def test_a_cancelled_statement_still_queued_is_rolled_back_behind_it(store: SqlStore, tmp_path: Path) -> None:
    """A cancelled await does not stop a statement aiosqlite's thread has not run yet, which would open its transaction
    after `OneTripConnection.rollback` found none: the connection must not serve again (SQLAlchemy discards it), or the
    next borrower of the connection commits the cancelled write."""
    async with store.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        thread: Any = raw.driver_connection
        busy = asyncio.ensure_future(thread._execute(time.sleep, 0.3))  # the thread busy: the INSERT waits in line
        insert = asyncio.ensure_future(
            connection.execute(
                text(
                    "INSERT INTO target_locks (target_id, holder, expires_at) "
                    "VALUES ('megan', 'cancelled', '2999-01-01 00:00:00')"
                )
            )
        )
        await asyncio.sleep(0.05)
        insert.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await insert
    await busy
    await store.record(issued())  # the next borrower commits
    other = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}")
    try:
        assert await other.lock_target("megan", "holder-b", NOW, TTL), "the cancelled INSERT was committed"
    finally:
        await other.close()
