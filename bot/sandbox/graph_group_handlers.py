"""Handlers for the tenant-wide reads a bulk job's snapshot makes: users many at a time (`$filter=id in (…)` or
`userPrincipalName in (…)`), the role-assignable groups, and a group's transitive members — answered, paged and
refused the way Graph documents them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.sandbox.errors import MAX_IN_FILTER_VALUES, advanced_query_required, bad_request, resource_not_found
from bot.sandbox.graph_json import group_json, user_json
from bot.sandbox.paging import page
from bot.sandbox.routing import GraphRequest, GraphResponse, ok
from bot.sandbox.state import SandboxState
from bot.sandbox.tenant import TenantUser

Params = Mapping[str, str]

# `id in ('…', …)` or `userPrincipalName in ('…', …)`; a quote inside a value is doubled, as OData writes it.
_IN_FILTER = re.compile(
    r"\s*(?P<property>id|userPrincipalName)\s+in\s+\((?P<values>\s*'(?:[^']|'')*'(?:\s*,\s*'(?:[^']|'')*')*\s*)\)\s*",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_ASSIGNABLE_FILTER = re.compile(r"\s*isAssignableToRole\s+eq\s+(?P<value>true|false)\s*", re.IGNORECASE)


def users_in_filter(state: SandboxState, filter_text: str) -> list[TenantUser] | None:
    """The users an `in` filter names (those that exist, in the tenant's order); None when the filter is no `in`.

    Graph limits `in` to 15 values by default (Microsoft Graph known issues, "Some limitations apply to query
    parameters": "When using the "in" operator, the request is limited to 15 expressions in the filter clause by
    default"); more is a 400 here, as with `principalId in` on role assignments (bot/sandbox/errors.py).
    """
    matched = _IN_FILTER.fullmatch(filter_text)
    if matched is None:
        return None
    values = [value.replace("''", "'").lower() for value in _QUOTED.findall(matched["values"])]
    if len(values) > MAX_IN_FILTER_VALUES:
        raise bad_request(f"Too many values in the 'in' operator: at most {MAX_IN_FILTER_VALUES}.")
    wanted = set(values)
    by_id = matched["property"].lower() == "id"
    return [user for user in state.tenant.users if (user.id if by_id else user.user_principal_name.lower()) in wanted]


def list_groups(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`GET /groups`: `$select`, paged; `$filter=isAssignableToRole eq true|false` is sent as an advanced query
    (`ConsistencyLevel: eventual` and `$count=true`), like the same filter on memberships."""
    groups = list(state.tenant.groups)
    filter_text = request.query.get("$filter")
    counted = request.query.get("$count", "").lower() == "true"
    eventual = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
    if filter_text is not None:
        if not (eventual and counted):
            raise advanced_query_required()
        matched = _ASSIGNABLE_FILTER.fullmatch(filter_text)
        if matched is None:
            raise bad_request(
                f"The sandbox supports only $filter=isAssignableToRole eq true on groups; got '{filter_text}'."
            )
        wanted = matched["value"].lower() == "true"
        groups = [group for group in groups if group.is_assignable_to_role == wanted]
    rendered = [group_json(group, request.query.get("$select"), with_odata_type=True) for group in groups]
    return ok(page(request, rendered, count=len(rendered) if counted and eventual else None))


def list_transitive_members(state: SandboxState, request: GraphRequest, params: Params) -> GraphResponse:
    """`GET /groups/{id}/transitiveMembers` (users only in this sandbox, plus the nested groups themselves) and its
    cast `/microsoft.graph.user`: `$select`, paged ($top 1..999, default 100, then `@odata.nextLink`)."""
    group = state.tenant.group(params["group"])
    if group is None:
        raise resource_not_found(params["group"])
    select = request.query.get("$select")
    members: list[object] = [
        user_json(user, select, with_odata_type=True) for user in state.tenant.transitive_user_members(group.id)
    ]
    if not request.path.lower().rstrip("/").endswith("user"):
        nested = [other for other in state.tenant.groups if group.id in state.tenant.transitive_group_ids(other.id)]
        members += [group_json(other, select, with_odata_type=True) for other in nested]
    return ok(page(request, members))
