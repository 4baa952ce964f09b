"""The sandbox's sign-in side (issue 14, delegated mode): the Bot Framework token service and Entra's on-behalf-of.

What it emulates (facts and sources in docs/sandbox.md, "Sign-in and on-behalf-of"):
- **Teams SSO tokens**: what a Teams client hands the bot in `signin/tokenExchange` (test drivers mint them with
  :meth:`SandboxIdentity.teams_sso_token`).
- **The token service** of the bot's OAuth connection (AAD v2, Token Exchange URL = the App ID URI): it exchanges a
  Teams SSO token for a Graph token by on-behalf-of with the connection's own client, keeps a session per (channel
  user id, connection, channel) and hands out a fresh Graph token from it while it lives; when silent exchange is not
  possible, a sign-in link whose page gives a 6-digit magic code.
- **Entra's on-behalf-of grant**: the same checks and answers whether the token service calls it or a client posts
  the form to `/{tenant}/oauth2/v2.0/token`.
- **Graph's check of a delegated token** (:meth:`SandboxIdentity.graph_caller`), which the Graph handlers call.

No token value is ever logged, and none appears in an exception message or a `repr`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from bot.sandbox.clock import SandboxClock
from bot.sandbox.directory import Tenant
from bot.sandbox.tenant_records import TenantUser
from bot.sandbox.tokens import (
    DEFAULT_GRAPH_SCOPES,
    GRAPH_AUDIENCE,
    SSO_SCOPE,
    InvalidToken,
    TokenKeys,
    UserClaims,
)

logger = logging.getLogger(__name__)

# The sandbox's bot has no app registration; this id stands for it wherever SSO needs one (msAppId in the sign-in
# state, the App ID URI api://botid-…, the OAuth connection's client). bot/settings.py uses the same value.
SANDBOX_BOT_APP_ID = "5a4db0b7-7e57-4f0b-9a47-0c0ffee0b07a"
DEFAULT_OAUTH_CONNECTIONS = ("tapbot-graph",)
DEFAULT_GRAPH_TOKEN_MINUTES = 60

# The Teams clients Entra lets ask for the bot's `access_as_user` scope (sso-obo.md §2): desktop/mobile and web.
TEAMS_DESKTOP_CLIENT_ID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
TEAMS_WEB_CLIENT_ID = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
# Graph's own app id: a v1 Graph token's `aud` may be this instead of the URL.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

SSO_TOKEN_LIFETIME = timedelta(minutes=60)
MAGIC_CODE_LIFETIME = timedelta(minutes=5)
SIGN_IN_LINK_LIFETIME = timedelta(minutes=15)
# The token service hands out the Graph token it holds until this close to its expiry, then refreshes it.
REFRESH_MARGIN = timedelta(minutes=5)
# Wrong magic codes tried for one (user, connection, channel) before its outstanding codes are dropped.
MAX_CODE_FAILURES = 5

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_GRAPH_SCOPE_PREFIX = GRAPH_AUDIENCE + "/"
_BEARER = re.compile(r"Bearer[ \t]+(\S+)[ \t]*", re.IGNORECASE)


def app_id_uri(app_id: str) -> str:
    """The App ID URI Teams SSO tokens are issued for (sso-obo.md §2)."""
    return f"api://botid-{app_id}"


class TokenServiceError(Exception):
    """An answer of the token service other than success: `{"error": {"code", "message"}}` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message}}


# What the Bot Framework token service answers when its on-behalf-of exchange fails (msteams-docs#10220).
def consent_required() -> TokenServiceError:
    return TokenServiceError(400, "ServiceError", "Consent Required")


class OboError(Exception):
    """Entra's refusal of an on-behalf-of request: `error`, `AADSTS` code and description, and for
    `interaction_required` the `claims` challenge."""

    def __init__(self, status: int, error: str, code: int, description: str, *, claims: str | None = None) -> None:
        super().__init__(f"{error}: AADSTS{code}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description
        self.claims = claims


@dataclass(frozen=True)
class GraphGrant:
    """A Graph token Entra issued on behalf of a user."""

    token: str = field(repr=False)
    claims: UserClaims
    scopes: tuple[str, ...]
    expires_at: datetime


@dataclass
class IdentityCounters:
    exchanges: int = 0
    """POST /api/usertoken/exchange calls (whatever their answer)."""
    exchanges_failed: int = 0
    obo_calls: int = 0
    """On-behalf-of grants attempted, from the token service or the HTTP endpoint."""
    obo_failures: int = 0
    get_token_calls: int = 0
    """GetToken and GetTokenOrSignInResource calls."""
    refreshes: int = 0
    """Graph tokens the token service renewed from a live session (the refresh-token grant)."""
    graph_tokens_issued: int = 0
    sign_in_links: int = 0
    magic_codes_issued: int = 0
    magic_codes_redeemed: int = 0
    magic_codes_refused: int = 0
    sign_outs: int = 0
    lapses: int = 0


@dataclass
class Session:
    """What the token service holds for a (channel user, connection, channel): whose it is and its Graph token."""

    object_id: str
    token: str = field(repr=False)
    token_id: str
    expires_at: datetime
    started_at: datetime


@dataclass
class SignInRequest:
    """An outstanding sign-in link; the opaque id in the link is its only reference."""

    id: str = field(repr=False)
    user_id: str
    connection_name: str
    channel_id: str
    object_id: str
    """The tenant user the state names; "" when it names nobody of the tenant (the page then refuses)."""
    expires_at: datetime
    used: bool = False


@dataclass
class MagicCode:
    user_id: str
    connection_name: str
    channel_id: str
    object_id: str
    expires_at: datetime


SessionKey = tuple[str, str, str]  # (channel user id, connection name, channel id)


class SandboxIdentity:
    """The tenant's sign-in machinery for the bot's delegated mode; reset with the sandbox state."""

    def __init__(
        self,
        tenant: Tenant,
        clock: SandboxClock,
        *,
        bot_app_id: str = SANDBOX_BOT_APP_ID,
        oauth_connections: tuple[str, ...] = DEFAULT_OAUTH_CONNECTIONS,
        graph_token_minutes: int = DEFAULT_GRAPH_TOKEN_MINUTES,
    ) -> None:
        self.tenant = tenant
        self.clock = clock
        self.bot_app_id = bot_app_id.lower()
        self.app_id_uri = app_id_uri(self.bot_app_id)
        self.oauth_connections = tuple(oauth_connections)
        self._initial_graph_token_minutes = graph_token_minutes
        self._reset_fields()

    def _reset_fields(self) -> None:
        self.keys = TokenKeys()
        # The bot app's client secret, for clients that post the on-behalf-of form themselves (never logged).
        self.client_secret = secrets.token_urlsafe(32)
        self.graph_token_minutes = self._initial_graph_token_minutes
        self.connection_scopes: dict[str, tuple[str, ...]] = {
            name: DEFAULT_GRAPH_SCOPES for name in self.oauth_connections
        }
        self.consent_required: set[str] = set()
        self.interaction_required: set[str] = set()
        self.sessions: dict[SessionKey, Session] = {}
        self._sign_ins: dict[str, SignInRequest] = {}
        self._codes: dict[str, MagicCode] = {}
        self._code_failures: dict[SessionKey, int] = {}
        self._issued: dict[str, set[str]] = {}  # object id -> ids of the Graph tokens issued to them
        self.revoked_token_ids: set[str] = set()
        self.counters = IdentityCounters()

    def reset(self, tenant: Tenant) -> None:
        """Back to the start: new keys (every token issued before is void), no session, no switch, zero counters."""
        self.tenant = tenant
        self._reset_fields()

    # --- switches and lapses (tests and the control plane) -----------------------------------------------------

    def require_consent(self, object_id: str, required: bool = True) -> None:
        """While set, Entra refuses on-behalf-of for this user with AADSTS65001 (nobody consented for them)."""
        _toggle(self.consent_required, object_id.lower(), required)

    def require_interaction(self, object_id: str, required: bool = True) -> None:
        """While set, Entra answers on-behalf-of for this user with `interaction_required` (MFA / Conditional
        Access), and the token service cannot refresh their session."""
        _toggle(self.interaction_required, object_id.lower(), required)

    def set_graph_token_minutes(self, minutes: int) -> None:
        if minutes < 1:
            raise ValueError("A Graph token lives at least one minute.")
        self.graph_token_minutes = minutes

    def set_connection_scopes(self, connection_name: str, scopes: Iterable[str]) -> None:
        """The delegated Graph permissions the OAuth connection asks for (and the user consented to)."""
        if connection_name not in self.connection_scopes:
            raise ValueError(f"No OAuth connection named {connection_name!r}.")
        self.connection_scopes[connection_name] = tuple(scopes)

    def lapse(self, object_id: str) -> tuple[int, int]:
        """The user's delegated access lapses: every token service session of theirs ends and every Graph token
        issued to them so far is refused (as after a revocation of their sessions). Returns (sessions ended,
        tokens revoked)."""
        object_id = object_id.lower()
        ended = [key for key, session in self.sessions.items() if session.object_id == object_id]
        for key in ended:
            del self.sessions[key]
        issued = self._issued.pop(object_id, set())
        self.revoked_token_ids |= issued
        self.counters.lapses += 1
        logger.info("sandbox identity: %s lapsed (%d sessions ended)", object_id, len(ended))
        return len(ended), len(issued)

    def counters_snapshot(self) -> dict[str, object]:
        return {**asdict(self.counters), "sessions": len(self.sessions)}

    def describe(self) -> dict[str, object]:
        """Configuration and live state for the control plane, without any token value."""
        return {
            "bot_app_id": self.bot_app_id,
            "app_id_uri": self.app_id_uri,
            "oauth_connections": {name: list(scopes) for name, scopes in self.connection_scopes.items()},
            "graph_token_minutes": self.graph_token_minutes,
            "consent_required": sorted(self.consent_required),
            "interaction_required": sorted(self.interaction_required),
            "sessions": [
                {
                    "user_id": user_id,
                    "connection_name": connection,
                    "channel_id": channel,
                    "object_id": session.object_id,
                    "token_expires": session.expires_at.isoformat(),
                }
                for (user_id, connection, channel), session in self.sessions.items()
            ],
            "counters": self.counters_snapshot(),
        }

    # --- tokens for test drivers -------------------------------------------------------------------------------

    def teams_sso_token(
        self,
        object_id: str,
        *,
        audience: str | None = None,
        tenant_id: str | None = None,
        expired: bool = False,
    ) -> str:
        """A Teams SSO token for the user, as a Teams client gets it for the bot's App ID URI (or `audience`)."""
        now = self.clock.now()
        return self.keys.mint(
            object_id=object_id.lower(),
            tenant_id=(tenant_id or self.tenant.tenant_id).lower(),
            audience=audience or self.app_id_uri,
            scopes=(SSO_SCOPE,),
            app_id=TEAMS_DESKTOP_CLIENT_ID,
            now=now - SSO_TOKEN_LIFETIME - timedelta(minutes=5) if expired else now,
            lifetime=SSO_TOKEN_LIFETIME,
        )

    def graph_token(self, object_id: str, *, scopes: Iterable[str] = DEFAULT_GRAPH_SCOPES) -> str:
        """A Graph token for the user with `scopes`, issued as on-behalf-of would (lapse applies to it); for tests
        of Graph's rights checks that need a token the OAuth connection would not ask for."""
        return self._issue_graph_token(object_id.lower(), tuple(scopes), self.bot_app_id).token

    # --- Graph's side ------------------------------------------------------------------------------------------

    def graph_caller(self, authorization_header: str | None) -> UserClaims | None:
        """Who a Graph request acts for. None when it carries no Authorization header (the sandbox's app-only
        calls send none); raises InvalidToken for any other header that is not a valid, live Graph token of a
        user of this tenant whose access has not lapsed (`expired=True` for an expired or lapsed one)."""
        if authorization_header is None or not authorization_header.strip():
            return None
        found = _BEARER.fullmatch(authorization_header.strip())
        if found is None:
            raise InvalidToken("The Authorization header is not a bearer token.")
        claims = self.keys.verify(found.group(1), audiences=(GRAPH_AUDIENCE, GRAPH_APP_ID), now=self.clock.now())
        if claims.tenant_id != self.tenant.tenant_id.lower():
            raise InvalidToken("The token is for another tenant.")
        if claims.token_id in self.revoked_token_ids:
            raise InvalidToken("The user's sessions were revoked; the token is no longer valid.", expired=True)
        user = self.tenant.user(claims.object_id)
        if user is None or not user.account_enabled:
            raise InvalidToken("The token's user is not an enabled user of this tenant.")
        return claims

    # --- Entra's on-behalf-of ----------------------------------------------------------------------------------

    def on_behalf_of(self, *, client_id: str, assertion: str, scope: str) -> GraphGrant:
        """Entra's on-behalf-of grant for `client_id` (authenticated by the caller) with the user's `assertion`,
        for Graph `scope` (space-separated, e.g. `https://graph.microsoft.com/.default`). Raises OboError."""
        self.counters.obo_calls += 1
        try:
            return self._on_behalf_of(client_id.lower(), assertion, scope)
        except OboError:
            self.counters.obo_failures += 1
            raise

    def _on_behalf_of(self, client_id: str, assertion: str, scope: str) -> GraphGrant:
        if client_id != self.bot_app_id:
            raise OboError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant.tenant_id}'.",
            )
        if not assertion:
            raise OboError(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'assertion'."
            )
        try:
            sso = self.keys.verify(assertion, audiences=(self.app_id_uri, self.bot_app_id), now=self.clock.now())
        except InvalidToken as error:
            if error.expired:
                raise OboError(400, "invalid_grant", 500133, "Assertion is not within its valid time range.") from None
            raise OboError(400, "invalid_grant", 50013, f"Assertion failed validation: {error}") from None
        if sso.tenant_id != self.tenant.tenant_id.lower():
            raise OboError(400, "invalid_grant", 50013, "Assertion failed validation: it was issued by another tenant.")
        if SSO_SCOPE not in sso.scopes:
            raise OboError(
                400, "invalid_grant", 50013, f"Assertion failed validation: it does not carry the '{SSO_SCOPE}' scope."
            )
        user = self._enabled_user(sso.object_id)
        scopes = _requested_graph_scopes(scope, self._consented_scopes())
        self._check_user_can_get_tokens(user)
        return self._issue_graph_token(user.id.lower(), scopes, client_id)

    def _enabled_user(self, object_id: str) -> TenantUser:
        user = self.tenant.user(object_id)
        if user is None:
            raise OboError(
                400,
                "invalid_grant",
                50034,
                f"The user account {object_id} does not exist in the {self.tenant.domain} directory.",
            )
        if not user.account_enabled:
            raise OboError(400, "invalid_grant", 50057, "The user account is disabled.")
        return user

    def _check_user_can_get_tokens(self, user: TenantUser) -> None:
        object_id = user.id.lower()
        if object_id in self.consent_required:
            raise OboError(
                400,
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID '{self.bot_app_id}'. "
                "Send an interactive authorization request for this user and resource.",
            )
        if object_id in self.interaction_required:
            raise OboError(
                400,
                "interaction_required",
                50079,
                "Due to a configuration change made by your administrator, or because you moved to a new location, "
                f"you must use multi-factor authentication to access '{GRAPH_APP_ID}'.",
                claims=json.dumps({"access_token": {"capolids": {"essential": True, "values": [str(uuid.uuid4())]}}}),
            )

    def _consented_scopes(self) -> tuple[str, ...]:
        # Every OAuth connection of the sandbox's bot uses the bot's own app as its client: what any of them asks
        # for is consented for that app.
        return tuple(sorted({name for scopes in self.connection_scopes.values() for name in scopes}))

    def _issue_graph_token(self, object_id: str, scopes: tuple[str, ...], client_id: str) -> GraphGrant:
        now = self.clock.now()
        token = self.keys.mint(
            object_id=object_id,
            tenant_id=self.tenant.tenant_id.lower(),
            audience=GRAPH_AUDIENCE,
            scopes=scopes,
            app_id=client_id,
            now=now,
            lifetime=timedelta(minutes=self.graph_token_minutes),
            version="1.0",
        )
        claims = self.keys.verify(token, audiences=(GRAPH_AUDIENCE,), now=now)
        self._issued.setdefault(object_id, set()).add(claims.token_id)
        self.counters.graph_tokens_issued += 1
        return GraphGrant(token=token, claims=claims, scopes=scopes, expires_at=claims.expires_at)

    # --- the token service ---------------------------------------------------------------------------------------

    def _check_connection(self, connection_name: str) -> None:
        if connection_name not in self.connection_scopes:
            raise TokenServiceError(
                400, "ServiceError", f"The bot has no OAuth connection named '{connection_name[:100]}'."
            )

    def exchange(self, user_id: str, connection_name: str, channel_id: str, sso_token: str) -> Session:
        """POST /api/usertoken/exchange with `{"token": …}`: on-behalf-of with the connection's client; a session
        for (user, connection, channel) on success. Every failure of the exchange is the token service's 400
        "Consent Required", as the Bot Framework answers (the caller learns nothing more)."""
        self.counters.exchanges += 1
        self._check_connection(connection_name)
        scope = " ".join(_GRAPH_SCOPE_PREFIX + name for name in self.connection_scopes[connection_name])
        try:
            grant = self.on_behalf_of(client_id=self.bot_app_id, assertion=sso_token, scope=scope)
        except OboError as error:
            self.counters.exchanges_failed += 1
            logger.info("sandbox token service: exchange for %s refused (AADSTS%d)", connection_name, error.code)
            raise consent_required() from None
        session = Session(
            object_id=grant.claims.object_id,
            token=grant.token,
            token_id=grant.claims.token_id,
            expires_at=grant.expires_at,
            started_at=self.clock.now(),
        )
        self.sessions[(user_id, connection_name, channel_id)] = session
        return session

    def get_token(self, user_id: str, connection_name: str, channel_id: str, code: str | None = None) -> Session | None:
        """GET /api/usertoken/GetToken: the session's Graph token (renewed when it is about to expire), the session a
        valid magic code opens, or None (404) when there is none."""
        self.counters.get_token_calls += 1
        self._check_connection(connection_name)
        key = (user_id, connection_name, channel_id)
        if code:
            return self._redeem_code(key, code)
        session = self.sessions.get(key)
        if session is None:
            return None
        margin = min(REFRESH_MARGIN, timedelta(minutes=self.graph_token_minutes) / 2)
        if session.expires_at - margin > self.clock.now():
            return session
        return self._refresh(key, session)

    def _refresh(self, key: SessionKey, session: Session) -> Session | None:
        """The token service renews the Graph token with the refresh token it keeps; when Entra would refuse (user
        gone or disabled, consent withdrawn, interaction now required), the session ends."""
        user = self.tenant.user(session.object_id)
        try:
            if user is None or not user.account_enabled:
                raise OboError(400, "invalid_grant", 50057, "The user account is disabled or gone.")
            self._check_user_can_get_tokens(user)
        except OboError as error:
            del self.sessions[key]
            logger.info("sandbox token service: session refresh refused (AADSTS%d); the session ends", error.code)
            return None
        grant = self._issue_graph_token(session.object_id, self.connection_scopes[key[1]], self.bot_app_id)
        self.counters.refreshes += 1
        renewed = Session(session.object_id, grant.token, grant.claims.token_id, grant.expires_at, session.started_at)
        self.sessions[key] = renewed
        return renewed

    def sign_out(self, user_id: str, connection_name: str | None, channel_id: str | None) -> int:
        """DELETE /api/usertoken/SignOut: ends the user's sessions (of that connection / channel when given). Graph
        tokens already handed out stay valid until they expire, as Entra's do."""
        self.counters.sign_outs += 1
        if connection_name:
            self._check_connection(connection_name)
        ended = [
            key
            for key in self.sessions
            if key[0] == user_id
            and (not connection_name or key[1] == connection_name)
            and (not channel_id or key[2] == channel_id)
        ]
        for key in ended:
            del self.sessions[key]
        return len(ended)

    def sign_in_resource(
        self, user_id: str | None, connection_name: str | None, channel_id: str | None, state: str, root_url: str
    ) -> dict[str, object]:
        """The SignInResource for the sign-in state the bot sent (base64 JSON: connectionName, conversation,
        msAppId): a link to the sign-in page, and a tokenExchangeResource when the state names the bot's app."""
        parsed = _decode_state(state)
        state_connection = parsed.get("connectionName")
        connection = connection_name or (state_connection if isinstance(state_connection, str) else "")
        self._check_connection(connection)
        if state_connection != connection:
            raise TokenServiceError(400, "ServiceError", "The sign-in state names another OAuth connection.")
        conversation = parsed.get("conversation")
        if not isinstance(conversation, dict):
            raise TokenServiceError(400, "ServiceError", "The sign-in state has no conversation reference.")
        user = conversation.get("user")
        user = user if isinstance(user, dict) else {}
        state_user_id, aad_object_id = user.get("id"), user.get("aadObjectId")
        state_channel = conversation.get("channelId")
        if user_id is not None and state_user_id != user_id:
            raise TokenServiceError(400, "ServiceError", "The sign-in state is for another user.")
        if channel_id is not None and state_channel != channel_id:
            raise TokenServiceError(400, "ServiceError", "The sign-in state is for another channel.")
        if not isinstance(state_user_id, str) or not state_user_id or not isinstance(state_channel, str):
            raise TokenServiceError(400, "ServiceError", "The sign-in state does not name the user and channel.")
        ms_app_id = parsed.get("msAppId")
        if ms_app_id is not None and (not isinstance(ms_app_id, str) or ms_app_id.lower() != self.bot_app_id):
            raise TokenServiceError(400, "ServiceError", "The sign-in state names another bot.")
        # Like the real service, a link is issued for anyone: who signs in is settled at the sign-in page, which
        # refuses a state that names nobody of this tenant.
        target = self.tenant.user(aad_object_id) if isinstance(aad_object_id, str) and aad_object_id else None
        if target is None and not aad_object_id:
            target = self.tenant.user(state_user_id)
        request = SignInRequest(
            id=secrets.token_urlsafe(24),
            user_id=state_user_id,
            connection_name=connection,
            channel_id=state_channel,
            object_id=target.id.lower() if target is not None else "",
            expires_at=self.clock.now() + SIGN_IN_LINK_LIFETIME,
        )
        self._sign_ins[request.id] = request
        self.counters.sign_in_links += 1
        resource: dict[str, object] = {"signInLink": f"{root_url}/api/oauth/signin?signin={request.id}"}
        if ms_app_id is not None:
            resource["tokenExchangeResource"] = {
                "id": str(uuid.uuid4()),
                "uri": self.app_id_uri,
                "providerId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.bot_app_id}/{connection}")),
            }
        return resource

    def sign_in_request(self, sign_in_id: str) -> tuple[SignInRequest, TenantUser] | None:
        """The outstanding, unexpired sign-in of a link and its user; None for an unknown, used or expired link, or
        one whose state names no user of the tenant."""
        request = self._sign_ins.get(sign_in_id)
        if request is None or request.used or request.expires_at <= self.clock.now() or not request.object_id:
            return None
        user = self.tenant.user(request.object_id)
        return None if user is None else (request, user)

    def complete_sign_in(self, sign_in_id: str) -> str | None:
        """The user pressed Continue on the sign-in page (they signed in interactively, consenting and doing MFA as
        asked): a 6-digit magic code for that user, connection and channel, valid 5 minutes, once. None when the
        link is unknown, used or expired, or the user cannot sign in."""
        found = self.sign_in_request(sign_in_id)
        if found is None:
            return None
        request, user = found
        if not user.account_enabled:
            return None
        request.used = True
        # Interactive sign-in is where a user consents; MFA done here does not lift Conditional Access for silent
        # exchanges, so the interaction switch stays.
        self.consent_required.discard(user.id.lower())
        code = self._new_code()
        self._codes[code] = MagicCode(
            request.user_id,
            request.connection_name,
            request.channel_id,
            request.object_id,
            self.clock.now() + MAGIC_CODE_LIFETIME,
        )
        self.counters.magic_codes_issued += 1
        return code

    def sign_in_code(self, sign_in_link: str) -> str:
        """What the sign-in page's Continue gives for `sign_in_link`: the magic code (for test drivers)."""
        found = re.search(r"[?&]signin=([^&#]+)", sign_in_link)
        code = self.complete_sign_in(found.group(1)) if found else None
        if code is None:
            raise ValueError("That sign-in link is not valid (unknown, used or expired).")
        return code

    def _new_code(self) -> str:
        while True:
            code = f"{secrets.randbelow(1_000_000):06d}"
            if code not in self._codes:
                return code

    def _redeem_code(self, key: SessionKey, code: str) -> Session | None:
        now = self.clock.now()
        for stale in [value for value, magic in self._codes.items() if magic.expires_at <= now]:
            del self._codes[stale]
        magic = self._codes.get(code)
        if magic is None or (magic.user_id, magic.connection_name, magic.channel_id) != key:
            self.counters.magic_codes_refused += 1
            failures = self._code_failures.get(key, 0) + 1
            self._code_failures[key] = failures
            if failures >= MAX_CODE_FAILURES:
                for value in [v for v, m in self._codes.items() if (m.user_id, m.connection_name, m.channel_id) == key]:
                    del self._codes[value]
                self._code_failures.pop(key, None)
            return None
        del self._codes[code]
        self._code_failures.pop(key, None)
        user = self.tenant.user(magic.object_id)
        if user is None or not user.account_enabled:
            return None
        grant = self._issue_graph_token(magic.object_id, self.connection_scopes[key[1]], self.bot_app_id)
        session = Session(magic.object_id, grant.token, grant.claims.token_id, grant.expires_at, now)
        self.sessions[key] = session
        self.counters.magic_codes_redeemed += 1
        return session


def _toggle(values: set[str], value: str, on: bool) -> None:
    if on:
        values.add(value)
    else:
        values.discard(value)


def _requested_graph_scopes(scope: str, consented: tuple[str, ...]) -> tuple[str, ...]:
    """The Graph permissions a request's `scope` asks for: `.default` is every consented one; named ones must all
    be consented (else AADSTS65001, as Entra answers)."""
    requested = scope.split()
    if not requested:
        raise OboError(
            400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
        )
    names: list[str] = []
    for item in requested:
        if item in ("openid", "profile", "offline_access", "email"):
            continue
        if not item.startswith(_GRAPH_SCOPE_PREFIX):
            raise OboError(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid: {item[:100]}",
            )
        names.append(item.removeprefix(_GRAPH_SCOPE_PREFIX))
    if not names or ".default" in names:
        return consented
    missing = [name for name in names if name not in consented]
    if missing:
        raise OboError(
            400,
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application for {', '.join(missing)[:200]}.",
        )
    return tuple(names)


def _decode_state(state: str) -> dict[str, object]:
    try:
        raw = base64.b64decode(state + "=" * (-len(state) % 4), validate=False)
        data: object = json.loads(raw)
    except (binascii.Error, ValueError):
        raise TokenServiceError(400, "ServiceError", "The sign-in state is not base64 JSON.") from None
    if not isinstance(data, dict):
        raise TokenServiceError(400, "ServiceError", "The sign-in state is not a JSON object.")
    return {str(name): value for name, value in data.items()}  # pyright: ignore[reportUnknownVariableType]
