"""On SQLite the store's transactions take turns (one at a time per process) and share one connection kept open,
instead of checking one out of the pool for each: a broken one is replaced, and a transaction that failed leaves
nothing behind for the next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.adapters.store import SqlStore
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


def issued(target: str = "megan") -> AuditEvent:
    return AuditEvent(NOW, AuditAction.ISSUE, AuditOutcome.SUCCEEDED, "adele", "Adele Vance", target, f"{target}@x")


@pytest.fixture
def store(sqlite_store: SqlStore) -> SqlStore:
    return sqlite_store


async def test_transactions_share_one_connection(store: SqlStore) -> None:
    checkouts: list[int] = []

    def on_checkout(*_args: Any) -> None:
        checkouts.append(1)

    event.listen(store.engine.sync_engine, "checkout", on_checkout)
    try:
        await store.record(issued())  # a Core statement
        assert await store.lock_target("megan", "holder", NOW, TTL)
        async with store.together():
            await store.passes_issued_by("adele", NOW - timedelta(hours=1))
            await store.unlock_target("megan", "holder")
        await store.audit_rows()  # an ORM session
    finally:
        event.remove(store.engine.sync_engine, "checkout", on_checkout)
    assert len(checkouts) <= 1
    assert len(await store.audit_rows()) == 1


async def test_a_broken_connection_is_replaced(store: SqlStore) -> None:
    await store.record(issued())
    async with store.engine.connect():  # another connection stays usable while the kept one breaks
        pass
    kept = store._db._kept  # pyright: ignore[reportPrivateUsage]
    assert kept is not None
    await kept.invalidate()
    await store.record(issued("lee"))
    assert [row.target_id for row in await store.audit_rows()] == ["megan", "lee"]


async def test_a_failed_transaction_leaves_nothing_to_the_next(store: SqlStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.together():
            await store.record(issued("lee"))
            raise RuntimeError("the caller failed")
    await store.record(issued())
    assert [row.target_id for row in await store.audit_rows()] == ["megan"]


async def test_what_one_store_commits_another_sees(store: SqlStore, tmp_path: Path) -> None:
    other = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}")
    try:
        assert await other.audit_rows() == []
        await store.record(issued())
        assert len(await other.audit_rows()) == 1, "the kept connection held an old snapshot"
        await other.record(issued("lee"))
        assert len(await store.audit_rows()) == 2
    finally:
        await other.close()
