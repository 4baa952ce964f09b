"""The tenant-wide reads a bulk job's snapshot makes, answered as Graph does: users by `id in` / `userPrincipalName in`
(at most 15 values), role assignments and eligibilities listed for the whole tenant page by page, the role-assignable
groups (an advanced query), a group's transitive members page by page; each counted by the throttling model."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession

from bot.sandbox import DEMO_TENANT_PATH, SandboxOptions, parse_tenant
from bot.sandbox.throttle import request_cost
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import (
    ADELE_ID,
    CHRISTIE_ID,
    HELPDESK_ADMINS_ID,
    HENRIETTA_ID,
    IRVIN_ID,
    PARIS_HELPDESK_ID,
    SECURITY_RESPONDERS_ID,
    call,
)

EVENTUAL = {"ConsistencyLevel": "eventual"}
PROTECTED = "bd7c3ef1-9245-4256-8aac-1e552b66595b"
BREAKGLASS_ID = "1c52bf3f-00c5-4e70-8e02-8f6e59f2438f"
SERVICE_ACCOUNTS = "5e7a1c3b-0000-4000-8000-00000000a001"


def demo_data() -> dict[str, Any]:
    return json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def test_users_by_id_or_name_fifteen_at_most(http: ClientSession) -> None:
    users = demo_data()["users"]
    ids = ", ".join(f"'{user['id']}'" for user in users[:15])
    by_id = await call(http, "GET", f"/v1.0/users?$filter=id in ({ids})&$select=id,accountEnabled")
    names = ", ".join(f"'{user['userPrincipalName'].upper()}'" for user in users[:3]) + ", 'nobody@contoso.com'"
    by_name = await call(http, "GET", f"/v1.0/users?$filter=userPrincipalName in ({names})&$select=id")
    sixteen = ", ".join(f"'{user['id']}'" for user in users[:16])
    too_many = await call(http, "GET", f"/v1.0/users?$filter=id in ({sixteen})")

    assert by_id.status == 200 and [user["id"] for user in by_id.body["value"]] == [user["id"] for user in users[:15]]
    assert all(set(user) == {"id", "accountEnabled"} for user in by_id.body["value"])
    assert by_name.status == 200 and [user["id"] for user in by_name.body["value"]] == [u["id"] for u in users[:3]]
    assert too_many.status == 400 and "at most 15" in too_many.error["message"]


async def test_role_assignments_and_eligibilities_are_listed_tenant_wide_page_by_page(http: ClientSession) -> None:
    first = await call(http, "GET", "/v1.0/roleManagement/directory/roleAssignments?$expand=roleDefinition&$top=2")
    assert first.status == 200 and len(first.body["value"]) == 2
    second = await call(http, "GET", path_of(first.body["@odata.nextLink"]))
    assignments = [*first.body["value"], *second.body["value"]]
    while "@odata.nextLink" in second.body:
        second = await call(http, "GET", path_of(second.body["@odata.nextLink"]))
        assignments += second.body["value"]
    principals = {item["principalId"] for item in assignments}
    assert {HELPDESK_ADMINS_ID, PARIS_HELPDESK_ID} <= principals and CHRISTIE_ID not in principals
    assert all(item["roleDefinition"]["displayName"] for item in assignments)

    eligible = await call(http, "GET", "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances?$top=1")
    assert len(eligible.body["value"]) == 1 and "@odata.nextLink" in eligible.body
    rest = await call(http, "GET", path_of(eligible.body["@odata.nextLink"]))
    assert {item["principalId"] for item in [*eligible.body["value"], *rest.body["value"]]} == {
        HENRIETTA_ID,
        SECURITY_RESPONDERS_ID,
    }
    assert IRVIN_ID not in str(rest.body), "a group's members are not expanded"


async def test_role_assignable_groups_are_an_advanced_query(http: ClientSession) -> None:
    query = "/v1.0/groups?$filter=isAssignableToRole eq true&$count=true&$select=id,displayName"
    found = await call(http, "GET", query, headers=EVENTUAL)
    without_header = await call(http, "GET", query)
    assert found.status == 200 and found.body["@odata.count"] == 3
    assert {group["id"] for group in found.body["value"]} == {
        HELPDESK_ADMINS_ID,
        PARIS_HELPDESK_ID,
        SECURITY_RESPONDERS_ID,
    }
    assert without_header.status == 400 and without_header.error["code"] == "Request_UnsupportedQuery"


async def test_transitive_members_include_nested_groups_and_are_paged(start: StartSandbox) -> None:
    data = demo_data()
    data["groups"].append({"id": SERVICE_ACCOUNTS, "displayName": "Service accounts", "members": [ADELE_ID]})
    next(group for group in data["groups"] if group["id"] == PROTECTED)["members"].append(SERVICE_ACCOUNTS)
    sandbox = await start(parse_tenant(data))
    async with ClientSession(base_url=sandbox.root_url) as http:
        users_only = f"/v1.0/groups/{PROTECTED}/transitiveMembers/graph.user?$select=id&$top=1"
        first = await call(http, "GET", users_only)
        second = await call(http, "GET", path_of(first.body["@odata.nextLink"]))
        everything = await call(http, "GET", f"/v1.0/groups/{PROTECTED}/transitiveMembers?$select=id")
        unknown = await call(http, "GET", "/v1.0/groups/00000000-0000-4000-8000-000000000000/transitiveMembers")
    assert {user["id"] for user in [*first.body["value"], *second.body["value"]]} == {BREAKGLASS_ID, ADELE_ID}
    assert "@odata.nextLink" not in second.body
    assert {item["id"] for item in everything.body["value"]} == {BREAKGLASS_ID, ADELE_ID, SERVICE_ACCOUNTS}
    assert unknown.status == 404


def test_the_new_reads_cost_what_the_published_table_says() -> None:
    members = f"/groups/{PROTECTED}/transitiveMembers/graph.user"
    assert request_cost("GET", members, {"$select": "id", "$top": "999"}).resource_units == 4  # 5, $select -1
    assert request_cost("GET", "/users", {"$filter": "id in ('x')", "$select": "id"}).resource_units == 1
    assert request_cost("GET", f"/users/{ADELE_ID}/transitiveMemberOf/graph.group", {}).resource_units == 2
    assert request_cost("GET", "/roleManagement/directory/roleAssignments", {"$expand": "x"}).resource_units == 2


async def test_the_new_reads_count_against_the_limits(start: StartSandbox) -> None:
    sandbox = await start(options=SandboxOptions(graph_limits=True))
    async with ClientSession(base_url=sandbox.root_url) as http:
        answer = await call(http, "GET", f"/v1.0/groups/{PROTECTED}/transitiveMembers/graph.user?$select=id")
    assert answer.status == 200 and answer.headers["x-ms-resource-unit"] == "4"
    assert sandbox.state.counters.resource_units == 4
