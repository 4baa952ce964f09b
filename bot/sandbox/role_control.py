"""Control plane for roles: activate an eligible role the way PIM does (an active, time-bound assignment).

`POST /_sandbox/roles/activate` with `{"principalId": id, "roleDefinitionId": id, "minutes": N}` (and
`"directoryScopeId"` when the principal is eligible for that role at several scopes). 201 with the assignment
(`id`, `principalId`, `roleDefinitionId`, `directoryScopeId`, `startDateTime`, `endDateTime`); 400 with a sentence when
nothing is eligible, the role is already active, or the body is wrong. The activation starts now on the sandbox clock
and ends after N minutes (or when the eligibility ends, if sooner); a reset removes it.
"""

from __future__ import annotations

import json
from typing import cast

from aiohttp import web

from bot.sandbox.active_roles import ActivationRefused
from bot.sandbox.app_keys import SANDBOX_STATE
from bot.sandbox.clock import format_graph_datetime
from bot.sandbox.errors import bad_request
from bot.sandbox.http_responses import http_error, http_json
from bot.sandbox.tenant_records import ADMINISTRATIVE_UNIT_SCOPE_PREFIX, TENANT_SCOPE

_BODY_HELP = 'Send {"principalId": "<object id>", "roleDefinitionId": "<role template id>", "minutes": N}'


def setup_role_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/roles/activate", activate_role)


async def activate_role(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    try:
        body: object = json.loads(await request.read() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return http_error(request, bad_request(f"{_BODY_HELP}."))
    fields = cast(dict[str, object], body)
    principal_id, role_id = fields.get("principalId"), fields.get("roleDefinitionId")
    minutes, scope = fields.get("minutes"), fields.get("directoryScopeId")
    if not isinstance(principal_id, str) or not isinstance(role_id, str) or not principal_id or not role_id:
        return http_error(request, bad_request(f"{_BODY_HELP}: principalId and roleDefinitionId are required."))
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        return http_error(request, bad_request(f"{_BODY_HELP}: minutes must be a whole number."))
    if scope is not None and not (
        isinstance(scope, str) and (scope == TENANT_SCOPE or scope.startswith(ADMINISTRATIVE_UNIT_SCOPE_PREFIX))
    ):
        return http_error(request, bad_request("directoryScopeId must be '/' or '/administrativeUnits/<id>'."))
    try:
        activation = state.role_activations.activate(
            state.tenant,
            principal_id=principal_id,
            role_definition_id=role_id,
            directory_scope_id=_normalised_scope(scope),
            minutes=minutes,
            now=state.clock.now(),
        )
    except ActivationRefused as refused:
        return http_error(request, bad_request(str(refused), code="RoleActivationRefused"))
    return http_json(
        {
            "id": activation.id,
            "principalId": activation.principal_id,
            "roleDefinitionId": activation.role_definition_id,
            "directoryScopeId": activation.directory_scope_id,
            "startDateTime": format_graph_datetime(activation.start) if activation.start else None,
            "endDateTime": format_graph_datetime(activation.end) if activation.end else None,
        },
        status=201,
    )


def _normalised_scope(scope: object) -> str | None:
    if not isinstance(scope, str):
        return None
    if scope.startswith(ADMINISTRATIVE_UNIT_SCOPE_PREFIX):
        return ADMINISTRATIVE_UNIT_SCOPE_PREFIX + scope.removeprefix(ADMINISTRATIVE_UNIT_SCOPE_PREFIX).lower()
    return scope
