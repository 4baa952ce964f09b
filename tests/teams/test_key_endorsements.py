"""The channel's signing keys' endorsements (bot/teams/trust.py KeyEndorsements): looked up once per key while
PyJWKClient would keep the key set they come from, then again; a key that cannot be read endorses nothing."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from jwt import PyJWK
from jwt.algorithms import RSAAlgorithm
from microsoft_agents.hosting.core.authorization.jwt import JwtTokenValidator

from bot.teams.trust import ENDORSEMENTS_KEPT, KeyEndorsements
from tests.harness.tokens import CHANNEL_ISSUER, CHANNEL_KEY, token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the channel's key set says of channel-key (its endorsements), and how often it was asked."""
    state: dict[str, Any] = {"endorsements": ["msteams"], "asked": 0}

    async def signing_key(jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        state["asked"] += 1
        if header.get("kid") != "channel-key":
            raise jwt.PyJWKClientError("no such key")
        jwk = RSAAlgorithm.to_jwk(CHANNEL_KEY.public_key(), as_dict=True)
        return PyJWK.from_dict({**jwk, "kid": "channel-key", "endorsements": state["endorsements"]})

    monkeypatch.setattr(JwtTokenValidator._jwk_client_manager, "get_signing_key", signing_key)
    return state


async def test_endorsements_are_kept_while_the_key_set_would_be_and_then_looked_up_again(
    published: dict[str, Any],
) -> None:
    clock = Clock()
    endorsements = KeyEndorsements(clock)
    signed = token()
    assert await endorsements.endorses(signed, CHANNEL_ISSUER, "msteams")
    clock.now += ENDORSEMENTS_KEPT - 1
    assert await endorsements.endorses(signed, CHANNEL_ISSUER, "msteams")
    assert not await endorsements.endorses(signed, CHANNEL_ISSUER, "webchat")
    assert published["asked"] == 1
    published["endorsements"] = ["webchat"]  # the channel no longer endorses the key for Teams
    clock.now += 2
    assert not await endorsements.endorses(signed, CHANNEL_ISSUER, "msteams")
    assert published["asked"] == 2
    clock.now -= 3600  # a clock that went back does not make an old look-up last
    assert not await endorsements.endorses(signed, CHANNEL_ISSUER, "msteams")
    assert published["asked"] == 3


async def test_a_key_that_cannot_be_read_endorses_nothing_and_is_asked_again(published: dict[str, Any]) -> None:
    endorsements = KeyEndorsements(Clock())
    unknown = token(kid="rotated-away")
    for _ in range(2):
        assert not await endorsements.endorses(unknown, CHANNEL_ISSUER, "msteams")
    assert published["asked"] == 2
    for damaged in (None, "", "not.a.token", token().replace(".", "", 1)):
        assert not await endorsements.endorses(damaged, CHANNEL_ISSUER, "msteams")
    assert not await endorsements.endorses(token(), "https://sts.windows.net/x/", "msteams")  # not the channel
    assert published["asked"] == 2
