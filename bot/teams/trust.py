"""Whom the bot believes: tokens the Bot Framework channel issued for this bot, and connector hosts on an allow-list.

An activity names the address its replies go to (`serviceUrl`). The bot sends there with its own outbound token, and
pass cards go there, so the address is trusted only when the channel's token vouches for it (the `serviceurl` claim,
required) and its host is one of Teams' connector hosts (`TAPBOT_CONNECTOR_HOSTS`). Only tokens issued by the channel
itself (issuer `https://api.botframework.com`, or `.us` in the US government clouds, signed with a key the channel's
OpenID metadata endorses for Teams) count: a token that the bot's own Entra tenant issued for the bot's app id is
obtainable by other app registrations of that tenant and proves nothing about Teams.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp
import jwt
from microsoft_agents.hosting.core.authorization import AuthenticationConstants
from microsoft_agents.hosting.core.authorization.jwt import JwtTokenValidator
from yarl import URL

logger = logging.getLogger(__name__)

TEAMS_CHANNEL_ID = "msteams"
PUBLIC_CHANNEL_ISSUER = AuthenticationConstants.AGENTS_SDK_TOKEN_ISSUER  # https://api.botframework.com
GOV_CHANNEL_ISSUER = AuthenticationConstants.GOV_AGENTS_SDK_TOKEN_ISSUER  # https://api.botframework.us
# The channel's signing keys (its OpenID metadata's jwks_uri, where the SDK fetches them for these issuers),
# never the tenant's login.microsoftonline.com keys.
CHANNEL_KEYS = {
    PUBLIC_CHANNEL_ISSUER: AuthenticationConstants.PUBLIC_ABS_JWKS_URL,
    GOV_CHANNEL_ISSUER: AuthenticationConstants.GOV_ABS_JWKS_URL,
}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_URL_LENGTH = 2048
ENDORSEMENTS_KEPT = 300.0  # seconds: PyJWKClient's default lifespan of the key set it fetched
ENDORSEMENTS_KEYS_KEPT = 64


class UntrustedServiceUrl(aiohttp.ClientConnectionError):
    """An outgoing connector call was about to go to an address that is not an allowed connector host.

    A connection error to the callers: a pass whose card cannot be delivered is revoked, as when Teams is down.
    """


class ConnectorHosts:
    """The hosts the bot talks to as Teams' Bot Connector: https on an allowed host; plain http only on loopback,
    and only in the unauthenticated sandbox mode (any loopback port) or for a loopback host:port listed explicitly."""

    def __init__(self, patterns: Iterable[str], *, any_loopback: bool = False) -> None:
        self._patterns = tuple(pattern.lower() for pattern in patterns)
        self._any_loopback = any_loopback

    def allows(self, url: object) -> bool:
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            return False
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return False
        host = (parsed.host or "").lower()
        if not parsed.absolute or not host or parsed.user or parsed.password or parsed.fragment:
            return False
        authority = f"{host}:{parsed.port}"
        bracketed = f"[{host}]:{parsed.port}" if ":" in host else authority
        listed = any(
            pattern in (authority, bracketed) or (":" not in pattern and fnmatch.fnmatchcase(host, pattern))
            for pattern in self._patterns
        )
        if host in LOOPBACK_HOSTS:
            if parsed.scheme not in ("http", "https"):
                return False
            return self._any_loopback or any(pattern in (authority, bracketed) for pattern in self._patterns)
        return parsed.scheme == "https" and listed


def channel_issuers(authority: str | None) -> frozenset[str]:
    """The channel issuer of the bot's cloud: the US government one when the bot signs in at
    login.microsoftonline.us (GCC High, DoD)."""
    if authority and "login.microsoftonline.us" in authority.lower():
        return frozenset({GOV_CHANNEL_ISSUER})
    return frozenset({PUBLIC_CHANNEL_ISSUER})


def unverified_issuer(authorization: str | None) -> str | None:
    """The `iss` of a bearer token, read without checking anything: only to refuse foreign tokens before any key
    is fetched for them. The verified claims are checked again by `token_refusal`; a token that reads here but
    is not well formed is refused by the SDK's validation before it fetches a key."""
    parts = (authorization or "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    payload = _unverified_segment(parts[1], 1)
    issuer = payload.get("iss") if payload is not None else None
    return issuer if isinstance(issuer, str) else None


def _unverified_segment(token: str, index: int) -> dict[str, Any] | None:
    """The JSON object in a compact JWT's header (0) or payload (1), decoded without any check. PyJWT's own read
    checks each character of every segment in a Python loop (~0.1 ms for a Bot Framework token), and the SDK
    reads each token three times with it already."""
    segments = token.split(".")
    if len(segments) != 3:
        return None
    segment = segments[index]
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return value if isinstance(value, dict) else None


async def token_refusal(
    claims: Mapping[str, Any],
    token: str | None,
    activity: Mapping[str, Any],
    *,
    app_id: str,
    issuers: frozenset[str],
    endorsements: KeyEndorsements,
) -> str | None:
    """Why a signature-checked token does not authorise this activity (for the log), or None when it does."""
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        return "the token was not issued by the Bot Framework channel"
    audience = claims.get("aud")
    if not isinstance(audience, str) or audience.lower() != app_id.lower():
        return "the token is for another app"
    vouched = claims.get("serviceurl")
    if not isinstance(vouched, str) or not vouched:
        return "the token names no service URL"
    if not same_service_url(vouched, activity.get("serviceUrl")):
        return "the token was issued for another service URL"
    channel = activity.get("channelId")
    if channel != TEAMS_CHANNEL_ID:
        return "the activity does not come from Teams"
    if not await endorsements.endorses(token, issuer, channel):
        return "the signing key is not endorsed for Teams"
    return None


def same_service_url(one: object, other: object) -> bool:
    if not isinstance(one, str) or not isinstance(other, str):
        return False
    return one.rstrip("/").lower() == other.rstrip("/").lower()


class KeyEndorsements:
    """The channels each of the channel's signing keys may sign for (its `endorsements`, the Bot Connector
    authentication spec), by key set and key id. The SDK verified the token's signature with the key; it does not
    look at its endorsements. A key's are looked up (a trip to a worker thread, as the SDK's own look-up of the key,
    ~0.1 ms of CPU) once per ENDORSEMENTS_KEPT: PyJWKClient keeps the key set they come from as long."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: dict[tuple[str, str], tuple[frozenset[str], float]] = {}

    async def endorses(self, token: str | None, issuer: str, channel: str) -> bool:
        # The SDK checked the token's signature, which covers its header: read here without PyJWT's checks again.
        header = _unverified_segment(token, 0) if token else None
        kid = header.get("kid") if header is not None else None
        if header is None or not isinstance(kid, str) or issuer not in CHANNEL_KEYS:
            return False
        place = (CHANNEL_KEYS[issuer], kid)
        now = self._clock()
        known = self._known.get(place)
        if known is None or not 0 <= now - known[1] < ENDORSEMENTS_KEPT:
            endorsements = await _endorsements(place[0], header)
            if endorsements is None:
                return False
            known = (endorsements, now)
            self._known.pop(place, None)
            self._known[place] = known
            if len(self._known) > ENDORSEMENTS_KEYS_KEPT:
                del self._known[next(iter(self._known))]  # the one looked up longest ago
        return channel in known[0]


async def _endorsements(jwks_uri: str, header: dict[str, Any]) -> frozenset[str] | None:
    try:
        key = await JwtTokenValidator._jwk_client_manager.get_signing_key(jwks_uri, header)
    except (jwt.PyJWTError, KeyError, ValueError) as error:
        logger.warning("could not read the channel's signing key: %s", type(error).__name__)
        return None
    data = getattr(key, "_jwk_data", None)
    endorsements = data.get("endorsements") if isinstance(data, dict) else None
    if not isinstance(endorsements, list):
        return frozenset()
    return frozenset(channel for channel in endorsements if isinstance(channel, str))
