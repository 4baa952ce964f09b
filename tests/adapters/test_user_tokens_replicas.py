"""TokenServiceTokens of two replicas over one SQL store (SQLite) and one token service: `/tap signout` on one (the
person's sign_in_users row deleted) holds on the other at once, not when its cached token nears its end; a cache hit
costs one SQL read and no GetToken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.adapters.store import SqlStore
from bot.adapters.user_tokens import TokenServiceTokens
from bot.domain.errors import SignInRequired
from tests.adapters.test_user_tokens import ADELE, NOW, TOKEN, TokenService, service
from tests.fakes import FixedClock

__all__ = ["service"]  # the fixture

KEY = ("29:adele", "tapbot-graph", "msteams")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = SqlStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}")
    await opened.create_schema()
    try:
        yield opened
    finally:
        await opened.close()


def replica(endpoint: str, store: SqlStore, clock: FixedClock) -> TokenServiceTokens:
    async def bot() -> str:
        return ""

    return TokenServiceTokens(
        users=store, connection="tapbot-graph", endpoint=endpoint, app_id="app", bot_token=bot, clock=clock
    )


async def test_a_sign_out_on_one_replica_holds_on_the_other(service: tuple[TokenService, str], store: SqlStore) -> None:
    fake, endpoint = service
    fake.tokens[KEY] = (TOKEN, (NOW + timedelta(hours=1)).isoformat())
    clock = FixedClock(NOW)
    first, second = replica(endpoint, store, clock), replica(endpoint, store, clock)
    await first.remember(ADELE, "29:adele", "msteams", TOKEN, (NOW + timedelta(hours=1)).isoformat())
    assert (await first.token_for(ADELE)).value == TOKEN and fake.calls == []  # kept at the sign-in
    assert (await second.token_for(ADELE)).value == TOKEN and len(fake.calls) == 1
    assert (await second.token_for(ADELE)).value == TOKEN and len(fake.calls) == 1, "cached: no GetToken"

    # /tap signout on the first replica: the token service's session ends, then the row goes.
    del fake.tokens[KEY]
    first.forget(ADELE.object_id)
    await store.forget_sign_in_user(ADELE.object_id)

    for holder in (second, first):
        with pytest.raises(SignInRequired):
            await holder.token_for(ADELE)
    assert len(fake.calls) == 1, "no row: nothing to ask the token service for"


async def test_a_newer_sign_in_on_one_replica_replaces_the_others_cached_token(
    service: tuple[TokenService, str], store: SqlStore
) -> None:
    fake, endpoint = service
    fake.tokens[KEY] = (TOKEN, (NOW + timedelta(hours=1)).isoformat())
    clock = FixedClock(NOW)
    first, second = replica(endpoint, store, clock), replica(endpoint, store, clock)
    await store.save_sign_in_user("adele-id", "29:adele", "msteams", NOW - timedelta(minutes=1))
    await second.token_for(ADELE)
    assert len(fake.calls) == 1
    clock.advance(minutes=1)
    # signed out and in again
    await first.remember(ADELE, "29:adele", "msteams", TOKEN, (NOW + timedelta(hours=1)).isoformat())

    await second.token_for(ADELE)

    assert len(fake.calls) == 2, "the token cached before that sign-in is not used: asked again"
