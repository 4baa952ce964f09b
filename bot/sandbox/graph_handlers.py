"""Handlers for the Graph v1.0 endpoints the bot calls, with Graph's semantics (see graph-tap.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.sandbox.active_roles import state_assignments
from bot.sandbox.clock import parse_graph_datetime
from bot.sandbox.delegated_rights import authenticate, check_pass_write
from bot.sandbox.errors import (
    advanced_query_required,
    bad_request,
    guest_cannot_have_pass,
    invalid_lifetime,
    one_time_pass_required,
    pass_not_found,
    policy_forbids_pass,
    resource_not_found,
)
from bot.sandbox.graph_group_handlers import list_groups, list_transitive_members, users_in_filter
from bot.sandbox.graph_json import (
    authentication_method_json,
    directory_role_json,
    group_json,
    pass_json,
    tap_policy_json,
    user_json,
)
from bot.sandbox.graph_role_handlers import (
    list_group_eligibility_instances,
    list_group_owners,
    list_owned_groups,
    list_role_assignments,
    list_role_eligibility_instances,
    list_role_eligibility_schedules,
)
from bot.sandbox.graph_unit_handlers import get_unit, list_member_of_units, list_unit_members, list_units
from bot.sandbox.paging import page
from bot.sandbox.passes import IssuedPass
from bot.sandbox.registrations import with_created_date_time
from bot.sandbox.routing import GraphRequest, GraphResponse, GraphRouter, no_content, ok
from bot.sandbox.state import SandboxState
from bot.sandbox.tenant import TENANT_SCOPE, RoleDefinition, TenantGroup, TenantUser
from bot.sandbox.user_search import SEARCH_NEEDS_HEADER, filter_test, search_test

CHECK_MEMBER_GROUPS_LIMIT = 20
TAP_WRITABLE_PROPERTIES = frozenset({"startDateTime", "lifetimeInMinutes", "isUsableOnce"})
TAP_READ_ONLY_PROPERTIES = frozenset(
    {"id", "temporaryAccessPass", "createdDateTime", "isUsable", "methodUsabilityReason"}
)
_ASSIGNABLE_FILTER = re.compile(r"isAssignableToRole\s+eq\s+(?P<value>true|false)", re.IGNORECASE)

Params = Mapping[str, str]


def build_graph_router() -> GraphRouter:
    router = GraphRouter()
    router.add("GET", "/users", list_users)
    router.add("GET", "/users/{user}", get_user)
    router.add("GET", "/users/{user}/manager", get_manager)
    router.add("GET", "/users/{user}/directReports", list_direct_reports)
    router.add("GET", "/users/{user}/directReports/microsoft.graph.user", list_direct_report_users)
    router.add("GET", "/users/{user}/directReports/graph.user", list_direct_report_users)
    router.add("POST", "/users/{user}/checkMemberGroups", check_member_groups)
    router.add("GET", "/users/{user}/transitiveMemberOf", list_transitive_member_of)
    # The OData cast to groups only; msgraph-sdk spells it with Graph's short alias.
    router.add("GET", "/users/{user}/transitiveMemberOf/microsoft.graph.group", list_transitive_groups)
    router.add("GET", "/users/{user}/transitiveMemberOf/graph.group", list_transitive_groups)
    router.add("GET", "/groups", list_groups)
    router.add("GET", "/groups/{group}", get_group)
    router.add("GET", "/groups/{group}/transitiveMembers", list_transitive_members)
    router.add("GET", "/groups/{group}/transitiveMembers/microsoft.graph.user", list_transitive_members)
    router.add("GET", "/groups/{group}/transitiveMembers/graph.user", list_transitive_members)
    router.add("GET", "/users/{user}/ownedObjects/microsoft.graph.group", list_owned_groups)
    router.add("GET", "/users/{user}/ownedObjects/graph.group", list_owned_groups)
    router.add("GET", "/groups/{group}/owners", list_group_owners)
    router.add("GET", "/groups/{group}/owners/microsoft.graph.user", list_group_owners)
    router.add("GET", "/groups/{group}/owners/graph.user", list_group_owners)
    router.add("GET", "/roleManagement/directory/roleAssignments", list_role_assignments)
    router.add("GET", "/roleManagement/directory/roleEligibilityScheduleInstances", list_role_eligibility_instances)
    router.add("GET", "/roleManagement/directory/roleEligibilitySchedules", list_role_eligibility_schedules)
    router.add("GET", "/users/{user}/memberOf/microsoft.graph.administrativeUnit", list_member_of_units)
    router.add("GET", "/users/{user}/memberOf/graph.administrativeUnit", list_member_of_units)
    router.add("GET", "/directory/administrativeUnits", list_units)
    router.add("GET", "/directory/administrativeUnits/{unit}", get_unit)
    router.add("GET", "/directory/administrativeUnits/{unit}/members", list_unit_members)
    pim_groups = "/identityGovernance/privilegedAccess/group"
    router.add("GET", f"{pim_groups}/eligibilityScheduleInstances", list_group_eligibility_instances)
    router.add("GET", "/users/{user}/authentication/methods", list_authentication_methods)
    passes = "/users/{user}/authentication/temporaryAccessPassMethods"
    router.add("GET", passes, list_passes)
    router.add("POST", passes, create_pass)
    router.add("GET", passes + "/{method}", get_pass)
    router.add("DELETE", passes + "/{method}", delete_pass)
    router.add(
        "GET",
        "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{configuration}",
        get_method_configuration,
    )
    return router


# --- Users and groups ----------------------------------------------------------------------------------


def list_users(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`$top` (1..999, default 100), `$select`, `$search` (only with `ConsistencyLevel: eventual`, as Graph),
    `$filter=startswith(...)` or `id in (…)` / `userPrincipalName in (…)` (at most 15 values), `$count=true`
    (honoured with the header, silently ignored without it), paged with `@odata.nextLink`. See
    bot/sandbox/user_search.py for the syntax and what each property matches."""
    eventual = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
    users: list[TenantUser] = list(state.tenant.users)
    search = request.query.get("$search")
    if search is not None:
        if not eventual:
            raise bad_request(SEARCH_NEEDS_HEADER, code="Request_UnsupportedQuery")
        matches = search_test(search)
        users = [user for user in users if matches(user)]
    filter_text = request.query.get("$filter")
    named = users_in_filter(state, filter_text) if filter_text is not None else None
    if named is not None:
        named_ids = {user.id for user in named}
        users = [user for user in users if user.id in named_ids]
    elif filter_text is not None:
        matches = filter_test(filter_text)
        users = [user for user in users if matches(user)]
    counted = eventual and request.query.get("$count", "").lower() == "true"
    select = request.query.get("$select")
    rendered = [user_json(user, select) for user in users]
    return ok(_page(request, rendered, count=len(rendered) if counted else None))


def list_direct_report_users(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`/users/{id}/directReports/microsoft.graph.user`: the OData cast to users, paged, with `$select`."""
    reports = state.tenant.direct_reports_of(_user_or_404(state, params["user"]))
    select = request.query.get("$select")
    return ok(_page(request, [user_json(report, select, with_odata_type=True) for report in reports]))


def get_user(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    user = _user_or_404(state, params["user"])
    return ok(user_json(user, request.query.get("$select")))


def get_manager(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    manager = state.tenant.manager_of(_user_or_404(state, params["user"]))
    if manager is None:
        raise resource_not_found("manager")
    return ok(user_json(manager, request.query.get("$select"), with_odata_type=True))


def list_direct_reports(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    reports = state.tenant.direct_reports_of(_user_or_404(state, params["user"]))
    select = request.query.get("$select")
    return ok({"value": [user_json(report, select, with_odata_type=True) for report in reports]})


def check_member_groups(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    user = _user_or_404(state, params["user"])
    group_ids = request.json_object().get("groupIds")
    if not isinstance(group_ids, list) or not all(isinstance(item, str) for item in group_ids):
        raise bad_request("groupIds must be a list of group ids.", code="Request_BadRequest")
    requested: list[str] = [str(item).lower() for item in group_ids]
    if len(requested) > CHECK_MEMBER_GROUPS_LIMIT:
        raise bad_request(
            f"checkMemberGroups accepts at most {CHECK_MEMBER_GROUPS_LIMIT} groupIds; got {len(requested)}.",
            code="Request_BadRequest",
        )
    member_of = state.tenant.transitive_group_ids(user.id)
    return ok({"value": [group_id for group_id in dict.fromkeys(requested) if group_id in member_of]})


def list_transitive_member_of(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    user = _user_or_404(state, params["user"])
    groups = [group_json(group, None, with_odata_type=True) for group in _transitive_groups(state, user)]
    # Like Graph, role holders also see the activated directoryRole objects among their memberships.
    roles = [directory_role_json(state.tenant, role) for role in _roles_held(state, user)]
    return ok({"value": groups + roles})


def list_transitive_groups(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """Groups only, paged like Graph ($top 1..999, default 100, then @odata.nextLink).

    `$filter` (only `isAssignableToRole eq true|false`) and `$count` are advanced queries: Graph requires the
    header `ConsistencyLevel: eventual` with `$count=true` for them.
    """
    user = _user_or_404(state, params["user"])
    select = request.query.get("$select")
    advanced = any(name in request.query for name in ("$filter", "$count", "$search", "$orderby"))
    counted = request.query.get("$count", "").lower() == "true"
    if advanced and (request.headers.get("ConsistencyLevel", "").lower() != "eventual" or not counted):
        raise advanced_query_required()
    groups = _transitive_groups(state, user)
    filter_text = request.query.get("$filter")
    if filter_text is not None:
        matched = _ASSIGNABLE_FILTER.fullmatch(filter_text.strip())
        if matched is None:
            raise bad_request(
                f"The sandbox supports only $filter=isAssignableToRole eq true on memberships; got '{filter_text}'."
            )
        wanted = matched["value"].lower() == "true"
        groups = [group for group in groups if group.is_assignable_to_role == wanted]
    rendered = [group_json(group, select, with_odata_type=True) for group in groups]
    return ok(_page(request, rendered, count=len(rendered) if counted else None))


def get_group(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    group = state.tenant.group(params["group"])
    if group is None:
        raise resource_not_found(params["group"])
    return ok(group_json(group, request.query.get("$select")))


def get_method_configuration(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    if params["configuration"].lower() != "temporaryaccesspass":
        raise resource_not_found(params["configuration"])
    return ok(tap_policy_json(state.tenant.tap_policy))


# --- Authentication methods and passes --------------------------------------------------------------------


def list_authentication_methods(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    user = _user_or_404(state, params["user"])
    state.counters.method_list_reads[user.id] = state.counters.method_list_reads.get(user.id, 0) + 1
    listed = [with_created_date_time(method) for method in user.methods_with_password]
    methods = [authentication_method_json(method) for method in (*listed, *state.registrations.of_user(user.id))]
    issued = state.passes.of_user(user.id)
    if issued is not None:
        methods.append(pass_json(issued, state.usability_of(issued), with_odata_type=True))
    return ok({"value": methods})


def list_passes(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    user = _user_or_404(state, params["user"])
    issued = state.passes.of_user(user.id)
    return ok({"value": [] if issued is None else [pass_json(issued, state.usability_of(issued))]})


def get_pass(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    user = _user_or_404(state, params["user"])
    issued = _pass_or_404(state, user, params["method"])
    return ok(pass_json(issued, state.usability_of(issued)))


def delete_pass(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    caller = authenticate(state, request)
    user = _user_or_404(state, params["user"])
    check_pass_write(state, caller, user)
    if not state.passes.remove(user.id, params["method"]):
        raise pass_not_found(params["method"])
    return no_content()


@dataclass(frozen=True)
class _PassRequest:
    start: datetime | None
    lifetime_in_minutes: int | None
    is_usable_once: bool | None


def create_pass(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    caller = authenticate(state, request)
    user = _user_or_404(state, params["user"])
    check_pass_write(state, caller, user)
    wanted = _read_pass_request(request.json_object())
    policy = state.tenant.tap_policy
    if user.is_guest:
        raise guest_cannot_have_pass()
    # Disabled accounts are accepted, as Graph does; refusing them is the bot's decision.
    if not state.pass_allowed_by_policy(user):
        raise policy_forbids_pass()

    lifetime = policy.default_lifetime_in_minutes if wanted.lifetime_in_minutes is None else wanted.lifetime_in_minutes
    # The policy range always lies inside Graph's absolute 10..43200 (TapPolicy enforces it), so this
    # single check also refuses lifetimes outside the absolute limits, with the tenant's own numbers.
    if not policy.minimum_lifetime_in_minutes <= lifetime <= policy.maximum_lifetime_in_minutes:
        raise invalid_lifetime(policy.minimum_lifetime_in_minutes, policy.maximum_lifetime_in_minutes)
    is_usable_once = policy.is_usable_once if wanted.is_usable_once is None else wanted.is_usable_once
    if policy.is_usable_once and not is_usable_once:
        raise one_time_pass_required()

    now = state.clock.now()
    start = now if wanted.start is None or wanted.start < now else wanted.start
    issued, secret = state.passes.issue(
        user.id,
        now=now,
        start=start,
        lifetime_in_minutes=lifetime,
        is_usable_once=is_usable_once,
        length=policy.default_length,
    )
    return ok(pass_json(issued, state.usability_of(issued), secret=secret), status=201)


def _read_pass_request(body: Mapping[str, object]) -> _PassRequest:
    for name in body:
        if name.startswith("@") or name in TAP_WRITABLE_PROPERTIES | TAP_READ_ONLY_PROPERTIES:
            continue
        raise bad_request(
            f"The property '{name}' does not exist on type "
            "'microsoft.graph.temporaryAccessPassAuthenticationMethod'. Make sure to only use property "
            "names that are defined by the type or mark the type as open type."
        )
    start_text = body.get("startDateTime")
    lifetime = body.get("lifetimeInMinutes")
    is_usable_once = body.get("isUsableOnce")
    start: datetime | None = None
    if start_text is not None:
        if not isinstance(start_text, str):
            raise _not_convertible(start_text, "Edm.DateTimeOffset")
        try:
            start = parse_graph_datetime(start_text)
        except ValueError:
            raise _not_convertible(start_text, "Edm.DateTimeOffset") from None
    if lifetime is not None and (not isinstance(lifetime, int) or isinstance(lifetime, bool)):
        raise _not_convertible(lifetime, "Edm.Int32")
    if is_usable_once is not None and not isinstance(is_usable_once, bool):
        raise _not_convertible(is_usable_once, "Edm.Boolean")
    return _PassRequest(start, lifetime, is_usable_once)


def _not_convertible(value: object, edm_type: str) -> Exception:
    return bad_request(f"Cannot convert the literal '{value}' to the expected type '{edm_type}'.")


# --- Lookups ------------------------------------------------------------------------------------------------


def _user_or_404(state: SandboxState, id_or_user_principal_name: str) -> TenantUser:
    user = state.tenant.user(id_or_user_principal_name)
    if user is None:
        raise resource_not_found(id_or_user_principal_name)
    return user


def _pass_or_404(state: SandboxState, user: TenantUser, method_id: str) -> IssuedPass:
    issued = state.passes.of_user(user.id)
    if issued is None or issued.id != method_id.lower():
        raise pass_not_found(method_id)
    return issued


def _transitive_groups(state: SandboxState, user: TenantUser) -> list[TenantGroup]:
    member_of = state.tenant.transitive_group_ids(user.id)
    return [group for group in state.tenant.groups if group.id in member_of]


def _page(request: GraphRequest, items: Sequence[object], *, count: int | None = None) -> dict[str, object]:
    return page(request, items, count=count)


def _roles_held(state: SandboxState, user: TenantUser) -> list[RoleDefinition]:
    """Tenant-wide active roles, as the activated directoryRole objects among memberships (scoped ones are not)."""
    principals = [user.id, *state.tenant.transitive_group_ids(user.id)]
    held: dict[str, RoleDefinition] = {}
    for assignment in state_assignments(state, principals):
        if assignment.directory_scope_id != TENANT_SCOPE:
            continue
        definition = state.tenant.role_definition(assignment.role_definition_id)
        if definition is not None:
            held[definition.id] = definition
    return list(held.values())
