"""The doctor's checks for delegated writes (TAPBOT_GRAPH_WRITES=delegated, issue 14).

Two things must hold before a technician's first pass: the Bot Framework token service knows the OAuth connection
the bot names, and offers Teams single sign-on for the bot's App ID URI; and the bot's own Graph identity holds no
permission that could write a sign-in method, or the delegated mode would protect nothing.

The connection is checked the way the bot itself asks for a sign-in (the Agents SDK's `UserTokenClient`,
`GetTokenOrSignInResource`) for a user id that belongs to nobody: the service answers with a sign-in resource for a
known connection and an error for an unknown one. No user token is requested, none can come back, and the bot's
own token is never printed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
from microsoft_agents.activity import Activity, TokenOrSignInResourceResponse
from microsoft_agents.hosting.core.connector.client import UserTokenClient

from bot.doctor_credentials import TOKEN_TIMEOUT_SECONDS
from bot.doctor_report import Checklist, _reason
from bot.settings import DEFAULT_TOKEN_SERVICE_URL, LOOPBACK_HOSTS, GraphMode, Settings

logger = logging.getLogger("bot.doctor")

CHECK = "oauth_connection"
# A Teams-shaped user id no person has: the service can only answer it with a sign-in resource.
DOCTOR_USER_ID = "29:tapbot-doctor"
DOCTOR_CONVERSATION_ID = "a:tapbot-doctor"
DOCTOR_SERVICE_URL = "https://smba.trafficmanager.net/teams/"

# Application permissions that write sign-in methods: the all-methods one and every per-method one
# (UserAuthMethod-TAP.ReadWrite.All, UserAuthMethod-Phone.ReadWrite.All, …). Any of them lets whoever holds the
# bot's credential give someone a way in, so in delegated mode the bot's identity must hold none.
_METHOD_WRITE = re.compile(r"^(UserAuthenticationMethod|UserAuthMethod-[A-Za-z0-9]+)\.ReadWrite(\.|$)")
# Permissions with which an app can grant itself (or borrow) any permission, a write one included.
ESCALATION_PERMISSIONS = (
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
)

SignInResourceSource = Callable[[Settings, str], Awaitable[TokenOrSignInResourceResponse]]
MAX_SERVICE_MESSAGE = 200


class TokenServiceRefused(Exception):
    """A non-success answer of the token service: its status and its own error message (never a token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.message = message


def method_write_permissions(roles: Iterable[str]) -> list[str]:
    """The permissions among `roles` that write sign-in methods or let the app grant itself one, sorted."""
    return sorted(role for role in roles if _METHOD_WRITE.match(role) or role in ESCALATION_PERMISSIONS)


def doctor_activity(settings: Settings) -> Activity:
    """The conversation the sign-in state names: a personal chat of nobody with the bot."""
    return Activity.model_validate(
        {
            "type": "message",
            "channelId": "msteams",
            "from": {"id": DOCTOR_USER_ID},
            "recipient": {"id": f"28:{settings.sso_app_id}"},
            "conversation": {"id": DOCTOR_CONVERSATION_ID, "conversationType": "personal"},
            "serviceUrl": DOCTOR_SERVICE_URL,
        }
    )


async def sdk_sign_in_resource(settings: Settings, bot_token: str) -> TokenOrSignInResourceResponse:
    """What the token service answers the bot for the configured connection, through the Agents SDK's client.

    The SDK raises a bare status for an error; the service's own message (`{"error": {"code", "message"}}`) is
    read from the answer on its way, so the doctor can say why.
    """
    assert settings.oauth_connection is not None
    refusals: list[str] = []

    async def keep_error_body(
        _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.response.status >= 300:
            refusals.append(_service_message(await params.response.read()))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(keep_error_body)
    endpoint = settings.token_service_url.rstrip("/") + "/"
    session = aiohttp.ClientSession(base_url=endpoint, trace_configs=[trace])
    client = UserTokenClient(endpoint, bot_token, app_id=settings.sso_app_id, session=session)
    try:
        return await client.get_token_or_sign_in_resource(settings.oauth_connection, doctor_activity(settings))
    except aiohttp.ClientResponseError as error:
        raise TokenServiceRefused(error.status, refusals[-1] if refusals else "") from None
    finally:
        await client.close()


def _service_message(body: bytes) -> str:
    """The token service's error message, one short printable line ("" when it sent none)."""
    try:
        document = json.loads(body)
        error = document.get("error") if isinstance(document, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        text = message if isinstance(message, str) else ""
    except ValueError:
        text = body.decode("utf-8", errors="replace")
    line = text.strip().splitlines()[0].rstrip(". ") if text.strip() else ""  # it goes inside parentheses
    line = "".join(character for character in line if character.isprintable())
    return line if len(line) <= MAX_SERVICE_MESSAGE else line[: MAX_SERVICE_MESSAGE - 1] + "…"


class DelegatedChecks(Checklist):
    """The OAuth connection line, and the "no standing write permission" line of the Graph token."""

    sign_in_resource: SignInResourceSource | None

    async def _oauth_connection(self, settings: Settings, bot_token: str | None) -> None:
        name = settings.oauth_connection
        if not settings.delegated_writes or name is None:
            self._not_applicable(
                CHECK,
                "OAuth connection: not used (TAPBOT_GRAPH_WRITES=application: the bot writes passes with its own "
                "application permission).",
            )
            return
        service = settings.token_service_url
        if settings.graph.mode is GraphMode.SANDBOX:
            self._not_applicable(
                CHECK,
                f"OAuth connection '{name}': not checked (the built-in sandbox serves its own token service, which "
                "knows the connection the settings name).",
            )
            return
        if bot_token is None:
            if not settings.anonymous or not _loopback(service):
                self._not_applicable(
                    CHECK, f"OAuth connection '{name}': not checked (no Bot Framework token to ask the token service)."
                )
                return
            bot_token = ""  # a stand-alone sandbox's token service on this machine, as the anonymous bot calls it
        source = self.sign_in_resource or sdk_sign_in_resource
        try:
            answer = await asyncio.wait_for(source(settings, bot_token), TOKEN_TIMEOUT_SECONDS)
        except TokenServiceRefused as error:
            self._fail(CHECK, _refusal(settings, name, error.status, error.message))
            return
        except aiohttp.ClientResponseError as error:
            logger.debug("token service refused", exc_info=True)
            self._fail(CHECK, _refusal(settings, name, error.status, ""))
            return
        except Exception as error:
            logger.debug("token service unreachable", exc_info=True)
            self._fail(
                CHECK,
                f"The Bot Framework token service at {service} did not answer about the OAuth connection '{name}' "
                f"({_reason(error)}): technicians could not sign in. Check TAPBOT_TOKEN_SERVICE_URL.",
            )
            return
        self._sign_in_resource(settings, name, answer)

    def _sign_in_resource(self, settings: Settings, name: str, answer: TokenOrSignInResourceResponse) -> None:
        service = settings.token_service_url
        resource = answer.sign_in_resource
        if resource is None or not resource.sign_in_link:
            self._fail(
                CHECK,
                f"The token service at {service} answered for the OAuth connection '{name}' without a sign-in link: "
                "technicians could not sign in.",
            )
            return
        exchange = resource.token_exchange_resource
        expected = settings.sso_resource
        if exchange is None or not exchange.uri:
            self._fail(
                CHECK,
                f"The OAuth connection '{name}' exists but offers no single sign-on: set its Token Exchange URL to "
                f"{expected} (the App ID URI of TAPBOT_SSO_RESOURCE and the package's webApplicationInfo), or every "
                "technician must press a sign-in button each time their token runs out.",
            )
            return
        if _same_uri(exchange.uri) != _same_uri(expected):
            self._fail(
                CHECK,
                f"The OAuth connection '{name}' exchanges Teams tokens for {exchange.uri}, but TAPBOT_SSO_RESOURCE "
                f"(and the package's webApplicationInfo) is {expected}: make the connection's Token Exchange URL and "
                "the App ID URI the same, or the silent sign-in fails.",
            )
            return
        self._ok(
            CHECK,
            f"The token service at {service} knows the OAuth connection '{name}' and offers single sign-on for "
            f"{expected} (asked for a sign-in resource, not for a token).",
        )

    async def _sandbox_no_standing_write(self, settings: Settings) -> None:
        """The built-in sandbox's app holds the tenant file's `applicationPermissions`: none may write, as for real."""
        from bot.sandbox.tenant import load_tenant  # a real deployment never loads the emulator

        assert settings.sandbox_tenant_file is not None
        tenant = await asyncio.to_thread(load_tenant, settings.sandbox_tenant_file)
        found = method_write_permissions(tenant.application_permissions)
        if found:
            self._fail(
                "graph_write",
                f"The sandbox tenant's app still holds {', '.join(found)} (applicationPermissions in "
                f"{settings.sandbox_tenant_file}; when absent, the default list, which can write): with "
                "TAPBOT_GRAPH_WRITES=delegated list only read permissions there, as a real deployment keeps only "
                "reads.",
            )
            return
        self._ok(
            "graph_write",
            "The sandbox tenant's app holds no permission to write sign-in methods: passes are written only with "
            "the technician's own delegated rights (TAPBOT_GRAPH_WRITES=delegated).",
        )

    def _no_standing_write(self, roles: frozenset[str]) -> None:
        """Delegated mode: the app-only token must grant no permission that writes a sign-in method."""
        found = method_write_permissions(roles)
        if found:
            listed = ", ".join(found)
            self._fail(
                "graph_write",
                f"The bot's Graph token still grants {listed}: with TAPBOT_GRAPH_WRITES=delegated the bot must hold "
                "no permission that writes sign-in methods (or lets it grant itself one), or whoever holds its "
                f"credential can still give anyone a pass. Remove {listed} from the bot's Graph identity (Enterprise "
                "applications → its Permissions, or Remove-MgServicePrincipalAppRoleAssignment); a managed identity's "
                "cached token can still show a removed permission for up to 24 hours.",
            )
            return
        self._ok(
            "graph_write",
            "The bot's Graph token grants no permission to write sign-in methods: passes are created and deleted "
            "only with the technician's own delegated rights (TAPBOT_GRAPH_WRITES=delegated).",
        )


def _refusal(settings: Settings, name: str, status: int, message: str) -> str:
    service = settings.token_service_url
    answer = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status in (401, 403):
        return (
            f"The token service at {service} refused the bot's Bot Framework token ({answer}) when asked about "
            f"the OAuth connection '{name}': the bot registration {settings.sso_app_id} must be the Azure Bot that "
            "holds the connection."
        )
    if status in (400, 404):
        where = "" if service.rstrip("/") == DEFAULT_TOKEN_SERVICE_URL else f" at {service}"
        return (
            f"The token service{where} gives no sign-in for the OAuth connection '{name}' ({answer}): "
            "TAPBOT_OAUTH_CONNECTION must be the exact name of an OAuth connection setting of the Azure Bot "
            f"{settings.sso_app_id} (Configuration → OAuth Connection Settings)."
        )
    return (
        f"The token service at {service} answered {answer} about the OAuth connection '{name}': technicians "
        "could not sign in. Try again; if it persists, check the Azure Bot's OAuth connection settings."
    )


def _loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def _same_uri(uri: str) -> str:
    return uri.strip().rstrip("/").lower()
