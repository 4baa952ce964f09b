"""Builds the Verified ID method from the settings (called by the composition root, bot/server.py).

A real tenant: the bot's Graph credential for the Request Service's scope, the configured authority, service and
public callback address. The built-in sandbox: its emulated Request Service, its token endpoint with the emulator's
test app, its authority, and (unless TAPBOT_VERIFIED_ID_CALLBACK_URL is set) the bot's own loopback address, learnt
from the first request it serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from bot.adapters.graph import build_credential
from bot.adapters.verified_id import (
    DEFAULT_SERVICE_URL,
    ClientCredentialsTokens,
    CredentialTokens,
    TokenSource,
    VerifiedIdGateway,
)
from bot.domain.ports import AuditLog, Clock, Directory
from bot.domain.verification import VerificationMethod
from bot.domain.verified_id import VerifiedIdRequests
from bot.domain.verified_id_verifier import VerifiedIdConfig, VerifiedIdVerifier
from bot.settings import GraphMode, Settings
from bot.teams.verification_flow import VerificationFlow
from bot.teams.verified_id_method import VerifiedIdMethod
from bot.web.verified_id import CALLBACK_PATH, LocalAddress, VerifiedIdEndpoint

if TYPE_CHECKING:
    from bot.sandbox.server import RunningSandbox


@dataclass
class VerifiedIdParts:
    endpoint: VerifiedIdEndpoint  # POST /api/verifiedid/callback, and the expiry round of housekeeping
    http_client: httpx.AsyncClient  # closed when the app stops
    local_address: LocalAddress | None  # a middleware to install: the sandbox learns where to call back


def build_verified_id(
    settings: Settings,
    sandbox: RunningSandbox | None,
    *,
    flow: VerificationFlow | None,
    requests: VerifiedIdRequests,
    directory: Directory,
    audit: AuditLog,
    clock: Clock,
) -> VerifiedIdParts | None:
    """The method, registered on the verification flow; None when TAPBOT_VERIFICATION does not accept verified_id
    (then the callback endpoint does not exist either)."""
    if flow is None or VerificationMethod.VERIFIED_ID not in flow.service.rules.methods:
        return None
    configured = settings.verified_id
    http = httpx.AsyncClient()
    tokens: TokenSource
    if sandbox is not None:
        from bot.sandbox.verified_id import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

        service_url = configured.service_url or sandbox.verified_id_url
        authority = configured.authority or sandbox.state.verified_id.authority
        tenant_id = sandbox.state.tenant.tenant_id
        tokens = ClientCredentialsTokens(
            http, f"{sandbox.root_url}/{tenant_id}/oauth2/v2.0/token", SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, clock
        )
    elif settings.graph.mode is GraphMode.ANONYMOUS:
        # A stand-alone sandbox (python -m bot.sandbox) serves the Request Service and the token endpoint too.
        from bot.sandbox.verified_id import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

        origin = str(httpx.URL(settings.graph.base_url).copy_with(path="/"))
        service_url = configured.service_url or origin + "verifiedid/v1.0"
        authority = configured.authority or ""
        tenant_id = sorted(settings.allowed_tenant_ids)[0]
        tokens = ClientCredentialsTokens(
            http, f"{origin}{tenant_id}/oauth2/v2.0/token", SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, clock
        )
    else:
        service_url = configured.service_url or DEFAULT_SERVICE_URL
        authority = configured.authority or ""
        tokens = CredentialTokens(build_credential(settings.graph))
    local_address: LocalAddress | None = None
    callback: Callable[[], str | None]
    if configured.callback_base_url:
        fixed = configured.callback_base_url + CALLBACK_PATH
        callback = lambda: fixed  # noqa: E731 - a constant address
    else:
        local_address = LocalAddress()
        callback = local_address.callback_url
    verifier = VerifiedIdVerifier(
        config=VerifiedIdConfig(authority=authority, threshold=configured.threshold, callback_url=callback),
        service=VerifiedIdGateway(http, service_url, tokens),
        requests=requests,
        verifications=flow.service,
        directory=directory,
        audit=audit,
        clock=clock,
    )
    flow.register(VerificationMethod.VERIFIED_ID, VerifiedIdMethod(verifier, requests, settings.default_timezone))
    return VerifiedIdParts(VerifiedIdEndpoint(verifier, flow), http, local_address)
