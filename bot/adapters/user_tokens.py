"""Delegated Graph tokens of the people passes are written for (TAPBOT_GRAPH_WRITES=delegated), from the Bot
Framework token service through the bot's OAuth connection (``DelegatedTokens``).

The Azure Bot's OAuth connection does the on-behalf-of exchange of a person's Teams SSO token and keeps their refresh
token, so GetToken gives the bot a fresh Graph token for them at any time, inside their turn or not (a bulk run, a
confirmed verification). The bot calls the token service with the Agents SDK's ``UserTokenClient`` and its own
connector token (none when the sandbox runs without a registration).

Tokens live only in this process's memory, keyed by the person's object id, until five minutes before they expire,
and only while the person's ``sign_in_users`` row is the one they were cached under: ``/tap signout`` on any replica
deletes that row and a sign-in on another replica saves it anew, so every replica reads it (one SQL read per write)
and drops its cached token when the row has gone or changed. The database keeps how to ask for one (the person's
channel account id), never a token; nothing here logs, prints or raises a token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp
from microsoft_agents.activity import TokenResponse
from microsoft_agents.hosting.core.connector.client import UserTokenClient

from bot.domain.errors import GraphUnavailable, SignInRequired
from bot.domain.model import Caller
from bot.domain.ports import Clock, DelegatedToken

logger = logging.getLogger(__name__)

# A cached token is used until this long before it expires; later, a fresh one is asked for.
EXPIRY_MARGIN = timedelta(minutes=5)
TOKEN_SERVICE_TIMEOUT_SECONDS = 15.0
UNKNOWN_EXPIRY_LIFETIME = timedelta(minutes=10)  # a sign-in's token with no readable expiry is kept this long
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com"

BotToken = Callable[[], Awaitable[str]]


class SignInUsers(Protocol):
    """The part of the store this needs (``SignInWaits``' channel accounts)."""

    async def save_sign_in_user(self, user_id: str, channel_user_id: str, channel_id: str, at: datetime) -> None: ...

    async def sign_in_user(self, user_id: str) -> tuple[str, str] | None: ...

    async def signed_in_at(self, user_id: str) -> datetime | None:
        """When the person's row was last saved (their last sign-in); None when there is none (never signed in, or
        signed out since, on whichever replica)."""
        ...


class TokenServiceTokens:
    """``DelegatedTokens`` over the Bot Framework token service (GetToken), cached in memory per person."""

    def __init__(
        self,
        *,
        users: SignInUsers,
        connection: str,
        endpoint: str,
        app_id: str,
        bot_token: BotToken,
        clock: Clock,
        margin: timedelta = EXPIRY_MARGIN,
    ) -> None:
        self._users = users
        self._connection = connection
        self._endpoint = endpoint.rstrip("/") + "/"
        self._app_id = app_id
        self._bot_token = bot_token
        self._clock = clock
        self._margin = margin
        self._cache: dict[str, DelegatedToken] = {}
        self._since: dict[str, datetime] = {}  # the sign_in_users row's time each cached token was kept under
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"TokenServiceTokens(connection={self._connection!r}, cached={len(self._cache)})"

    @property
    def connection(self) -> str:
        """The OAuth connection's name (the edge's sign-in cards name it)."""
        return self._connection

    async def token_for(self, actor: Caller) -> DelegatedToken:
        user_id = actor.object_id.lower()
        async with self._locks.setdefault(user_id, asyncio.Lock()):  # one GetToken per person at a time
            since = await self._users.signed_in_at(user_id)
            cached = self._usable(user_id)
            if cached is not None and since is not None and self._since.get(user_id) == since:
                return cached
            self.forget(user_id)  # none, expiring, or kept before a sign-out or a newer sign-in (any replica)
            if since is None:
                raise SignInRequired(user_id)
            account = await self._users.sign_in_user(user_id)
            if account is None:
                raise SignInRequired(user_id)
            channel_user_id, channel_id = account
            response = await self._get_token(channel_user_id, channel_id)
            if response is None or not response.token:
                self._cache.pop(user_id, None)
                raise SignInRequired(user_id)
            if not _is_for(response.token, user_id):
                # The token service keeps what was signed in under this person's channel account, whoever signed in
                # at the page (a code read out by someone else): never act with another person's rights.
                logger.warning("the token service holds a token of someone else for %s; not used", user_id)
                self._cache.pop(user_id, None)
                raise SignInRequired(user_id)
            # Without a readable expiry the token serves this write and is not kept.
            expires_at = _expires_at(response.expiration, response.token) or self._clock.now()
            token = DelegatedToken(user_id, response.token, expires_at)
            self._cache[user_id] = token
            self._since[user_id] = since
            return token

    async def remember(
        self, actor: Caller, channel_user_id: str, channel_id: str, token: str, expiration: str | None
    ) -> bool:
        user_id = actor.object_id.lower()
        await self._users.save_sign_in_user(user_id, channel_user_id, channel_id, self._clock.now())
        if not token:
            return True
        if not _is_for(token, user_id):  # a sign-in by someone else (see token_for): not kept, so never used
            logger.warning("a sign-in for %s gave a token of someone else; not kept", user_id)
            self.forget(user_id)
            return False
        since = await self._users.signed_in_at(user_id)  # as stored: what token_for compares with
        if since is None:  # signed out meanwhile
            self.forget(user_id)
            return True
        expires_at = _expires_at(expiration, token) or self._clock.now() + UNKNOWN_EXPIRY_LIFETIME
        self._cache[user_id] = DelegatedToken(user_id, token, expires_at)
        self._since[user_id] = since
        return True

    def forget(self, user_id: str) -> None:
        self._cache.pop(user_id.lower(), None)
        self._since.pop(user_id.lower(), None)

    def _usable(self, user_id: str) -> DelegatedToken | None:
        token = self._cache.get(user_id)
        if token is None:
            return None
        if token.expires_at - self._margin <= self._clock.now():
            del self._cache[user_id]
            return None
        return token

    async def _get_token(self, channel_user_id: str, channel_id: str) -> TokenResponse | None:
        """GetToken for the person; None when the token service has no token for them (its 404)."""
        what = "get your Entra sign-in from the Bot Framework token service"
        try:
            bot_token = await self._bot_token()
        except Exception as error:  # MSAL and managed identity raise their own kinds; none may reach the person
            logger.warning("no bot token for the token service (%s)", type(error).__name__)
            raise _unavailable(what) from None
        session = aiohttp.ClientSession(
            base_url=self._endpoint, timeout=aiohttp.ClientTimeout(total=TOKEN_SERVICE_TIMEOUT_SECONDS)
        )
        try:
            client = UserTokenClient(self._endpoint, bot_token, app_id=self._app_id, session=session)
            response = await client.get_user_token(channel_user_id, self._connection, channel_id)
        except aiohttp.ClientResponseError as error:
            # Its message may carry the service's body: only the status is kept.
            logger.warning("the token service answered %s to GetToken", error.status)
            raise _unavailable(what, error.status) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            logger.warning("the token service could not be reached (%s)", type(error).__name__)
            raise _unavailable(what) from None
        finally:
            await session.close()
        return response if response.token else None


def _expires_at(expiration: str | None, token: str) -> datetime | None:
    """When the token ends: the token service's `expiration` (ISO 8601; without an offset, UTC), else the token's own
    `exp` (read, not verified: only to know how long to keep it); None when neither can be read."""
    if expiration:
        try:
            moment = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return _jwt_expiry(token)


def _jwt_claims(token: str) -> dict[str, object]:
    """The token's claims, read without verifying (Graph verifies it); empty when it is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _jwt_expiry(token: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(_jwt_claims(token)["exp"]), UTC)  # type: ignore[call-overload]
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def _is_for(token: str, user_id: str) -> bool:
    """Whether the Graph token is the person's own (its `oid`); deny by default when it cannot be read."""
    oid = _jwt_claims(token).get("oid")
    return isinstance(oid, str) and oid.strip().lower() == user_id


def _unavailable(what: str, status: int | None = None) -> GraphUnavailable:
    answered = f" (it answered {status})" if status else ""
    return GraphUnavailable(
        f"I could not {what}{answered}, so nothing was changed. Try again in a minute; if it keeps failing, an "
        "administrator can check the bot's OAuth connection with doctor."
    )


def bot_framework_token(connections: object | None) -> BotToken:
    """The bot's own token for the token service, from the Agents SDK's default connection; an empty token when
    there is no registration (the sandbox without one: its token service takes the bot on loopback as it is)."""

    async def token() -> str:
        if connections is None:
            return ""
        provider = connections.get_default_connection()  # type: ignore[attr-defined]
        return str(await provider.get_access_token(BOT_FRAMEWORK_SCOPE, [f"{BOT_FRAMEWORK_SCOPE}/.default"]))

    return token
