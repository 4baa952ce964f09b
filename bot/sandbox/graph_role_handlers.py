"""Handlers for Graph's role and PIM endpoints: active role assignments, role eligibilities and PIM for Groups, and
the ownership reads (a user's owned groups, a group's owners): an owner of a role-holding group can add themselves."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.sandbox.active_roles import state_assignments
from bot.sandbox.errors import (
    MAX_IN_FILTER_VALUES,
    advanced_query_required,
    bad_request,
    pim_group_filter_required,
    premium_license_required,
    resource_not_found,
)
from bot.sandbox.graph_json import (
    group_eligibility_instance_json,
    group_json,
    role_assignment_json,
    role_eligibility_instance_json,
    role_eligibility_schedule_json,
    user_json,
)
from bot.sandbox.paging import page
from bot.sandbox.routing import GraphRequest, GraphResponse, ok
from bot.sandbox.state import SandboxState

_PRINCIPAL_FILTER = re.compile(r"principalId\s+eq\s+'(?P<principal_id>[^']*)'", re.IGNORECASE)
_PRINCIPAL_IN_FILTER = re.compile(r"principalId\s+in\s+\((?P<values>\s*'[^']*'(?:\s*,\s*'[^']*')*\s*)\)", re.IGNORECASE)
_QUOTED = re.compile(r"'([^']*)'")
_GROUP_FILTER = re.compile(r"groupId\s+eq\s+'(?P<group_id>[^']*)'", re.IGNORECASE)
_ASSIGNABLE_FILTER = re.compile(r"\s*isAssignableToRole\s+eq\s+(?P<value>true|false)\s*", re.IGNORECASE)
# Schedule instances always carry a start; eligibilities the tenant file gives none for started long ago.
SCHEDULE_START = datetime(2025, 1, 1, tzinfo=UTC)

Params = Mapping[str, str]


def list_role_assignments(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """Assignments active now at every scope: permanent ones, time-bound ones inside their window, and PIM
    activations until they end. `principalId eq` or `principalId in (…)` match the principal itself only (a group's
    members are not expanded, as in Graph). Without a filter: every active assignment of the tenant. Paged."""
    expand = request.query.get("$expand")
    if expand is not None and expand.strip().lower() != "roledefinition":
        raise bad_request("The sandbox supports only $expand=roleDefinition on roleAssignments.")
    filter_text = request.query.get("$filter")
    if filter_text is None:
        assignments = state_assignments(state)
    else:
        principal_ids = _principal_ids(filter_text, allow_in=True, collection="roleAssignments")
        in_force = state_assignments(state, principal_ids)
        assignments = tuple(
            assignment for principal in principal_ids for assignment in in_force if assignment.principal_id == principal
        )
    rendered = [
        role_assignment_json(
            assignment, state.tenant.role_definition(assignment.role_definition_id) if expand is not None else None
        )
        for assignment in assignments
    ]
    return ok(page(request, rendered))


def list_role_eligibility_instances(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """PIM eligibilities in force now; `principalId` supports only `eq` here (Graph: eq, ne), no `in`."""
    if not state.tenant.pim_licensed:
        raise premium_license_required()
    expand = request.query.get("$expand")
    if expand is not None and expand.strip().lower() != "roledefinition":
        raise bad_request("The sandbox supports only $expand=roleDefinition on roleEligibilityScheduleInstances.")
    now = state.clock.now()
    filter_text = request.query.get("$filter")
    if filter_text is None:
        eligibilities = tuple(item for item in state.tenant.role_eligibilities if item.is_current(now))
    else:
        [principal_id] = _principal_ids(filter_text, allow_in=False, collection="roleEligibilityScheduleInstances")
        eligibilities = state.tenant.role_eligibilities_of(principal_id, now)
    rendered = [
        role_eligibility_instance_json(
            item,
            state.tenant.role_definition(item.role_definition_id) if expand is not None else None,
            SCHEDULE_START,
        )
        for item in eligibilities
    ]
    return ok(page(request, rendered))


def list_role_eligibility_schedules(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """PIM eligibility schedules (unifiedRoleEligibilitySchedule) that have not ended: in force now or starting later.
    `principalId eq` only, as on the instances; `$expand=roleDefinition`. An activation does not consume the
    eligibility: it stays listed while the role is active and after the activation ends."""
    if not state.tenant.pim_licensed:
        raise premium_license_required()
    expand = request.query.get("$expand")
    if expand is not None and expand.strip().lower() != "roledefinition":
        raise bad_request("The sandbox supports only $expand=roleDefinition on roleEligibilitySchedules.")
    now = state.clock.now()
    filter_text = request.query.get("$filter")
    wanted = None
    if filter_text is not None:
        [wanted] = _principal_ids(filter_text, allow_in=False, collection="roleEligibilitySchedules")
    schedules = [
        item
        for item in state.tenant.role_eligibilities
        if (item.end is None or now < item.end) and (wanted is None or item.principal_id == wanted)
    ]
    rendered = [
        role_eligibility_schedule_json(
            item,
            state.tenant.role_definition(item.role_definition_id) if expand is not None else None,
            SCHEDULE_START,
        )
        for item in schedules
    ]
    return ok(page(request, rendered))


def list_group_eligibility_instances(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """PIM for Groups: eligible memberships and ownerships in force now. Graph requires `$filter` (eq) on
    principalId or groupId; `$expand=group` embeds the group."""
    if not state.tenant.pim_licensed:
        raise premium_license_required()
    expand = request.query.get("$expand")
    if expand is not None and expand.strip().lower() != "group":
        raise bad_request("The sandbox supports only $expand=group on eligibilityScheduleInstances.")
    filter_text = (request.query.get("$filter") or "").strip()
    by_principal = _PRINCIPAL_FILTER.fullmatch(filter_text)
    by_group = _GROUP_FILTER.fullmatch(filter_text)
    now = state.clock.now()
    if by_principal is not None:
        found = state.tenant.group_eligibilities_where(now, principal_id=by_principal["principal_id"].lower())
    elif by_group is not None:
        found = state.tenant.group_eligibilities_where(now, group_id=by_group["group_id"].lower())
    else:
        raise pim_group_filter_required()
    return ok(
        {
            "value": [
                group_eligibility_instance_json(
                    item, state.tenant.group(item.group_id) if expand is not None else None, SCHEDULE_START
                )
                for item in found
            ]
        }
    )


def list_owned_groups(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`GET /users/{id}/ownedObjects/microsoft.graph.group` (groups only in this sandbox): `$select`, paged.
    `$filter=isAssignableToRole eq true|false` is an advanced query, as on memberships: it needs
    `ConsistencyLevel: eventual` and `$count=true`."""
    user = state.tenant.user(params["user"])
    if user is None:
        raise resource_not_found(params["user"])
    groups = list(state.tenant.owned_groups(user.id))
    filter_text = request.query.get("$filter")
    counted = request.query.get("$count", "").lower() == "true"
    eventual = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
    if (filter_text is not None or "$count" in request.query) and not (eventual and counted):
        raise advanced_query_required()
    if filter_text is not None:
        matched = _ASSIGNABLE_FILTER.fullmatch(filter_text)
        if matched is None:
            raise bad_request(
                f"The sandbox supports only $filter=isAssignableToRole eq true on ownedObjects; got '{filter_text}'."
            )
        wanted = matched["value"].lower() == "true"
        groups = [group for group in groups if group.is_assignable_to_role == wanted]
    rendered = [group_json(group, request.query.get("$select"), with_odata_type=True) for group in groups]
    return ok(page(request, rendered, count=len(rendered) if counted else None))


def list_group_owners(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`GET /groups/{id}/owners` and its cast `/microsoft.graph.user` (owners are users in this sandbox): `$select`,
    paged ($top 1..999, default 100, then `@odata.nextLink`)."""
    group = state.tenant.group(params["group"])
    if group is None:
        raise resource_not_found(params["group"])
    select = request.query.get("$select")
    owners = [user_json(user, select, with_odata_type=True) for user in state.tenant.group_owners(group.id)]
    return ok(page(request, owners))


def _principal_ids(filter_text: str, *, allow_in: bool, collection: str) -> list[str]:
    text = filter_text.strip()
    single = _PRINCIPAL_FILTER.fullmatch(text)
    if single is not None:
        return [single["principal_id"].lower()]
    several = _PRINCIPAL_IN_FILTER.fullmatch(text) if allow_in else None
    if several is None:
        supported = "principalId eq '<id>' or principalId in ('<id>', …)" if allow_in else "principalId eq '<id>'"
        raise bad_request(f"The sandbox supports only $filter={supported} on {collection}; got '{filter_text}'.")
    values = [value.lower() for value in _QUOTED.findall(several["values"])]
    if len(values) > MAX_IN_FILTER_VALUES:
        raise bad_request(f"Too many values in the 'in' operator: at most {MAX_IN_FILTER_VALUES}.")
    return list(dict.fromkeys(values))
