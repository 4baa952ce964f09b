"""Security review of delegated writes (issue 14): a Graph token is used only for the person it was issued to (its
`oid`), whether it comes from a sign-in (`remember`) or from the token service later (`token_for`)."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import pytest

from bot.adapters.user_tokens import TokenServiceTokens
from bot.domain.errors import SignInRequired
from tests.adapters.test_user_tokens import ADELE, NOW, MemoryUsers, TokenService, service, tokens
from tests.fakes import FixedClock

__all__ = ["service"]  # the fixture, imported for these tests


def graph_token(**claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJ0eXAiOiJKV1QifQ.{body}.signature-of-a-graph-token"


ALEX_TOKEN = graph_token(oid="alex-id", tid="t")


async def test_a_sign_in_that_gave_someone_elses_token_is_not_kept(
    service: tuple[TokenService, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, endpoint = service
    users = MemoryUsers()
    holder = tokens(endpoint, users, FixedClock(NOW))
    with caplog.at_level(logging.DEBUG):
        assert not await holder.remember(
            ADELE, "29:adele", "msteams", ALEX_TOKEN, (NOW + timedelta(hours=1)).isoformat()
        )
        with pytest.raises(SignInRequired):  # the token service holds nothing for her: no token of hers anywhere
            await holder.token_for(ADELE)
    assert ALEX_TOKEN not in caplog.text


@pytest.mark.parametrize(
    "token",
    [ALEX_TOKEN, graph_token(tid="t"), graph_token(oid=["adele-id"]), "opaque-token-nobody-can-read"],
    ids=["another-person", "no-oid", "oid-not-text", "not-a-jwt"],
)
async def test_the_token_service_giving_a_token_that_is_not_hers_is_never_used(
    service: tuple[TokenService, str], token: str
) -> None:
    fake, endpoint = service
    fake.tokens[("29:adele", "tapbot-graph", "msteams")] = (token, (NOW + timedelta(hours=1)).isoformat())
    holder: TokenServiceTokens = tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW))
    with pytest.raises(SignInRequired):
        await holder.token_for(ADELE)
    with pytest.raises(SignInRequired):  # nothing cached either
        await holder.token_for(ADELE)
    assert len(fake.calls) == 2


async def test_her_own_token_is_kept_whatever_the_case_of_its_oid(service: tuple[TokenService, str]) -> None:
    fake, endpoint = service
    token = graph_token(oid="ADELE-ID")
    fake.tokens[("29:adele", "tapbot-graph", "msteams")] = (token, (NOW + timedelta(hours=1)).isoformat())
    holder = tokens(endpoint, MemoryUsers({"adele-id": ("29:adele", "msteams")}), FixedClock(NOW))
    assert (await holder.token_for(ADELE)).value == token
