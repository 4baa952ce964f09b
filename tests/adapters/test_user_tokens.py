"""TokenServiceTokens against a token service on a loopback port answering GetToken as the Bot Framework's does:
tokens cached per person until five minutes before they expire, 404 means a sign-in is needed, failures become a
sentence without the service's text, and no token ever reaches a repr, an error or a log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.adapters.user_tokens import TokenServiceTokens
from bot.domain.errors import GraphUnavailable, SignInRequired
from bot.domain.model import Caller
from tests.fakes import FixedClock

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ADELE = Caller(object_id="Adele-Id", tenant_id="t", display_name="Adele Vance")
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJvaWQiOiJhZGVsZS1pZCJ9.graph-token-for-adele-signature"  # claims: oid adele-id


@dataclass
class TokenService:
    """GetToken answered from `tokens` ((user, connection, channel) -> token, expiration); `status` forces one."""

    tokens: dict[tuple[str, str, str], tuple[str, str | None]] = field(default_factory=dict)
    status: int | None = None
    calls: list[dict[str, str]] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)

    async def get_token(self, request: web.Request) -> web.Response:
        self.calls.append(dict(request.query))
        self.authorization.append(request.headers.get("Authorization"))
        if self.status is not None:
            return web.json_response(
                {"error": {"code": "ServiceError", "message": "internal detail xyz"}}, status=self.status
            )
        key = (request.query["userId"], request.query["connectionName"], request.query["channelId"])
        if key not in self.tokens:
            return web.Response(status=404)
        token, expiration = self.tokens[key]
        body = {"connectionName": key[1], "token": token, "channelId": key[2]}
        if expiration is not None:
            body["expiration"] = expiration
        return web.json_response(body)


SAVED_AT = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # when every saved account was saved (rows, in SQL)


@dataclass
class MemoryUsers:
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def save_sign_in_user(self, user_id: str, channel_user_id: str, channel_id: str, at: datetime) -> None:
        self.accounts[user_id] = (channel_user_id, channel_id)

    async def sign_in_user(self, user_id: str) -> tuple[str, str] | None:
        return self.accounts.get(user_id)

    async def signed_in_at(self, user_id: str) -> datetime | None:
        return SAVED_AT if user_id in self.accounts else None


@pytest.fixture
async def service() -> AsyncIterator[tuple[TokenService, str]]:
    fake = TokenService()
    app = web.Application()
    app.router.add_get("/api/usertoken/GetToken", fake.get_token)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/"))
    finally:
        await server.close()


def tokens(endpoint: str, users: MemoryUsers, clock: FixedClock, *, bot_token: str = "") -> TokenServiceTokens:
    async def bot() -> str:
        return bot_token

    return TokenServiceTokens(
        users=users, connection="tapbot-graph", endpoint=endpoint, app_id="app", bot_token=bot, clock=clock
    )


async def test_a_person_never_signed_in_needs_to_sign_in_and_nothing_is_asked(
    service: tuple[TokenService, str],
) -> None:
    fake, endpoint = service
    with pytest.raises(SignInRequired) as caught:
        await tokens(endpoint, MemoryUsers(), FixedClock(NOW)).token_for(ADELE)
    assert caught.value.user_id == "adele-id" and "Sign in to tapbot" in caught.value.user_message
    assert fake.calls == []


async def test_the_token_service_404_means_sign_in(service: tuple[TokenService, str]) -> None:
    fake, endpoint = service
    users = MemoryUsers({"adele-id": ("29:adele", "msteams")})
    with pytest.raises(SignInRequired):
        await tokens(endpoint, users, FixedClock(NOW)).token_for(ADELE)
    assert fake.calls == [{"userId": "29:adele", "connectionName": "tapbot-graph", "channelId": "msteams"}]


async def test_a_token_is_asked_once_and_kept_until_five_minutes_before_it_expires(
    service: tuple[TokenService, str],
) -> None:
    fake, endpoint = service
    fake.tokens[("29:adele", "tapbot-graph", "msteams")] = (TOKEN, (NOW + timedelta(hours=1)).isoformat())
    clock = FixedClock(NOW)
    holder = tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), clock, bot_token="bot-jwt")
    first = await holder.token_for(ADELE)
    assert first.value == TOKEN and first.expires_at == NOW + timedelta(hours=1)
    clock.advance(minutes=54)
    assert (await holder.token_for(ADELE)).value == TOKEN
    assert len(fake.calls) == 1 and fake.authorization == ["Bearer bot-jwt"]
    clock.advance(minutes=1, seconds=1)  # within five minutes of its end: asked again
    await holder.token_for(ADELE)
    assert len(fake.calls) == 2


async def test_forget_drops_the_cached_token(service: tuple[TokenService, str]) -> None:
    fake, endpoint = service
    fake.tokens[("29:adele", "tapbot-graph", "msteams")] = (TOKEN, (NOW + timedelta(hours=1)).isoformat())
    holder = tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW))
    await holder.token_for(ADELE)
    holder.forget("ADELE-ID")
    await holder.token_for(ADELE)
    assert len(fake.calls) == 2
    assert fake.authorization == [None, None], "anonymous: no bot token sent"


async def test_remember_keeps_the_token_in_memory_and_only_the_channel_account_in_the_store(
    service: tuple[TokenService, str],
) -> None:
    fake, endpoint = service
    users = MemoryUsers()
    holder = tokens(endpoint, users, FixedClock(NOW))
    assert await holder.remember(ADELE, "29:adele", "msteams", TOKEN, (NOW + timedelta(hours=1)).isoformat())
    assert users.accounts == {"adele-id": ("29:adele", "msteams")}
    assert (await holder.token_for(ADELE)).value == TOKEN and fake.calls == []


async def test_without_an_expiration_the_tokens_own_exp_says_how_long_to_keep_it(
    service: tuple[TokenService, str],
) -> None:
    import base64
    import json

    expiry = int((NOW + timedelta(minutes=30)).timestamp())
    claims = base64.urlsafe_b64encode(json.dumps({"oid": "adele-id", "exp": expiry}).encode())
    jwt = "eyJhbGciOiJub25lIn0." + claims.decode().rstrip("=") + ".sig"
    fake, endpoint = service
    fake.tokens[("29:adele", "tapbot-graph", "msteams")] = (jwt, None)
    holder = tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW))
    assert (await holder.token_for(ADELE)).expires_at == NOW + timedelta(minutes=30)


@pytest.mark.parametrize("status", [500, 503, 401])
async def test_a_failing_token_service_gives_a_sentence_without_its_text(
    service: tuple[TokenService, str], status: int
) -> None:
    fake, endpoint = service
    fake.status = status
    with pytest.raises(GraphUnavailable) as caught:
        await tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW)).token_for(ADELE)
    assert f"(it answered {status})" in caught.value.user_message and "nothing was changed" in caught.value.user_message
    assert "internal detail" not in caught.value.user_message


async def test_an_unreachable_token_service_gives_a_sentence() -> None:
    holder = tokens("http://127.0.0.1:9/", MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW))
    with pytest.raises(GraphUnavailable, match="Bot Framework token service"):
        await holder.token_for(ADELE)


async def test_no_token_in_a_repr_or_a_log(service: tuple[TokenService, str], caplog: pytest.LogCaptureFixture) -> None:
    fake, endpoint = service
    fake.tokens[("29:adele", "tapbot-graph", "msteams")] = (TOKEN, (NOW + timedelta(hours=1)).isoformat())
    holder = tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW))
    with caplog.at_level(logging.DEBUG):
        token = await holder.token_for(ADELE)
        holder.forget("adele-id")
        fake.status = 500
        with pytest.raises(GraphUnavailable):
            await holder.token_for(ADELE)
    assert TOKEN not in repr(token) and TOKEN not in str(token) and TOKEN not in repr(holder)
    assert TOKEN not in caplog.text and "internal detail" not in caplog.text
