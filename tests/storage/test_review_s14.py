"""Review of 79ea828 (SQLite's statements, commits and rollbacks on the event loop's thread, sqlite_driver.py): what a
cancelled transaction, a held write lock, a failed commit and an unrecorded pass do to the kept connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.adapters.store import SqlStore
from bot.adapters.store.sqlite_driver import LoopThreadConnection
from bot.domain.alerts import VelocityLimit
from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalRules
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.errors import NotRecorded
from bot.domain.model import PassRequest
from bot.domain.service import AccessRules, TapService
from tests.domain.world import caller
from tests.fakes import (
    ADELE,
    MEGAN,
    OPERATORS,
    PROTECTED,
    TENANT,
    FakeDirectory,
    FakePasses,
    FakeTargetReads,
    FixedClock,
)

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


def database(store: SqlStore) -> Path:
    path = store.engine.url.database
    assert path is not None
    return Path(path)


@pytest.fixture
def other_process(sqlite_store: SqlStore) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the store's file, standing for another process (the migrate command, a second
    bot started on the same file, the sqlite3 shell): autocommit, so the test says when it takes the write lock."""
    connection = sqlite3.connect(database(sqlite_store), isolation_level=None, check_same_thread=False)
    try:
        yield connection
    finally:
        connection.close()


async def short_busy_timeout(store: SqlStore, milliseconds: int) -> None:
    """How long the kept connection waits for another connection's write lock, shorter than the store's 5 s so that a
    test waiting it out stays short (the driver waits, not SQLite's busy handler: sqlite_driver.BUSY_TIMEOUT_S)."""
    await store.lock_target("open", "the kept connection", NOW, TTL)
    kept = store._db._kept  # pyright: ignore[reportPrivateUsage]
    assert kept is not None and kept.sync_connection is not None
    driver = kept.sync_connection.connection.dbapi_connection
    assert isinstance(driver, LoopThreadConnection)
    driver.busy_timeout_s = milliseconds / 1000


def in_sqlite_transaction(store: SqlStore) -> bool:
    """Whether SQLite itself (not SQLAlchemy's bookkeeping) has a transaction open on the kept connection."""
    kept = store._db._kept  # pyright: ignore[reportPrivateUsage]
    assert kept is not None and kept.sync_connection is not None
    raw = kept.sync_connection.connection.driver_connection
    assert raw is not None
    return bool(raw._conn.in_transaction)  # pyright: ignore[reportAttributeAccessIssue]


async def test_a_task_cancelled_inside_a_together_block_rolls_back_and_leaves_the_connection_clean(
    sqlite_store: SqlStore,
) -> None:
    store = sqlite_store
    started, never = asyncio.Event(), asyncio.Event()

    async def inside() -> None:
        async with store.together():
            assert await store.lock_target("megan", "cancelled", NOW, TTL)
            started.set()
            await never.wait()  # a non-store await inside the block: where a cancellation lands

    task = asyncio.create_task(inside())
    await started.wait()
    queued = asyncio.create_task(store.lock_target("megan", "queued", NOW, TTL))  # waits for the turn
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await queued, "the cancelled block's lock row was kept"
    assert not in_sqlite_transaction(store)
    other = SqlStore.from_url(f"sqlite+aiosqlite:///{database(store)}")
    try:
        assert await other.lock_target("megan", "third", NOW, TTL) is False  # "queued" was committed
        assert await other.unlock_target("megan", "queued")
    finally:
        await other.close()


async def test_a_task_cancelled_while_waiting_for_its_turn_takes_nothing_and_the_turn_goes_on(
    sqlite_store: SqlStore,
) -> None:
    store = sqlite_store
    inside, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with store.together():
            assert await store.lock_target("diego", "holder", NOW, TTL)
            inside.set()
            await release.wait()

    holding = asyncio.create_task(holder())
    await inside.wait()
    waiting = asyncio.create_task(store.lock_target("megan", "cancelled", NOW, TTL))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    await holding
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await store.lock_target("megan", "next", NOW, TTL)
    assert not in_sqlite_transaction(store)


async def test_another_process_holding_the_write_lock_gives_a_database_error_not_a_hang(
    sqlite_store: SqlStore, other_process: sqlite3.Connection
) -> None:
    """The busy timeout still ends the wait on the loop's thread, with SQLAlchemy's OperationalError (which the edge
    turns into a sentence as before), and the kept connection serves the next transaction once the lock is gone."""
    store = sqlite_store
    await short_busy_timeout(store, 50)
    other_process.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="database is locked"):
        await store.lock_target("megan", "a", NOW, TTL)
    other_process.execute("ROLLBACK")
    assert not in_sqlite_transaction(store)
    assert await store.lock_target("megan", "a", NOW, TTL)


async def test_waiting_for_another_processs_write_lock_leaves_the_event_loop_running(
    sqlite_store: SqlStore, other_process: sqlite3.Connection
) -> None:
    store = sqlite_store
    await store.lock_target("warm", "up", NOW, TTL)  # the kept connection open
    other_process.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.3, other_process.execute, ("ROLLBACK",))  # the other process ends its write
    ticks = 0
    done = False

    async def other_turns() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(other_turns())
    await asyncio.sleep(0)
    ticks_before = ticks
    released.start()
    try:
        assert await store.lock_target("megan", "a", NOW, TTL)  # waits for the lock, then takes it
    finally:
        released.join()
        done = True
        await ticking
    assert ticks > ticks_before, "nothing else ran on the event loop while the statement waited for the lock"


async def test_two_stores_of_one_process_on_one_file_wait_for_each_other_instead_of_failing(
    sqlite_store: SqlStore,
) -> None:
    store = sqlite_store
    other = SqlStore.from_url(f"sqlite+aiosqlite:///{database(store)}")
    try:
        await store.lock_target("warm", "up", NOW, TTL)
        await short_busy_timeout(store, 300)  # 5 s in the app: the same failure, later
        writing, go_on = asyncio.Event(), asyncio.Event()

        async def others_transaction() -> None:
            async with other.together():
                assert await other.lock_target("diego", "other", NOW, TTL)  # holds SQLite's write lock
                writing.set()
                await go_on.wait()

        others = asyncio.create_task(others_transaction())
        await writing.wait()
        asyncio.get_running_loop().call_soon(go_on.set)  # the other store commits at the loop's next turn
        try:
            assert await store.lock_target("megan", "a", NOW, TTL)
        finally:
            go_on.set()
            await others
    finally:
        await other.close()


async def test_a_failed_commit_leaves_no_open_transaction_to_the_next(sqlite_store: SqlStore) -> None:
    """A COMMIT that SQLite refuses leaves its transaction open (here a deferred foreign key; SQLITE_BUSY at COMMIT
    does the same). The tapbot schema has no deferred constraint: the tables below are the test's own."""
    store = sqlite_store
    async with store._db.connection() as connection:  # pyright: ignore[reportPrivateUsage]
        await connection.exec_driver_sql("CREATE TABLE review_parent (id INTEGER PRIMARY KEY)")
        await connection.exec_driver_sql(
            "CREATE TABLE review_child (id INTEGER PRIMARY KEY, "
            "parent INTEGER REFERENCES review_parent(id) DEFERRABLE INITIALLY DEFERRED)"
        )
    with pytest.raises(Exception, match="FOREIGN KEY"):
        async with store.together():
            assert await store.lock_target("megan", "failed", NOW, TTL)
            async with store._db.connection() as connection:  # pyright: ignore[reportPrivateUsage]
                await connection.exec_driver_sql("INSERT INTO review_child (id, parent) VALUES (1, 42)")
    assert await store.lock_target("megan", "next", NOW, TTL), "the failed transaction's lock row is still there"
    assert not in_sqlite_transaction(store)


class NoAlerts:
    async def raise_alert(self, alert: object) -> None:
        return None


def sql_service(store: SqlStore, passes: FakePasses, clock: FixedClock) -> TapService:
    """A TapService whose audit log, locks, counts, approvals and transactions are the real SQLite store."""
    directory = FakeDirectory()
    directory.add(ADELE, OPERATORS)
    directory.add(MEGAN)
    return TapService(
        directory=directory,
        passes=passes,
        target_reads=FakeTargetReads(directory, passes),
        audit=store,
        clock=clock,
        access=AccessRules(frozenset({TENANT}), OPERATORS, frozenset({PROTECTED})),
        locks=store,
        lock_wait=timedelta(0),
        approval_gate=ApprovalDesk(store=store, rules=ApprovalRules(), clock=clock, audit=store),
        velocity=VelocityLimit(limit=3, counts=store, alerts=NoAlerts(), clock=clock),
        transactions=store,
    )


async def test_a_pass_whose_audit_row_meets_another_processs_write_lock_is_deleted_again(
    sqlite_store: SqlStore, other_process: sqlite3.Connection
) -> None:
    """The non-negotiable behind NotRecorded, through the inline driver: the audit row's INSERT (or its COMMIT) fails
    on the loop's thread, the error reaches the service as an Exception, and the pass nobody was shown is deleted."""
    store = sqlite_store
    clock = FixedClock(NOW)
    passes = FakePasses(clock)
    service = sql_service(store, passes, clock)
    await short_busy_timeout(store, 50)
    create = passes.create_pass

    async def created_while_another_process_writes(*args: object, **kwargs: object) -> object:
        issued = await create(*args, **kwargs)  # pyright: ignore[reportArgumentType]
        other_process.execute("BEGIN IMMEDIATE")  # taken while Graph made the pass
        return issued

    passes.create_pass = created_while_another_process_writes  # type: ignore[method-assign]
    try:
        with pytest.raises(NotRecorded, match="so I deleted it again") as refused:
            await service.issue(caller(ADELE), PassRequest(MEGAN.user_principal_name))
    finally:
        if other_process.in_transaction:
            other_process.execute("ROLLBACK")
    assert passes.created == passes.deleted == [MEGAN.object_id]
    assert MEGAN.object_id not in passes.passes
    secret = "Fake0001Pass"
    assert secret not in str(refused.value)
    rows = await store.audit_rows()
    assert all(secret not in repr(row) for row in rows)
    assert [(row.action, row.outcome) for row in rows if row.action == AuditAction.ISSUE.value] in (
        [],
        [(AuditAction.ISSUE.value, AuditOutcome.FAILED.value)],
    )
    assert not in_sqlite_transaction(store)
    assert await store.lock_target("lee", "next", NOW, TTL)  # the kept connection serves again
