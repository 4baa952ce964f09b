"""Passes nobody was shown whose delete failed, kept in SQL for housekeeping (SQLite and PostgreSQL): never taken by
the follow-through checks, retried once `tried_before` allows, each attempt held by one replica, ended once gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.adapters.store import SqlStore
from bot.domain.follow_through import PassWatch, WatchState

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=2)


def undelivered(method_id: str) -> PassWatch:
    return PassWatch(
        pass_method_id=method_id,
        target_id=f"user-{method_id}",
        target_label=f"User {method_id}",
        requester_id="adele",
        timezone="Europe/Berlin",
        service_url="",
        conversation_id="",
        one_time=False,
        start_at=NOW + timedelta(hours=1),  # not started yet: still deleted
        expires_at=NOW + timedelta(hours=3),
    )


async def test_an_undelivered_pass_is_retried_by_one_replica_until_it_ends(store: SqlStore) -> None:
    await store.watch_undelivered(undelivered("m1"), NOW)
    watch = await store.pass_watch("m1")
    assert watch is not None and watch.state is WatchState.REVOKE_PENDING
    # The follow-through checks never take it (it is no pass anyone was shown).
    later = NOW + timedelta(hours=2)
    assert await store.claim_due_watches("a", later, checked_before=later, limit=10, lease_until=LEASE) == []
    # Just tried (as it was recorded): not due yet.
    assert await store.claim_due_revokes("a", NOW, tried_before=NOW, limit=10, lease_until=LEASE) == []

    soon = NOW + timedelta(minutes=1)
    claimed = await asyncio.gather(
        store.claim_due_revokes("a", soon, tried_before=soon, limit=10, lease_until=soon + timedelta(minutes=2)),
        store.claim_due_revokes("b", soon, tried_before=soon, limit=10, lease_until=soon + timedelta(minutes=2)),
    )
    assert sorted(len(taken) for taken in claimed) == [0, 1]
    holder = "a" if claimed[0] else "b"
    other = "b" if holder == "a" else "a"
    assert not await store.save_revoke_attempt("m1", other, soon, WatchState.ENDED)
    assert await store.save_revoke_attempt("m1", holder, soon, WatchState.REVOKE_PENDING)  # failed again

    again = NOW + timedelta(minutes=3)
    [retry] = await store.claim_due_revokes(other, again, tried_before=again, limit=10, lease_until=LEASE)
    assert retry.requester_id == "adele" and retry.target_id == "user-m1"
    assert await store.save_revoke_attempt("m1", other, again, WatchState.ENDED)
    assert await store.claim_due_revokes("a", later, tried_before=later, limit=10, lease_until=LEASE) == []
