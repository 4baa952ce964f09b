"""The doctor's bot-credential checks: the Azure Bot registration's auth type, its token, and token claims."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from pathlib import Path

from azure.core.credentials_async import AsyncTokenCredential

from bot.settings import BOT_CONNECTION_PREFIX, Settings

logger = logging.getLogger("bot.doctor")  # the logger name the doctor always used

TOKEN_TIMEOUT_SECONDS = 30.0
BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"
# The AUTHTYPE values the Agents SDK's MSAL authentication (1.9) implements, spelled as it compares them (case
# matters: "usermanagedidentity" fails at the first reply), with the settings each needs and what it is.
BOT_AUTH_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "ClientSecret": (("CLIENTSECRET",), "client secret"),
    "certificate": (("CERTPFXFILE",), "certificate"),
    "UserManagedIdentity": ((), "user-assigned managed identity, no secret"),
    "SystemManagedIdentity": ((), "system-assigned managed identity, no secret"),
    "FederatedCredentials": (("FEDERATEDCLIENTID",), "federated credential from a managed identity, no secret"),
    "WorkloadIdentity": (("FEDERATEDTOKENFILE",), "workload identity federation, no secret"),
}
_BOT_AUTH_FILES = ("CERTPFXFILE", "FEDERATEDTOKENFILE")


def _bot_credential_problem(auth_type: str, connection: dict[str, str]) -> str | None:
    if auth_type not in BOT_AUTH_TYPES:
        spelled = next((known for known in BOT_AUTH_TYPES if known.lower() == auth_type.lower()), None)
        if spelled:
            return f"write {BOT_CONNECTION_PREFIX}AUTHTYPE={spelled} exactly (the Agents SDK compares it case by case)"
        return (
            f"{BOT_CONNECTION_PREFIX}AUTHTYPE={auth_type} is not an auth type of the Agents SDK "
            f"(one of {', '.join(BOT_AUTH_TYPES)})"
        )
    for needed in BOT_AUTH_TYPES[auth_type][0]:
        value = connection.get(needed)
        if not value:
            return f"AUTHTYPE={auth_type} needs {BOT_CONNECTION_PREFIX}{needed}"
        if needed in _BOT_AUTH_FILES and not Path(value).is_file():
            return f"{BOT_CONNECTION_PREFIX}{needed} must name a file that exists (got {value})"
    return None


async def _bot_framework_token(settings: Settings) -> str:
    """A Bot Framework token through the Agents SDK's own connection settings: the registration works."""
    from microsoft_agents.activity import load_configuration_from_env
    from microsoft_agents.authentication.msal import MsalConnectionManager

    connections = MsalConnectionManager(**load_configuration_from_env(dict(settings.bot_connection_env)))
    provider = connections.get_default_connection()
    return await provider.get_access_token(BOT_FRAMEWORK_RESOURCE, [f"{BOT_FRAMEWORK_RESOURCE}/.default"])


async def _close(credential: AsyncTokenCredential) -> None:
    close = getattr(credential, "close", None)
    if close is not None:
        try:
            await close()
        except Exception:
            logger.debug("closing the credential failed", exc_info=True)


def token_roles(token: str) -> frozenset[str]:
    """The `roles` claim of an access token (its application permissions). Not verified: only for reporting."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return frozenset()
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return frozenset(role for role in roles if isinstance(role, str)) if isinstance(roles, list) else frozenset()
