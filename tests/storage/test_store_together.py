"""`SqlStore.together()` (the domain's Transactions port), on SQLite and PostgreSQL: the store calls inside one block
are one transaction, durable when the block ends, gone when it raises; a task started inside gets its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.adapters.store import SqlStore
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.records import PassCard, RedactionReason

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


def issued(target: str = "megan") -> AuditEvent:
    return AuditEvent(NOW, AuditAction.ISSUE, AuditOutcome.SUCCEEDED, "adele", "Adele Vance", target, f"{target}@x")


@contextmanager
def transactions(store: SqlStore) -> Iterator[list[int]]:
    begun: list[int] = []

    def on_begin(_connection: Any) -> None:
        begun.append(1)

    event.listen(store.engine.sync_engine, "begin", on_begin)
    try:
        yield begun
    finally:
        event.remove(store.engine.sync_engine, "begin", on_begin)


@pytest.fixture
async def other(store: SqlStore, store_url: str) -> AsyncIterator[SqlStore]:
    """A second store on the same database: another replica, which sees only what was committed."""
    opened = SqlStore.from_url(store_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_calls_inside_are_one_transaction_committed_when_the_block_ends(
    store: SqlStore, other: SqlStore
) -> None:
    with transactions(store) as begun:
        async with store.together():
            assert await store.lock_target("megan", "holder-a", NOW, TTL)
            assert await store.passes_issued_by("adele", NOW - timedelta(hours=1)) == 0
            await store.record(issued())
            assert await other.audit_rows() == [], "committed before the block ended"
    assert len(begun) == 1
    assert [row.target_id for row in await other.audit_rows()] == ["megan"]
    assert not await other.lock_target("megan", "holder-b", NOW, TTL), "the lock taken inside was not kept"


async def test_a_block_that_raises_leaves_nothing(store: SqlStore, other: SqlStore) -> None:
    with pytest.raises(OSError):
        async with store.together():
            await store.record(issued())
            await store.unlock_target("megan", "holder-a")
            raise OSError("the next statement failed")
    assert await other.audit_rows() == []


async def test_the_audit_row_and_the_release_stand_or_fall_together(store: SqlStore, other: SqlStore) -> None:
    assert await store.lock_target("megan", "holder-a", NOW, TTL)
    with pytest.raises(OSError):
        async with store.together():
            await store.record(issued())
            await store.unlock_target("megan", "holder-a")
            raise OSError("commit refused")
    assert not await other.lock_target("megan", "holder-b", NOW, TTL), "released without its audit row"
    async with store.together():
        await store.record(issued())
        await store.unlock_target("megan", "holder-a")
    assert await other.lock_target("megan", "holder-b", NOW, TTL)
    assert len(await other.audit_rows()) == 1


async def test_a_nested_block_joins_the_outer_one(store: SqlStore, other: SqlStore) -> None:
    with transactions(store) as begun:
        async with store.together():
            async with store.together():
                await store.record(issued("megan"))
            assert await other.audit_rows() == [], "the inner block committed on its own"
            await store.record(issued("diego"))
    assert len(begun) == 1
    assert [row.target_id for row in await other.audit_rows()] == ["megan", "diego"]


async def test_a_task_started_inside_gets_transactions_of_its_own(store: SqlStore, other: SqlStore) -> None:
    """A task copies the context it was started in; were it to join the block's transaction, its write after the
    block ended would go to a closed session and never be committed."""
    block_done = asyncio.Event()

    async def later() -> None:
        await block_done.wait()
        await store.record(issued("diego"))

    async with store.together():
        task = asyncio.create_task(later())
        await store.record(issued("megan"))
    block_done.set()
    await task
    assert sorted(row.target_id or "" for row in await other.audit_rows()) == ["diego", "megan"]


async def test_outside_a_block_each_call_is_its_own_transaction(store: SqlStore) -> None:
    with transactions(store) as begun:
        await store.record(issued())
        assert await store.lock_target("megan", "holder-a", NOW, TTL)
    assert len(begun) == 2


def card(card_id: str) -> PassCard:
    return PassCard(
        card_id, "adele", "megan", "Megan Bowen", "method-1", NOW, NOW + TTL, True, "UTC", "https://s", "c", None, NOW
    )


async def test_rows_a_session_added_inside_come_before_the_statements_after_them(
    store: SqlStore, other: SqlStore
) -> None:
    """Inside a block the ORM calls (a session joined to the block's connection) and the prebuilt statements run on
    one connection: a claim right after a save must find the saved card, and both commit with the block."""
    with transactions(store) as begun:
        async with store.together():
            await store.save_pass_cards([card("card-1")])  # through the ORM session
            assert await store.claim_redaction("card-1", RedactionReason.REVOKED, NOW)  # a Core UPDATE
            assert await other.pass_card("card-1") is None, "committed before the block ended"
    assert len(begun) == 1
    saved = await other.pass_card("card-1")
    assert saved is not None and saved.redaction_reason == RedactionReason.REVOKED.value


async def test_a_block_that_raises_after_orm_and_core_writes_leaves_neither(store: SqlStore, other: SqlStore) -> None:
    with pytest.raises(OSError):
        async with store.together():
            await store.save_pass_cards([card("card-1")])
            await store.record(issued())
            await store.save_pass_cards([card("card-2")])
            raise OSError("the next statement failed")
    assert await other.pass_card("card-1") is None
    assert await other.pass_card("card-2") is None
    assert await other.audit_rows() == []
