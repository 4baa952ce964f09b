"""Bearer tokens for the authenticated mode, signed with test keys that stand in for the real signers.

The SDK fetches signing keys by the token's issuer: the Bot Framework channel's keys
(login.botframework.com/v1/.well-known/keys, each key listing the channels it is endorsed for) or the bot's own
Entra tenant's keys (login.microsoftonline.com/<tenant>/discovery/v2.0/keys). `install_test_keys` answers both
look-ups with local keys, so a test can sign as the channel, as the bot's tenant, or with a key nobody publishes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from jwt.algorithms import RSAAlgorithm
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core.authorization.jwt import JwtTokenValidator

from bot.settings import BOT_CONNECTION_PREFIX
from tests.harness.bot import TENANT_ID

APP_ID = "0b7e6f7a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
CHANNEL_ISSUER = "https://api.botframework.com"
TENANT_V2_ISSUER = f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
TENANT_V1_ISSUER = f"https://sts.windows.net/{TENANT_ID}/"
GOV_CHANNEL_ISSUER = "https://api.botframework.us"
CHANNEL_KEYS_URIS = (
    "https://login.botframework.com/v1/.well-known/keys",
    "https://login.botframework.azure.us/v1/.well-known/keys",
)

CHANNEL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # endorsed for msteams
UNENDORSED_CHANNEL_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # endorsed for webchat only
TENANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the bot's own Entra tenant
FOREIGN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # published nowhere

_KIDS = {id(CHANNEL_KEY): "channel-key", id(UNENDORSED_CHANNEL_KEY): "webchat-key", id(TENANT_KEY): "tenant-key"}


def registered_env(**extra: str) -> dict[str, str]:
    """The settings of a bot registration (app id, tenant, a secret the stubbed token provider never uses)."""
    return {
        BOT_CONNECTION_PREFIX + "CLIENTID": APP_ID,
        BOT_CONNECTION_PREFIX + "TENANTID": TENANT_ID,
        BOT_CONNECTION_PREFIX + "CLIENTSECRET": "not-a-real-secret",
        **extra,
    }


def token(
    *,
    key: Any = CHANNEL_KEY,
    audience: str = APP_ID,
    issuer: str = CHANNEL_ISSUER,
    kid: str | None = None,
    **claims: Any,
) -> str:
    """A signed JWT; claims given as None are left out."""
    now = int(time.time())
    payload = {"aud": audience, "iss": issuer, "iat": now, "nbf": now, "exp": now + 600, **claims}
    payload = {name: value for name, value in payload.items() if value is not None}
    header_kid = kid or _KIDS.get(id(key), "channel-key")
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": header_kid})


def signed_payload(payload: dict[str, Any], *, key: Any = CHANNEL_KEY, kid: str = "channel-key") -> str:
    """A JWT over any JSON payload, claims of the wrong type included (PyJWT's encoder refuses those)."""
    return jwt.api_jws.PyJWS().encode(json.dumps(payload).encode(), key, algorithm="RS256", headers={"kid": kid})


def bearer(**options: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(**options)}"}


def _public(key: Any, kid: str, **extra: Any) -> PyJWK:
    return PyJWK.from_dict({**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, **extra})


def install_test_keys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Answers the SDK's key look-ups with the test keys (its own tests patch the same place); stubs the outbound
    token. Returns the list of key-set addresses looked up, so a test can see which signer was asked."""
    channel_keys = {
        "channel-key": _public(CHANNEL_KEY, "channel-key", endorsements=["msteams", "webchat"]),
        "webchat-key": _public(UNENDORSED_CHANNEL_KEY, "webchat-key", endorsements=["webchat"]),
    }
    tenant_keys = {"tenant-key": _public(TENANT_KEY, "tenant-key")}
    asked: list[str] = []

    async def signing_key(jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        asked.append(jwks_uri)
        keys = channel_keys if jwks_uri in CHANNEL_KEYS_URIS else tenant_keys
        found = keys.get(str(header.get("kid")))
        if found is None:
            raise jwt.PyJWKClientError(f"no key {header.get('kid')} at {jwks_uri}")
        return found

    async def outbound_token(*_args: Any, **_kwargs: Any) -> str:
        return "outbound-test-token"

    monkeypatch.setattr(JwtTokenValidator._jwk_client_manager, "get_signing_key", signing_key)
    monkeypatch.setattr(MsalAuth, "get_access_token", outbound_token)
    return asked
