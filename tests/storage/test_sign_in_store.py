"""Delegated writes' sign-in bookkeeping in SQL, on SQLite and PostgreSQL: waits taken once and only before they
expire, renewed rather than doubled, dropped; each person's channel account; no column that could hold a token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from bot.adapters.store import SqlStore
from bot.adapters.store.schema import Base
from bot.domain.records import SignInWait, SignInWaitKind

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)


def wait(user: str, kind: SignInWaitKind, ref: str, *, at: datetime = NOW) -> SignInWait:
    return SignInWait(user_id=user, kind=kind, ref=ref, created_at=at, expires_at=at + TEN_MINUTES)


async def test_waits_are_taken_once_oldest_first_and_only_the_users_own(store: SqlStore) -> None:
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.COMMAND, "/tap issue megan@contoso.com 1h"))
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.BULK, "42", at=NOW + timedelta(seconds=1)))
    await store.save_sign_in_wait(wait("diego", SignInWaitKind.APPROVAL, "request-1"))
    taken = await store.take_sign_in_waits("ADELE", NOW + timedelta(minutes=1))
    assert [(item.kind, item.ref) for item in taken] == [
        (SignInWaitKind.COMMAND, "/tap issue megan@contoso.com 1h"),
        (SignInWaitKind.BULK, "42"),
    ]
    assert taken[0].expires_at == NOW + TEN_MINUTES and taken[0].created_at == NOW
    assert await store.take_sign_in_waits("adele", NOW + timedelta(minutes=1)) == []
    assert [item.ref for item in await store.take_sign_in_waits("diego", NOW)] == ["request-1"]


async def test_an_expired_wait_is_never_taken(store: SqlStore) -> None:
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.VERIFICATION, "v-1"))
    assert await store.take_sign_in_waits("adele", NOW + TEN_MINUTES) == []


async def test_saving_the_same_action_again_renews_it_instead_of_doubling_it(store: SqlStore) -> None:
    long_command = "/tap issue megan@contoso.com 8h reason " + "é" * 3000  # longer than any index entry may be
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.COMMAND, long_command))
    assert len(await store.take_sign_in_waits("adele", NOW)) == 1
    later = NOW + timedelta(minutes=30)
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.COMMAND, long_command, at=later))
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.COMMAND, long_command, at=later))
    taken = await store.take_sign_in_waits("adele", later + timedelta(minutes=9))
    assert [(item.ref, item.created_at) for item in taken] == [(long_command, later)], "a consumed wait comes back"


async def test_two_replicas_taking_at_once_never_both_get_a_wait(store: SqlStore) -> None:
    for job in range(5):
        await store.save_sign_in_wait(wait("adele", SignInWaitKind.BULK, str(job)))
    first, second = await asyncio.gather(store.take_sign_in_waits("adele", NOW), store.take_sign_in_waits("adele", NOW))
    refs = [item.ref for item in first + second]
    assert sorted(refs) == ["0", "1", "2", "3", "4"]


async def test_a_dropped_wait_is_gone(store: SqlStore) -> None:
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.BULK, "7"))
    await store.save_sign_in_wait(wait("adele", SignInWaitKind.BULK, "8"))
    await store.drop_sign_in_waits("adele", SignInWaitKind.BULK, "7")
    await store.drop_sign_in_waits("adele", SignInWaitKind.COMMAND, "8")  # another kind: kept
    assert [item.ref for item in await store.take_sign_in_waits("adele", NOW)] == ["8"]


async def test_the_channel_account_of_each_person_is_kept_and_replaced(store: SqlStore) -> None:
    assert await store.sign_in_user("adele") is None
    await store.save_sign_in_user("Adele", "29:old", "msteams", NOW)
    await store.save_sign_in_user("adele", "29:new", "msteams", NOW + timedelta(minutes=1))
    assert await store.sign_in_user("ADELE") == ("29:new", "msteams")


def test_no_sign_in_table_has_a_column_for_a_token() -> None:
    for name in ("sign_in_users", "sign_in_waits"):
        columns = {column.name for column in Base.metadata.tables[name].columns}
        assert not {column for column in columns if "token" in column or "secret" in column}, name
    assert inspect(Base.metadata.tables["sign_in_waits"]).c.ref.type.python_type is str
