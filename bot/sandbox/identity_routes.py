"""HTTP side of the sandbox's sign-in machinery (bot/sandbox/identity.py).

- The Bot Framework token service at the root, as the Agents SDK's `UserTokenClient` calls it:
  `GET /api/usertoken/GetToken`, `POST /api/usertoken/exchange`, `GET /api/usertoken/GetTokenOrSignInResource`,
  `DELETE /api/usertoken/SignOut`, `GET /api/botsignin/getSignInResource`, and the sign-in page
  `GET|POST /api/oauth/signin?signin=…`.
- Entra's on-behalf-of grant on `POST /{tenant}/oauth2/v2.0/token` (the Verified ID emulator's token route hands
  `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` requests here).
- The control plane under `/_sandbox/identity/…`: lapses, consent and interaction switches, the Graph token
  lifetime, counters, and Teams SSO tokens for people driving the bot by hand.

No handler logs a token, a magic code or a sign-in id.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import uuid
from datetime import UTC, datetime
from typing import cast

from aiohttp import web

from bot.sandbox.app_keys import SANDBOX_STATE
from bot.sandbox.clock import format_graph_datetime
from bot.sandbox.errors import bad_request, resource_not_found
from bot.sandbox.http_responses import http_error, http_json
from bot.sandbox.identity import (
    JWT_BEARER_GRANT,
    OboError,
    SandboxIdentity,
    Session,
    TokenServiceError,
)

logger = logging.getLogger(__name__)

TOKEN_SERVICE_PREFIX = "/api/usertoken"
SIGN_IN_PAGE = "/api/oauth/signin"


def setup_identity_routes(app: web.Application, control_prefix: str) -> None:
    app.router.add_get(f"{TOKEN_SERVICE_PREFIX}/GetToken", get_token)
    app.router.add_post(f"{TOKEN_SERVICE_PREFIX}/exchange", exchange)
    app.router.add_get(f"{TOKEN_SERVICE_PREFIX}/GetTokenOrSignInResource", get_token_or_sign_in_resource)
    app.router.add_delete(f"{TOKEN_SERVICE_PREFIX}/SignOut", sign_out)
    app.router.add_get("/api/botsignin/getSignInResource", get_sign_in_resource)
    app.router.add_get(SIGN_IN_PAGE, sign_in_page)
    app.router.add_post(SIGN_IN_PAGE, sign_in_continue)
    control = f"{control_prefix}/identity"
    app.router.add_get(control, describe)
    app.router.add_get(f"{control}/counters", counters)
    app.router.add_post(f"{control}/users/{{user}}/lapse", lapse)
    app.router.add_post(f"{control}/users/{{user}}/consent", consent)
    app.router.add_post(f"{control}/users/{{user}}/interaction", interaction)
    app.router.add_post(f"{control}/sso-token", sso_token)
    app.router.add_post(f"{control}/graph-token-lifetime", graph_token_lifetime)


def _identity(request: web.Request) -> SandboxIdentity:
    return request.app[SANDBOX_STATE].identity


# --- the token service ---------------------------------------------------------------------------------------------


def _service_error(error: TokenServiceError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


def _query(request: web.Request, name: str, *, required: bool = True) -> str:
    value = request.query.get(name, "")
    if required and not value:
        raise TokenServiceError(400, "BadArgument", f"The query parameter '{name}' is required.")
    return value


def _token_response(session: Session, connection_name: str, channel_id: str) -> dict[str, object]:
    return {
        "channelId": channel_id,
        "connectionName": connection_name,
        "token": session.token,
        "expiration": format_graph_datetime(session.expires_at),
    }


async def get_token(request: web.Request) -> web.Response:
    try:
        user_id, connection, channel = (_query(request, name) for name in ("userId", "connectionName", "channelId"))
        session = _identity(request).get_token(user_id, connection, channel, request.query.get("code") or None)
    except TokenServiceError as error:
        return _service_error(error)
    if session is None:
        return web.json_response(
            {"error": {"code": "NotFound", "message": "No token is stored for this user and connection."}}, status=404
        )
    return web.json_response(_token_response(session, connection, channel))


async def exchange(request: web.Request) -> web.Response:
    try:
        user_id, connection, channel = (_query(request, name) for name in ("userId", "connectionName", "channelId"))
        body = await _json_object(request)
        token, uri = body.get("token"), body.get("uri")
        if not isinstance(token, str) or not token:
            if uri is not None:
                raise TokenServiceError(
                    400, "BadArgument", 'The sandbox exchanges Teams SSO tokens only: send {"token": …}.'
                )
            raise TokenServiceError(400, "BadArgument", 'Send {"token": …} with the Teams SSO token to exchange.')
        session = _identity(request).exchange(user_id, connection, channel, token)
    except TokenServiceError as error:
        return _service_error(error)
    return web.json_response(_token_response(session, connection, channel))


async def get_token_or_sign_in_resource(request: web.Request) -> web.Response:
    identity = _identity(request)
    try:
        user_id, connection, channel = (_query(request, name) for name in ("userId", "connectionName", "channelId"))
        session = identity.get_token(user_id, connection, channel, request.query.get("code") or None)
        if session is not None:
            return web.json_response({"tokenResponse": _token_response(session, connection, channel)})
        resource = identity.sign_in_resource(
            user_id, connection, channel, _query(request, "state"), str(request.url.origin())
        )
    except TokenServiceError as error:
        return _service_error(error)
    return web.json_response({"signInResource": resource})


async def get_sign_in_resource(request: web.Request) -> web.Response:
    try:
        resource = _identity(request).sign_in_resource(
            None, None, None, _query(request, "state"), str(request.url.origin())
        )
    except TokenServiceError as error:
        return _service_error(error)
    return web.json_response(resource)


async def sign_out(request: web.Request) -> web.Response:
    try:
        _identity(request).sign_out(
            _query(request, "userId"),
            request.query.get("connectionName") or None,
            request.query.get("channelId") or None,
        )
    except TokenServiceError as error:
        return _service_error(error)
    return web.Response(status=200)


# --- the sign-in page ------------------------------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.Response:
    identity = _identity(request)
    sign_in_id = request.query.get("signin", "")
    found = identity.sign_in_request(sign_in_id) if sign_in_id else None
    if found is None:
        return _page(
            "Sign-in link not valid",
            "<p>This sign-in link is unknown, already used or expired, or names nobody of this tenant.</p>",
            404,
        )
    sign_in, user = found
    tenant = identity.tenant
    body = (
        f"<p>Sign in to <strong>{html.escape(sign_in.connection_name)}</strong> as "
        f"<strong>{html.escape(user.display_name)}</strong> ({html.escape(user.user_principal_name)}) "
        f"in the tenant <strong>{html.escape(tenant.display_name)}</strong> ({html.escape(tenant.domain)}).</p>"
        f"<p>The bot will act with your own rights in Microsoft Graph.</p>"
        f'<form method="post" action="{SIGN_IN_PAGE}?signin={html.escape(sign_in_id, quote=True)}">'
        '<button type="submit">Continue</button></form>'
    )
    return _page("Sign in", body)


async def sign_in_continue(request: web.Request) -> web.Response:
    code = _identity(request).complete_sign_in(request.query.get("signin", ""))
    if code is None:
        return _page(
            "Sign-in link not valid",
            "<p>This sign-in link is unknown, already used or expired, or the account cannot sign in.</p>",
            404,
        )
    body = (
        "<p>Enter this code in the chat with the bot to finish signing in. It works once, for 5 minutes.</p>"
        f'<p id="magic-code" style="font-size:2em;letter-spacing:0.2em">{code}</p>'
    )
    return _page("Signed in", body)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(
        text=document,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


# --- Entra's on-behalf-of grant ----------------------------------------------------------------------------------


async def obo_token_endpoint(request: web.Request) -> web.Response:
    """`POST /{tenant}/oauth2/v2.0/token` with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`."""
    identity = _identity(request)
    form = await request.post()
    fields = {name: str(form.get(name) or "") for name in ("grant_type", "client_id", "client_secret", "assertion")}
    tenant = request.match_info.get("tenant", "").lower()
    try:
        if tenant not in (identity.tenant.tenant_id.lower(), identity.tenant.domain.lower()):
            raise OboError(400, "invalid_request", 90002, f"Tenant '{tenant[:100]}' not found.")
        if fields["grant_type"] != JWT_BEARER_GRANT:
            raise OboError(400, "unsupported_grant_type", 70003, "The grant type is not supported here.")
        if form.get("requested_token_use") != "on_behalf_of":
            raise OboError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the parameter 'requested_token_use' with the value 'on_behalf_of'.",
            )
        for name in ("client_id", "assertion", "scope"):
            if not form.get(name):
                raise OboError(
                    400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
                )
        if fields["client_id"].lower() != identity.bot_app_id:
            raise OboError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{fields['client_id'][:100]}' was not found in the directory "
                f"'{identity.tenant.tenant_id}'.",
            )
        if form.get("client_assertion"):
            raise OboError(
                401, "invalid_client", 7000215, "The sandbox authenticates the bot's app with its client_secret only."
            )
        if not fields["client_secret"]:
            raise OboError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not secrets.compare_digest(fields["client_secret"].encode(), identity.client_secret.encode()):
            raise OboError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        grant = identity.on_behalf_of(
            client_id=fields["client_id"], assertion=fields["assertion"], scope=str(form.get("scope"))
        )
    except OboError as error:
        return _obo_error(error)
    lifetime = int((grant.expires_at - request.app[SANDBOX_STATE].clock.now()).total_seconds())
    return web.json_response(
        {
            "token_type": "Bearer",
            "scope": " ".join(f"https://graph.microsoft.com/{name}" for name in grant.scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": grant.token,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _obo_error(error: OboError) -> web.Response:
    body: dict[str, object] = {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {error.description}",
        "error_codes": [error.code],
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    if error.claims is not None:
        body["claims"] = error.claims
        body["suberror"] = "basic_action"
    return web.json_response(body, status=error.status)


# --- the control plane -----------------------------------------------------------------------------------------


async def describe(request: web.Request) -> web.Response:
    return http_json(_identity(request).describe())


async def counters(request: web.Request) -> web.Response:
    return http_json(_identity(request).counters_snapshot())


def _user_id(request: web.Request, value: str) -> str | None:
    user = request.app[SANDBOX_STATE].tenant.user(value)
    return user.id if user is not None else None


async def lapse(request: web.Request) -> web.Response:
    object_id = _user_id(request, request.match_info["user"])
    if object_id is None:
        return http_error(request, resource_not_found(request.match_info["user"]))
    sessions, tokens = _identity(request).lapse(object_id)
    return http_json({"object_id": object_id, "sessions_ended": sessions, "tokens_revoked": tokens})


async def consent(request: web.Request) -> web.Response:
    return await _switch(request, "consent_required")


async def interaction(request: web.Request) -> web.Response:
    return await _switch(request, "interaction_required")


async def _switch(request: web.Request, name: str) -> web.Response:
    object_id = _user_id(request, request.match_info["user"])
    if object_id is None:
        return http_error(request, resource_not_found(request.match_info["user"]))
    required = (await _control_body(request)).get("required", True)
    if not isinstance(required, bool):
        return http_error(request, bad_request('Send {"required": true} or {"required": false}.'))
    identity = _identity(request)
    if name == "consent_required":
        identity.require_consent(object_id, required)
    else:
        identity.require_interaction(object_id, required)
    return http_json({"object_id": object_id, name: required})


async def sso_token(request: web.Request) -> web.Response:
    """A Teams SSO token for a user, as a Teams client would get it for the bot: `{"objectId": id or UPN}`."""
    body = await _control_body(request)
    who = body.get("objectId", body.get("object_id"))
    if not isinstance(who, str) or not who:
        return http_error(request, bad_request('Send {"objectId": "<user object id or UPN>"}.'))
    object_id = _user_id(request, who)
    if object_id is None:
        return http_error(request, resource_not_found(who))
    return http_json({"object_id": object_id, "token": _identity(request).teams_sso_token(object_id)})


async def graph_token_lifetime(request: web.Request) -> web.Response:
    minutes = (await _control_body(request)).get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        return http_error(request, bad_request('Send {"minutes": N} with N >= 1.'))
    identity = _identity(request)
    identity.set_graph_token_minutes(minutes)
    return http_json({"graph_token_minutes": identity.graph_token_minutes})


async def _json_object(request: web.Request) -> dict[str, object]:
    """The token service's reading of a JSON body; refusals in its own error shape."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data: object = json.loads(raw)
    except ValueError:
        raise TokenServiceError(400, "BadArgument", "The body is not JSON.") from None
    if not isinstance(data, dict):
        raise TokenServiceError(400, "BadArgument", "The body must be a JSON object.")
    return cast(dict[str, object], data)


async def _control_body(request: web.Request) -> dict[str, object]:
    """The control plane's reading of a JSON body; refusals become the sandbox's 400 envelope."""
    try:
        return await _json_object(request)
    except TokenServiceError as error:
        raise web.HTTPBadRequest(reason=error.message) from None
