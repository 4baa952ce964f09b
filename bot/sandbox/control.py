"""The control plane under /_sandbox: state, reset, clock, faults, emulated sign-ins with a pass, and methods users
register.

Its JSON uses snake_case to keep it visibly apart from the Graph surface. Pass secrets never appear here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import cast

from aiohttp import web

from bot.sandbox.app_keys import SANDBOX_STATE
from bot.sandbox.clock import format_graph_datetime
from bot.sandbox.errors import GraphError, bad_request, resource_not_found
from bot.sandbox.faults import FaultRuleError, parse_fault_rule
from bot.sandbox.files import setup_file_routes
from bot.sandbox.graph_json import authentication_method_json
from bot.sandbox.http_responses import http_error, http_json
from bot.sandbox.passes import IssuedPass
from bot.sandbox.registrations import REGISTRABLE_TYPES
from bot.sandbox.role_control import setup_role_routes
from bot.sandbox.state import SandboxState
from bot.sandbox.tenant import TenantFileError, load_tenant

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox"


def setup_control_routes(app: web.Application) -> None:
    app.router.add_get(f"{CONTROL_PREFIX}/state", get_state)
    app.router.add_post(f"{CONTROL_PREFIX}/reset", reset)
    app.router.add_get(f"{CONTROL_PREFIX}/clock", get_clock)
    app.router.add_post(f"{CONTROL_PREFIX}/clock", advance_clock)
    app.router.add_get(f"{CONTROL_PREFIX}/faults", list_faults)
    app.router.add_post(f"{CONTROL_PREFIX}/faults", add_fault)
    app.router.add_delete(f"{CONTROL_PREFIX}/faults", clear_faults)
    app.router.add_post(f"{CONTROL_PREFIX}/passes/{{user}}/use", use_pass)
    app.router.add_post(f"{CONTROL_PREFIX}/users/{{user}}/methods", register_method)
    setup_file_routes(app, CONTROL_PREFIX)
    setup_role_routes(app, CONTROL_PREFIX)


async def get_state(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    tenant = state.tenant
    return http_json(
        {
            "tenant": {
                "id": tenant.tenant_id,
                "display_name": tenant.display_name,
                "domain": tenant.domain,
                "users": len(tenant.users),
                "groups": len(tenant.groups),
                "source_path": str(tenant.source_path) if tenant.source_path else None,
            },
            "clock": _clock_json(state),
            "counters": state.counters_snapshot(),
            "passes": [_pass_summary(state, issued) for issued in state.passes.all()],
            "faults": [rule.describe() for rule in state.faults.rules()],
        }
    )


async def reset(request: web.Request) -> web.Response:
    """Back to the tenant the sandbox started with; ``{"reread_file": true}`` re-reads its tenant file instead."""
    state = request.app[SANDBOX_STATE]
    reread_file = (await _json_object(request)).get("reread_file", False)
    if not isinstance(reread_file, bool):
        return http_error(request, bad_request("reread_file must be true or false."))
    tenant = state.tenant
    if reread_file:
        if tenant.source_path is None:
            return http_error(request, bad_request("This sandbox's tenant was not loaded from a file."))
        try:
            tenant = await asyncio.to_thread(load_tenant, tenant.source_path)
        except TenantFileError as error:
            return http_error(request, bad_request(f"Reset refused, the tenant file is invalid: {error}"))
    state.reset(tenant)
    logger.info("sandbox reset (tenant %s, file re-read: %s)", tenant.display_name, reread_file)
    return http_json({"reset": True, "reread_from": str(tenant.source_path) if reread_file else None})


async def get_clock(request: web.Request) -> web.Response:
    return http_json(_clock_json(request.app[SANDBOX_STATE]))


async def advance_clock(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    body = await _json_object(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return http_error(request, bad_request('Send {"seconds": N} with N >= 0; the clock only moves forward.'))
    state.clock.advance(seconds)
    return http_json(_clock_json(state))


async def list_faults(request: web.Request) -> web.Response:
    return http_json({"faults": [rule.describe() for rule in request.app[SANDBOX_STATE].faults.rules()]})


async def add_fault(request: web.Request) -> web.Response:
    try:
        rule = parse_fault_rule(await _json_object(request))
    except FaultRuleError as error:
        return http_error(request, bad_request(f"Invalid fault rule: {error}"))
    request.app[SANDBOX_STATE].faults.add(rule)
    return http_json(rule.describe(), status=201)


async def clear_faults(request: web.Request) -> web.Response:
    request.app[SANDBOX_STATE].faults.clear()
    return web.Response(status=204)


async def use_pass(request: web.Request) -> web.Response:
    """Emulates a sign-in with the user's pass; a one-time pass becomes OneTimeUsed."""
    state = request.app[SANDBOX_STATE]
    user = state.tenant.user(request.match_info["user"])
    if user is None:
        return http_error(request, resource_not_found(request.match_info["user"]))
    issued = state.passes.of_user(user.id)
    if issued is None:
        return http_error(request, GraphError(404, "NoPass", "The user has no Temporary Access Pass."))
    offered = (await _json_object(request)).get("temporaryAccessPass")
    if offered is not None and not (isinstance(offered, str) and issued.matches_secret(offered)):
        return http_error(request, GraphError(401, "PassMismatch", "That is not the user's Temporary Access Pass."))
    reason = state.usability_of(issued)
    if reason != "EnabledByPolicy":
        return http_error(request, GraphError(409, "PassNotUsable", f"The pass cannot be used: {reason}."))
    if issued.is_usable_once:
        issued.used = True
    return http_json(_pass_summary(state, issued))


async def register_method(request: web.Request) -> web.Response:
    """The user registers a sign-in method now (sandbox clock): ``{"type": "fido2"}``; for Microsoft Authenticator
    ``"passwordless": false`` leaves createdDateTime null, as Graph does for an app not set up for phone sign-in."""
    state = request.app[SANDBOX_STATE]
    user = state.tenant.user(request.match_info["user"])
    if user is None:
        return http_error(request, resource_not_found(request.match_info["user"]))
    body = await _json_object(request)
    method_type, passwordless = body.get("type"), body.get("passwordless", True)
    if not isinstance(method_type, str) or method_type not in REGISTRABLE_TYPES:
        return http_error(request, bad_request(f'Send {{"type": T}} with T one of {", ".join(REGISTRABLE_TYPES)}.'))
    if not isinstance(passwordless, bool):
        return http_error(request, bad_request("passwordless must be true or false."))
    method = state.registrations.register(user.id, method_type, at=state.clock.now(), passwordless=passwordless)
    return http_json(authentication_method_json(method), status=201)


def _clock_json(state: SandboxState) -> dict[str, object]:
    return {"now": format_graph_datetime(state.clock.now()), "offset_s": state.clock.offset.total_seconds()}


def _pass_summary(state: SandboxState, issued: IssuedPass) -> dict[str, object]:
    user = state.tenant.user(issued.user_id)
    reason = state.usability_of(issued)
    return {
        "id": issued.id,
        "user_id": issued.user_id,
        "user_principal_name": user.user_principal_name if user else None,
        "created": format_graph_datetime(issued.created),
        "start": format_graph_datetime(issued.start),
        "lifetime_in_minutes": issued.lifetime_in_minutes,
        "is_usable_once": issued.is_usable_once,
        "used": issued.used,
        "is_usable": reason == "EnabledByPolicy",
        "usability_reason": reason,
    }


async def _json_object(request: web.Request) -> dict[str, object]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data: object = json.loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(reason="the body is not JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return cast(dict[str, object], data)
