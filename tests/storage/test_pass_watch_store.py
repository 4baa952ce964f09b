"""Follow-through's watches in SQL, on SQLite and PostgreSQL: enrolled once from pass cards, each check and each
notice held by one replica at a time, a notice marked delivered once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.adapters.store import SqlStore
from bot.domain.follow_through import CheckResult, PassWatch, WatchState
from bot.domain.records import PassCard, RedactionReason

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=2)


def card(card_id: str, method_id: str, *, expires_in: timedelta = timedelta(hours=2)) -> PassCard:
    return PassCard(
        id=card_id,
        requester_id="adele",
        target_id=f"user-{method_id}",
        target_label=f"User {method_id}",
        pass_method_id=method_id,
        start_at=NOW - timedelta(minutes=1),
        expires_at=NOW + expires_in,
        one_time=False,
        timezone="Europe/Berlin",
        service_url="https://smba.example/",
        conversation_id="a:personal-adele",
        activity_id="activity-1",
        created_at=NOW - timedelta(minutes=1),
    )


async def test_live_cards_are_enrolled_once(store: SqlStore) -> None:
    await store.save_pass_card(card("c1", "m1"))
    await store.save_pass_card(card("c1b", "m1"))  # shown again (replace question, results page): one pass
    await store.save_pass_card(card("c2", "m2", expires_in=-timedelta(minutes=1)))  # expired
    await store.save_pass_card(card("c3", "m3"))
    await store.claim_redaction("c3", RedactionReason.REVOKED, NOW)  # revoked
    await store.save_pass_card(card("c4", "m4"))
    await store.claim_redaction("c4", RedactionReason.HANDED_OVER, NOW)  # handed over: still live
    assert await store.enroll_live_passes(NOW) == 2
    assert await store.enroll_live_passes(NOW) == 0
    assert {watch.pass_method_id for watch in await _claim(store, "a")} == {"m1", "m4"}


async def test_two_replicas_claim_disjoint_watches_and_only_the_holder_saves(store: SqlStore) -> None:
    for index in range(6):
        await store.save_pass_card(card(f"c{index}", f"m{index}"))
    await store.enroll_live_passes(NOW)
    first, second = await asyncio.gather(_claim(store, "a", limit=4), _claim(store, "b", limit=4))
    ids_a = {watch.pass_method_id for watch in first}
    ids_b = {watch.pass_method_id for watch in second}
    assert not ids_a & ids_b and len(ids_a | ids_b) == 6
    taken = next(iter(ids_a))
    result = CheckResult(WatchState.REGISTERED, frozenset({"x"}), False, "User registered a passkey (FIDO2) at 10:01.")
    assert not await store.save_check(taken, "b", NOW, result)
    assert await store.save_check(taken, "a", NOW, result)
    assert await _claim(store, "c", now=NOW + timedelta(minutes=3)) != []  # the other leases ran out
    watch = await store.pass_watch(taken)
    assert watch is not None and watch.state is WatchState.REGISTERED and watch.known_method_ids == {"x"}

    notices = await asyncio.gather(
        store.claim_notices("a", NOW, limit=10, lease_until=LEASE),
        store.claim_notices("b", NOW, limit=10, lease_until=LEASE),
    )
    assert sorted(len(claimed) for claimed in notices) == [0, 1]
    holder = "a" if notices[0] else "b"
    await store.release_notice(taken, holder)  # Teams refused: the next round tries again
    [again] = await store.claim_notices("b", NOW, limit=10, lease_until=LEASE)
    assert again.notice == result.notice
    assert await store.notice_delivered(taken, "b", NOW)
    assert not await store.notice_delivered(taken, "b", NOW)
    assert await store.claim_notices("a", NOW + timedelta(hours=1), limit=10, lease_until=LEASE) == []


async def test_recently_checked_and_not_yet_started_passes_wait(store: SqlStore) -> None:
    await store.save_pass_card(card("c1", "m1"))
    later = card("c2", "m2")
    await store.save_pass_card(
        PassCard(**{**later.__dict__, "start_at": NOW + timedelta(hours=1), "expires_at": NOW + timedelta(hours=3)})
    )
    await store.enroll_live_passes(NOW)
    [watch] = await _claim(store, "a")
    assert watch.pass_method_id == "m1" and watch.known_method_ids is None
    result = CheckResult(WatchState.WATCHING, frozenset({"auth-1", "fido-1"}), False)
    assert await store.save_check("m1", "a", NOW, result)
    assert await _claim(store, "a", now=NOW + timedelta(minutes=1)) == []
    [again] = await _claim(store, "a", now=NOW + timedelta(minutes=6))
    assert again.known_method_ids == {"auth-1", "fido-1"} and again.checked_at == NOW


async def _claim(store: SqlStore, holder: str, *, now: datetime = NOW, limit: int = 20) -> list[PassWatch]:
    return await store.claim_due_watches(
        holder, now, checked_before=now - timedelta(minutes=5), limit=limit, lease_until=now + timedelta(minutes=2)
    )
