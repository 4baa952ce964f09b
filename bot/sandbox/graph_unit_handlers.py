"""Handlers for administrative units: a user's units (`memberOf` cast to administrativeUnit), a unit, its members.

A unit holds users only in this sandbox; `isMemberManagementRestricted` is read by the rights check on pass writes
(bot/sandbox/delegated_rights.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.sandbox.errors import resource_not_found
from bot.sandbox.graph_json import administrative_unit_json, user_json
from bot.sandbox.paging import page
from bot.sandbox.routing import GraphRequest, GraphResponse, ok
from bot.sandbox.state import SandboxState
from bot.sandbox.tenant_records import AdministrativeUnit

Params = Mapping[str, str]


def list_member_of_units(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`GET /users/{id}/memberOf/microsoft.graph.administrativeUnit`: the units the user is a member of, with
    `$select`, paged ($top 1..999, default 100, then `@odata.nextLink`)."""
    user = state.tenant.user(params["user"])
    if user is None:
        raise resource_not_found(params["user"])
    select = request.query.get("$select")
    units = state.tenant.administrative_units_of(user.id)
    return ok(page(request, [administrative_unit_json(unit, select, with_odata_type=True) for unit in units]))


def list_units(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    select = request.query.get("$select")
    return ok(page(request, [administrative_unit_json(unit, select) for unit in state.tenant.administrative_units]))


def get_unit(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    return ok(administrative_unit_json(_unit_or_404(state, params["unit"]), request.query.get("$select")))


def list_unit_members(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    unit = _unit_or_404(state, params["unit"])
    select = request.query.get("$select")
    members = [user for user in state.tenant.users if user.id in unit.member_ids]
    return ok(page(request, [user_json(user, select, with_odata_type=True) for user in members]))


def _unit_or_404(state: SandboxState, unit_id: str) -> AdministrativeUnit:
    unit = state.tenant.administrative_unit(unit_id)
    if unit is None:
        raise resource_not_found(unit_id)
    return unit
