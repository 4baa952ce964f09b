"""tapbot's own read of a bearer token's issuer (the pre-check before any key is fetched, bot/teams/trust.py) gives
what PyJWT's read gives wherever PyJWT reads one; a token only it reads is refused by the SDK's validation."""

from __future__ import annotations

import random

import jwt

from bot.teams.trust import unverified_issuer
from tests.harness.tokens import CHANNEL_ISSUER, TENANT_V2_ISSUER, token


def pyjwt_issuer(authorization: str) -> str | None:
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    try:
        issuer = jwt.decode(parts[1], options={"verify_signature": False}).get("iss")
    except (jwt.PyJWTError, ValueError, AttributeError):
        return None
    return issuer if isinstance(issuer, str) else None


def test_the_issuer_of_a_well_formed_token_reads_as_pyjwt_reads_it() -> None:
    for issuer in (CHANNEL_ISSUER, TENANT_V2_ISSUER, "https://api.botframework.us", "x" * 300):
        header = f"Bearer {token(issuer=issuer, serviceurl='https://smba.trafficmanager.net/emea/')}"
        assert unverified_issuer(header) == pyjwt_issuer(header) == issuer
    assert unverified_issuer(f"Bearer {jwt.encode({'aud': 'x'}, 'k' * 32, algorithm='HS256')}") is None
    for header in (None, "", "Bearer", "Basic abc", f"bearer  {token()}", f"Bearer {token()} extra"):
        assert unverified_issuer(header) == pyjwt_issuer(header or "")


def test_damaged_tokens_read_as_pyjwt_reads_them_wherever_it_reads_an_issuer() -> None:
    chooser = random.Random(13)
    original = token(serviceurl="https://smba.trafficmanager.net/emea/")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/! "
    for _ in range(3000):
        damaged = list(original)
        for _ in range(chooser.randint(1, 4)):
            damaged[chooser.randrange(len(damaged))] = chooser.choice(alphabet)
        header = "Bearer " + "".join(damaged)
        ours, theirs = unverified_issuer(header), pyjwt_issuer(header)
        if theirs is not None:
            assert ours == theirs, header
