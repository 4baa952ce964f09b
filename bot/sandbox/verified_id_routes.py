"""HTTP side of the emulated Verified ID Request Service (bot/sandbox/verified_id.py).

- `POST /{tenant}/oauth2/v2.0/token`: client credentials for the Request Service's scope (Entra's token endpoint).
- `POST /verifiedid/v1.0/verifiableCredentials/createPresentationRequest`: the Request Service.
- `/_sandbox/verifiedid/…`: the control plane that plays the user's wallet (scan, present, decline, expire).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import cast

import aiohttp
from aiohttp import web

from bot.sandbox.app_keys import SANDBOX_STATE
from bot.sandbox.errors import GraphError, bad_request, resource_not_found
from bot.sandbox.http_responses import http_error, http_json
from bot.sandbox.identity import JWT_BEARER_GRANT
from bot.sandbox.identity_routes import obo_token_endpoint
from bot.sandbox.verified_id import (
    OUTER_ERRORS,
    REQUEST_SERVICE_APP_ID,
    REQUEST_SERVICE_SCOPE,
    App,
    Delivery,
    PresentationRequest,
    RequestStatus,
    ServiceError,
    VerifiedIdEmulator,
)

logger = logging.getLogger(__name__)

SERVICE_PREFIX = "/verifiedid/v1.0"
CREATE_PATH = f"{SERVICE_PREFIX}/verifiableCredentials/createPresentationRequest"
CALLBACK_TIMEOUT_S = 10.0
CALLBACK_SESSION = web.AppKey("verified_id_callback_session", aiohttp.ClientSession)


def setup_verified_id_routes(app: web.Application, control_prefix: str) -> None:
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token_endpoint)
    app.router.add_post(CREATE_PATH, create_presentation_request)
    control = f"{control_prefix}/verifiedid"
    app.router.add_get(f"{control}/requests", list_requests)
    app.router.add_post(f"{control}/requests/{{request_id}}/scan", scan)
    app.router.add_post(f"{control}/requests/{{request_id}}/present", present)
    app.router.add_post(f"{control}/requests/{{request_id}}/decline", decline)
    app.router.add_post(f"{control}/requests/{{request_id}}/expire", expire)
    app.router.add_post(f"{control}/apps", register_app)
    app.cleanup_ctx.append(_callback_session)


async def _callback_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)) as session:
        app[CALLBACK_SESSION] = session
        yield


def _emulator(request: web.Request) -> VerifiedIdEmulator:
    return request.app[SANDBOX_STATE].verified_id


# --- Entra's token endpoint (client credentials only) ---------------------------------------------------------


async def token_endpoint(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    form = await request.post()
    if form.get("grant_type") == JWT_BEARER_GRANT:  # on-behalf-of: the sandbox's identity side (issue 14)
        return await obo_token_endpoint(request)
    if not emulator.knows_tenant(request.match_info["tenant"]):
        return _token_error(400, "invalid_request", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
    if form.get("grant_type") != "client_credentials":
        return _token_error(400, "unsupported_grant_type", 70003, "The sandbox only grants client_credentials.")
    client_id, secret, scope = (str(form.get(name) or "") for name in ("client_id", "client_secret", "scope"))
    app = emulator.apps.get(client_id.lower())
    if app is None:
        return _token_error(
            400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found."
        )
    if not secret or secret != app.secret:
        return _token_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
    if scope not in (REQUEST_SERVICE_SCOPE, f"api://{REQUEST_SERVICE_SCOPE}"):
        return _token_error(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid; the sandbox serves "
            f"'{REQUEST_SERVICE_SCOPE}'.",
        )
    value, token = emulator.issue_token(app)
    lifetime = int((token.expires_at - request.app[SANDBOX_STATE].clock.now()).total_seconds())
    return web.json_response(
        {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": value}
    )


def _token_error(status: int, error: str, code: int, description: str) -> web.Response:
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
        status=status,
    )


# --- the Request Service ---------------------------------------------------------------------------------------


async def create_presentation_request(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    emulator = state.verified_id
    try:
        token = emulator.token(request.headers.get("Authorization"))
        fault = state.faults.take("POST", CREATE_PATH)
        if fault is not None:
            state.counters.faults_injected += 1
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                error = fault.error()
                raise ServiceError(error.status, "transientError", error.message, headers=error.headers)
        try:
            body: object = json.loads(await request.read())
        except ValueError:
            raise ServiceError(400, "badOrMissingField", "The request body is not JSON.", "body") from None
        created = emulator.create(token, body)
    except ServiceError as error:
        return _service_error(error)
    answer: dict[str, object] = {
        "requestId": created.request_id,
        "url": "openid-vc://?request_uri="
        + f"{request.url.origin()}{SERVICE_PREFIX}/{created.tenant_id}/verifiableCredentials/presentationRequests/"
        + created.request_id,
        "expiry": int(created.expires_at.timestamp()),
    }
    if isinstance(body, dict) and cast(dict[str, object], body).get("includeQRCode") is True:
        from cards.qr_code import qr_data_uri  # the same drawing the bot uses; loaded only when asked

        answer["qrCode"] = qr_data_uri(str(answer["url"]))
    logger.info("verified id: presentation request %s created", created.request_id)
    return web.json_response(answer, status=201)


def _service_error(error: ServiceError) -> web.Response:
    code, message = OUTER_ERRORS.get(error.status, ("badRequest", "The request is invalid."))
    inner: dict[str, object] = {"code": error.inner_code, "message": error.message}
    if error.target is not None:
        inner["target"] = error.target
    body = {
        "requestId": str(uuid.uuid4()),
        "date": format_datetime(datetime.now(UTC), usegmt=True),
        "mscv": "sandbox.1",
        "error": {"code": code, "message": message, "innererror": inner},
    }
    return web.json_response(body, status=error.status, headers=dict(error.headers))


# --- the control plane: the user's wallet ----------------------------------------------------------------------


async def list_requests(request: web.Request) -> web.Response:
    emulator = _emulator(request)
    requests = [emulator.request(request_id) for request_id in list(emulator.requests)]
    return http_json({"requests": [item.summary() for item in requests if item is not None]})


async def scan(request: web.Request) -> web.Response:
    """The user opened the link or scanned the QR code: the service sends request_retrieved."""
    presentation = _open_request(request)
    if isinstance(presentation, web.Response):
        return presentation
    if presentation.status is not RequestStatus.CREATED:
        return _conflict(request, presentation, "it was already retrieved")
    presentation.status = RequestStatus.RETRIEVED
    body = {
        "requestId": presentation.request_id,
        "requestStatus": "request_retrieved",
        "state": presentation.callback_state,
    }
    delivery = await _deliver(request.app, presentation, "request_retrieved", body)
    return http_json({**presentation.summary(), "callback": delivery.__dict__})


async def present(request: web.Request) -> web.Response:
    """The user shares a credential: `{"user": UPN or id, "score": 0-100, "issuer"?, "revoked"?, "type"?,
    "skip_wallet_rule"?}`. Without `skip_wallet_rule` the wallet offers the credential only when it fits the request
    (type, acceptedIssuers, constraints), else nothing is sent (409)."""
    presentation = _open_request(request)
    if isinstance(presentation, web.Response):
        return presentation
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    reference, score = body.get("user"), body.get("score")
    issuer, revoked, kind = body.get("issuer"), body.get("revoked", False), body.get("type")
    skip = body.get("skip_wallet_rule", False)
    if not isinstance(reference, str) or isinstance(score, bool) or not isinstance(score, int | float):
        return http_error(request, bad_request('Send {"user": "<UPN or object id>", "score": <0-100>}.'))
    if not 0 <= score <= 100 or not isinstance(revoked, bool) or not isinstance(skip, bool):
        return http_error(request, bad_request("score lies in 0..100; revoked and skip_wallet_rule are booleans."))
    if (issuer is not None and not isinstance(issuer, str)) or (kind is not None and not isinstance(kind, str)):
        return http_error(request, bad_request("issuer and type are strings."))
    emulator = _emulator(request)
    user = emulator.tenant.user(reference)
    if user is None:
        return http_error(request, resource_not_found(reference))
    credential = emulator.wallet_credential(
        user,
        score=float(score),
        issuer=cast(str | None, issuer),
        revoked=revoked,
        kind=cast(str | None, kind),
    )
    wanted = emulator.offered(presentation, credential)
    if wanted is None and skip:
        wanted = presentation.requested[0]
    if wanted is None:
        return http_error(
            request,
            GraphError(
                409,
                "NoMatchingCredential",
                "The wallet holds no credential that fits the request (type, accepted issuers, constraints): "
                "Authenticator would not offer it, and the service sends nothing.",
            ),
        )
    callback = emulator.outcome(presentation, wanted, credential)
    delivery = await _deliver(request.app, presentation, str(callback["requestStatus"]), callback)
    return http_json({**presentation.summary(), "callback": delivery.__dict__})


async def decline(request: web.Request) -> web.Response:
    """The user cancels in Authenticator: the service sends nothing (no such callback is documented)."""
    presentation = _open_request(request)
    if isinstance(presentation, web.Response):
        return presentation
    presentation.declined = True
    return http_json({**presentation.summary(), "callback": None})


async def expire(request: web.Request) -> web.Response:
    """The request runs out now: silently, as the service does."""
    presentation = _open_request(request)
    if isinstance(presentation, web.Response):
        return presentation
    presentation.status = RequestStatus.EXPIRED
    return http_json({**presentation.summary(), "callback": None})


async def register_app(request: web.Request) -> web.Response:
    """Another app registration in the sandbox tenant: `{"client_id", "client_secret", "roles": [...]}`."""
    body = await _json_object(request)
    if isinstance(body, web.Response):
        return body
    client_id, secret, roles = body.get("client_id"), body.get("client_secret"), body.get("roles", [])
    if not isinstance(client_id, str) or not client_id or not isinstance(secret, str) or not secret:
        return http_error(request, bad_request("client_id and client_secret are required strings."))
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        return http_error(request, bad_request("roles is a list of app role names."))
    app = App(client_id.lower(), secret, frozenset(cast(list[str], roles)))
    _emulator(request).apps[app.client_id] = app
    return http_json({"client_id": app.client_id, "roles": sorted(app.roles), "resource": REQUEST_SERVICE_APP_ID})


def _open_request(request: web.Request) -> PresentationRequest | web.Response:
    presentation = _emulator(request).request(request.match_info["request_id"])
    if presentation is None:
        return http_error(request, GraphError(404, "UnknownRequest", "No presentation request has that id."))
    if presentation.status not in (RequestStatus.CREATED, RequestStatus.RETRIEVED):
        return _conflict(request, presentation, f"it is {presentation.status.value}")
    return presentation


def _conflict(request: web.Request, presentation: PresentationRequest, why: str) -> web.Response:
    return http_error(
        request,
        GraphError(409, "RequestClosed", f"Presentation request {presentation.request_id} cannot do that: {why}."),
    )


async def _deliver(
    app: web.Application, presentation: PresentationRequest, event: str, body: Mapping[str, object]
) -> Delivery:
    """One POST to the callback with its headers copied verbatim; the receiver's status is kept, never retried."""
    headers = {**presentation.callback_headers, "Content-Type": "application/json"}
    try:
        async with app[CALLBACK_SESSION].post(
            presentation.callback_url, data=json.dumps(body), headers=headers
        ) as reply:
            await reply.read()
            delivery = Delivery(event, reply.status)
    except (aiohttp.ClientError, TimeoutError) as error:
        delivery = Delivery(event, None, type(error).__name__)
    presentation.deliveries.append(delivery)
    logger.info("verified id: %s for %s -> %s", event, presentation.request_id, delivery.status or delivery.error)
    return delivery


async def _json_object(request: web.Request) -> dict[str, object] | web.Response:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data: object = json.loads(raw)
    except ValueError:
        return http_error(request, bad_request("The body is not JSON."))
    if not isinstance(data, dict):
        return http_error(request, bad_request("The body must be a JSON object."))
    return cast(dict[str, object], data)
