"""SQLite through `LoopThreadCursor` (bot/adapters/store/sqlite_driver.py): a transaction runs start to end on the
event loop's thread, without a trip to aiosqlite's thread or a turn given to other tasks, and SQLAlchemy still gets
the rows, row counts, new row ids and errors the stock adapter gives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.adapters.store import SqlStore
from bot.adapters.store.sqlite_driver import LoopThreadCursor
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome

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


def issued(target: str) -> AuditEvent:
    return AuditEvent(NOW, AuditAction.ISSUE, AuditOutcome.SUCCEEDED, "adele", "Adele Vance", target, f"{target}@x")


async def test_a_transaction_neither_goes_to_the_sqlite_thread_nor_lets_other_tasks_run(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load, each statement's trip used to wait a turn of the whole event loop while every other transaction
    waited for this one: the store's transactions take turns."""
    trips: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await execute(self, fn, *args, **kwargs)

    await store.record(issued("diego"))  # the kept connection is opened (through aiosqlite's thread) before counting
    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    ran_meanwhile: list[str] = []
    asyncio.get_running_loop().call_soon(ran_meanwhile.append, "another task")
    async with store.together():
        assert await store.lock_target("megan", "holder-a", NOW, TTL)  # an upsert
        assert await store.passes_issued_by("adele", NOW - TTL) == 0  # a SELECT with a row
        await store.record(issued("megan"))  # an ORM insert in the same transaction
    assert ran_meanwhile == [], "the event loop ran something else in the middle of the transaction"
    assert trips == []
    await asyncio.sleep(0)
    assert ran_meanwhile == ["another task"]
    assert [row.target_id for row in await store.audit_rows()] == ["diego", "megan"]  # committed


async def test_rows_counts_and_new_ids_come_back(store: SqlStore) -> None:
    async with store.engine.connect() as connection:
        assert isinstance(connection.sync_connection.connection.cursor(), LoopThreadCursor)  # type: ignore[union-attr]
    await store.record(issued("megan"))
    await store.record(issued("diego"))
    rows = await store.audit_rows()
    assert [(row.id, row.target_id) for row in rows] == [(1, "megan"), (2, "diego")]
    assert await store.lock_target("megan", "holder-a", NOW, TTL)
    assert not await store.lock_target("megan", "holder-b", NOW, TTL), "row count 0 read as a change"
    async with store.engine.begin() as connection:
        result = await connection.execute(
            text("INSERT INTO target_locks (target_id, holder, expires_at) VALUES (:t, 'h', '2999-01-01 00:00:00')"),
            [{"t": "a"}, {"t": "b"}, {"t": "c"}],
        )
        assert result.rowcount == 3  # executemany
        inserted = await connection.execute(
            text("INSERT INTO target_locks (target_id, holder, expires_at) VALUES ('d', 'h', '2999-01-01 00:00:00')")
        )
        assert inserted.lastrowid == 5  # after megan, a, b and c: SQLite's rowid of the new row
        selected = await connection.execute(text("SELECT target_id FROM target_locks ORDER BY target_id"))
        assert selected.keys() == ["target_id"]
        assert selected.scalars().all() == ["a", "b", "c", "d", "megan"]


async def test_errors_are_sqlalchemys_and_the_connection_stays_usable(store: SqlStore) -> None:
    await store.record(issued("megan"))
    with pytest.raises(IntegrityError):
        async with store.engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO audit_events (id, at, action, outcome, actor_id) VALUES (1, '', '', '', '')")
            )
    await store.record(issued("diego"))
    assert [row.target_id for row in await store.audit_rows()] == ["megan", "diego"]


async def test_a_streamed_result_still_streams(store: SqlStore) -> None:
    for target in ("megan", "diego", "lynne"):
        await store.record(issued(target))
    async with store.engine.connect() as connection:
        streamed = await connection.stream(text("SELECT target_id FROM audit_events ORDER BY id"))
        assert [row[0] async for row in streamed] == ["megan", "diego", "lynne"]
