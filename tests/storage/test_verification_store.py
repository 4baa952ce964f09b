"""Verifications of the person in SQL: one winner per state change, consumed once by the right write, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.adapters.store import SqlStore
from bot.domain.model import Recipient
from bot.domain.verification import (
    OPEN_STATES,
    Verification,
    VerificationKind,
    VerificationMethod,
    VerificationPrompt,
    VerificationState,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ADELE = "884f0a7d-eeec-4d58-b136-0634982d6c8f"
LYNNE = "41a3d674-7ed6-42bc-a472-7908b573fff3"
PENDING = frozenset({VerificationState.PENDING})


def verification(verification_id: str = "3a1b2c3d-0000-4000-8000-000000000001") -> Verification:
    return Verification(
        id=verification_id,
        kind=VerificationKind.ISSUE,
        method=VerificationMethod.MANAGER,
        state=VerificationState.PENDING,
        requester=Recipient(ADELE, "tenant", "Adele Vance", f"29:{ADELE}", "https://smba.example/", "28:bot"),
        target_id=LYNNE,
        target_label="Lynne Robbins",
        lifetime_minutes=120,
        one_time=False,
        start_at=None,
        replace=True,
        replace_method_id="m-1",
        reason="INC0012345",
        attester_ids=("a16c0c60-bbb6-433c-b4da-464eebbc0e8b", "28c973a3-ff36-4c20-a78a-2b5e9b96e2b5"),
        attester_label="Diego Siciliani (manager)",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        timezone="Europe/Berlin",
    )


async def confirmed(store: SqlStore, item: Verification) -> None:
    await store.save_verification(item)
    assert await store.settle_verification(
        item.id,
        from_states=PENDING,
        to=VerificationState.CONFIRMED,
        at=NOW,
        by_id="diego",
        by="Diego Siciliani (manager)",
        expires_at=NOW + timedelta(minutes=15),
    )


async def test_saved_and_read_back_as_it_was(store: SqlStore) -> None:
    await store.save_verification(verification())
    assert await store.verification(verification().id) == verification()
    assert await store.verification("00000000-0000-4000-8000-000000000000") is None


async def test_exactly_one_answer_wins(store: SqlStore) -> None:
    item = verification()
    await store.save_verification(item)
    answers = await asyncio.gather(
        *(
            store.settle_verification(
                item.id, from_states=PENDING, to=state, at=NOW, by_id=f"p-{n}", by=f"person {n}", detail="answer"
            )
            for n, state in enumerate([VerificationState.CONFIRMED, VerificationState.REFUSED] * 3)
        )
    )
    assert answers.count(True) == 1
    settled = await store.verification(item.id)
    assert settled is not None and settled.state in (VerificationState.CONFIRMED, VerificationState.REFUSED)


async def test_taken_only_by_its_own_write_and_only_once(store: SqlStore) -> None:
    item = verification()
    await confirmed(store, item)

    async def take(**changes: object) -> bool:
        values: dict[str, object] = {
            "requester_id": ADELE.upper(),
            "target_id": LYNNE,
            "kind": "issue",
            "now": NOW + timedelta(minutes=1),
            "token": "t-1",
        }
        values.update(changes)
        return await store.take_verification(item.id, **values)  # type: ignore[arg-type]

    assert not await take(requester_id="someone-else")
    assert not await take(target_id="another-user")
    assert not await take(kind="onboard")
    assert not await take(now=NOW + timedelta(minutes=15))  # its deadline
    takes = await asyncio.gather(*(take(token=f"t-{n}") for n in range(5)))
    assert takes.count(True) == 1
    used = await store.verification(item.id)
    assert used is not None and used.state is VerificationState.USED and (used.used_for or "").startswith("t-")


async def test_a_failed_write_gives_it_back_and_a_finished_one_binds_it(store: SqlStore) -> None:
    item = verification()
    await confirmed(store, item)
    later = NOW + timedelta(minutes=1)
    assert await store.take_verification(
        item.id, requester_id=ADELE, target_id=LYNNE, kind="issue", now=later, token="t-1"
    )
    await store.release_verification(item.id, "other-token")  # not the taker's: nothing happens
    assert (await store.verification(item.id)).state is VerificationState.USED  # type: ignore[union-attr]
    await store.release_verification(item.id, "t-1")
    assert (await store.verification(item.id)).state is VerificationState.CONFIRMED  # type: ignore[union-attr]
    assert await store.take_verification(
        item.id, requester_id=ADELE, target_id=LYNNE, kind="issue", now=later, token="t-2"
    )
    await store.finish_verification_use(item.id, "t-2", "pass-method-1")
    used = await store.verification(item.id)
    assert used is not None and used.used_for == "pass-method-1"
    await store.release_verification(item.id, "t-2")  # bound: the token no longer names it
    assert (await store.verification(item.id)).state is VerificationState.USED  # type: ignore[union-attr]


async def test_overdue_lists_open_ones_past_their_deadline(store: SqlStore) -> None:
    due = verification("3a1b2c3d-0000-4000-8000-000000000001")
    later = replace(verification("3a1b2c3d-0000-4000-8000-000000000002"), expires_at=NOW + timedelta(hours=1))
    done = verification("3a1b2c3d-0000-4000-8000-000000000003")
    for item in (due, later, done):
        await store.save_verification(item)
    await store.settle_verification(done.id, from_states=OPEN_STATES, to=VerificationState.CANCELLED, at=NOW)
    overdue = await store.overdue_verifications(NOW + timedelta(minutes=20))
    assert [item.id for item in overdue] == [due.id]


async def test_progress_only_while_pending_and_cards_and_prompts_are_kept(store: SqlStore) -> None:
    item = verification()
    await store.save_verification(item)
    assert await store.set_verification_progress(item.id, "scanned")
    await store.set_verification_card(item.id, "https://smba.example/", "a:chat", "msg-1")
    await store.set_verification_external(item.id, "state-1", "openid-vc://?request_uri=x")
    prompt = VerificationPrompt(item.id, "a16c0c60-bbb6-433c-b4da-464eebbc0e8b", "https://smba.example/", "a:d", "m-2")
    await store.add_verification_prompt(prompt)
    stored = await store.verification(item.id)
    assert stored is not None and (stored.progress, stored.card_activity_id, stored.external_ref) == (
        "scanned",
        "msg-1",
        "state-1",
    )
    assert await store.verification_prompts(item.id) == [prompt]
    await store.settle_verification(item.id, from_states=PENDING, to=VerificationState.EXPIRED, at=NOW)
    assert not await store.set_verification_progress(item.id, "scanned")
