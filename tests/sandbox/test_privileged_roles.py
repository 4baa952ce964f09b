"""The Graph reads behind "holds a directory role by any path": groups, administrative units, PIM."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientSession

from bot.sandbox import DEMO_TENANT_PATH, parse_tenant
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import (
    ADELE_ID,
    CHRISTIE_ID,
    GLOBAL_ADMINISTRATOR_ROLE_ID,
    GRADY_ID,
    HELPDESK_ADMINISTRATOR_ROLE_ID,
    HELPDESK_ADMINS_ID,
    HENRIETTA_ID,
    IRVIN_ID,
    ISAIAH_ID,
    JOHANNA_ID,
    MIRIAM_ID,
    PARIS_HELPDESK_ID,
    PARIS_UNIT_ID,
    SECURITY_ADMINISTRATOR_ROLE_ID,
    SECURITY_RESPONDERS_ID,
    TAP_OPERATORS_ID,
    call,
)

ASSIGNMENTS = "/v1.0/roleManagement/directory/roleAssignments"
ELIGIBILITIES = "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances"
GROUP_ELIGIBILITIES = "/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"
EVENTUAL = {"ConsistencyLevel": "eventual"}
ASSIGNABLE = "$filter=isAssignableToRole eq true&$count=true"


def assignable_groups_path(user_id: str, extra: str = "") -> str:
    return f"/v1.0/users/{user_id}/transitiveMemberOf/microsoft.graph.group?{ASSIGNABLE}{extra}"


async def test_role_assignable_groups_need_the_advanced_query_headers(http: ClientSession) -> None:
    found = await call(http, "GET", assignable_groups_path(CHRISTIE_ID, "&$select=id,displayName"), headers=EVENTUAL)
    without_header = await call(http, "GET", assignable_groups_path(CHRISTIE_ID))
    without_count = await call(
        http,
        "GET",
        f"/v1.0/users/{CHRISTIE_ID}/transitiveMemberOf/graph.group?$filter=isAssignableToRole eq true",
        headers=EVENTUAL,
    )
    operator = await call(http, "GET", assignable_groups_path(ADELE_ID), headers=EVENTUAL)

    assert found.status == 200
    assert found.body == {
        "@odata.count": 1,
        "value": [
            {"@odata.type": "#microsoft.graph.group", "id": HELPDESK_ADMINS_ID, "displayName": "Helpdesk Admins"}
        ],
    }
    assert without_header.status == without_count.status == 400
    assert without_header.error["code"] == "Request_UnsupportedQuery"
    assert operator.body == {"@odata.count": 0, "value": []}, "TAP Operators is not role-assignable"


async def test_role_assignments_by_several_principals_and_scope(http: ClientSession) -> None:
    answer = await call(
        http,
        "GET",
        f"{ASSIGNMENTS}?$filter=principalId in ('{HELPDESK_ADMINS_ID}', '{PARIS_HELPDESK_ID}', '{MIRIAM_ID}')"
        "&$expand=roleDefinition",
    )
    member_only = await call(http, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{CHRISTIE_ID}'")
    too_many = await call(http, "GET", f"{ASSIGNMENTS}?$filter=principalId in ({', '.join([repr(ADELE_ID)] * 16)})")

    assert answer.status == 200
    held = {
        (item["principalId"], item["roleDefinition"]["displayName"], item["directoryScopeId"])
        for item in answer.body["value"]
    }
    assert held == {
        (HELPDESK_ADMINS_ID, "Helpdesk Administrator", "/"),
        (PARIS_HELPDESK_ID, "Authentication Administrator", f"/administrativeUnits/{PARIS_UNIT_ID}"),
        (MIRIAM_ID, "User Administrator", f"/administrativeUnits/{PARIS_UNIT_ID}"),
    }
    assert member_only.body == {"value": []}, "a group's role is listed under the group, not its members"
    assert too_many.status == 400


async def test_eligible_roles_are_schedule_instances(http: ClientSession) -> None:
    direct = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{HENRIETTA_ID}'&$expand=roleDefinition")
    group = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{SECURITY_RESPONDERS_ID}'")
    member = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{IRVIN_ID}'")
    no_in = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId in ('{HENRIETTA_ID}')")
    active_holder = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{ISAIAH_ID}'")

    [instance] = direct.body["value"]
    assert instance["roleDefinitionId"] == GLOBAL_ADMINISTRATOR_ROLE_ID
    assert instance["roleDefinition"]["displayName"] == "Global Administrator"
    assert instance["directoryScopeId"] == "/" and instance["memberType"] == "Direct"
    assert instance["id"].endswith("-e") and instance["startDateTime"] and instance["endDateTime"] is None
    assert [item["roleDefinitionId"] for item in group.body["value"]] == [SECURITY_ADMINISTRATOR_ROLE_ID]
    assert member.body == {"value": []}
    assert no_in.status == 400
    assert active_holder.body == {"value": []}, "an active assignment is not an eligibility"


async def test_pim_for_groups_eligibility_needs_a_filter(http: ClientSession) -> None:
    by_user = await call(http, "GET", f"{GROUP_ELIGIBILITIES}?$filter=principalId eq '{JOHANNA_ID}'&$expand=group")
    by_group = await call(http, "GET", f"{GROUP_ELIGIBILITIES}?$filter=groupId eq '{HELPDESK_ADMINS_ID}'")
    unfiltered = await call(http, "GET", GROUP_ELIGIBILITIES)

    [instance] = by_user.body["value"]
    assert (instance["groupId"], instance["accessId"], instance["principalId"]) == (
        HELPDESK_ADMINS_ID,
        "member",
        JOHANNA_ID,
    )
    assert instance["group"]["displayName"] == "Helpdesk Admins"
    assert [item["principalId"] for item in by_group.body["value"]] == [JOHANNA_ID]
    assert "group" not in by_group.body["value"][0]
    assert unfiltered.status == 400


async def test_eligibilities_follow_the_sandbox_clock(start: StartSandbox) -> None:
    data = json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))
    data["roleEligibilities"][0].update(startDateTime="2026-12-01T00:00:00Z", endDateTime="2027-01-01T00:00:00Z")
    data["groupEligibilities"][0].update(endDateTime="2026-11-01T00:00:00Z")
    sandbox = await start(parse_tenant(data))
    async with ClientSession(base_url=sandbox.root_url) as http:
        before = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{HENRIETTA_ID}'")
        expired = await call(http, "GET", f"{GROUP_ELIGIBILITIES}?$filter=principalId eq '{JOHANNA_ID}'")
        await call(http, "POST", "/_sandbox/clock", json={"seconds": 30 * 86400})
        during = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{HENRIETTA_ID}'")
    assert before.body == {"value": []} and expired.body == {"value": []}
    assert during.body["value"][0]["endDateTime"] == "2027-01-01T00:00:00Z"


async def test_pim_endpoints_without_a_licence(start: StartSandbox) -> None:
    data = json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))
    del data["roleEligibilities"], data["groupEligibilities"]
    data["pimLicensed"] = False
    sandbox = await start(parse_tenant(data))
    async with ClientSession(base_url=sandbox.root_url) as http:
        roles = await call(http, "GET", f"{ELIGIBILITIES}?$filter=principalId eq '{HENRIETTA_ID}'")
        groups = await call(http, "GET", f"{GROUP_ELIGIBILITIES}?$filter=principalId eq '{JOHANNA_ID}'")
        assignments = await call(http, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{ISAIAH_ID}'")
    assert roles.status == groups.status == 400
    assert roles.error["code"] == groups.error["code"] == "AadPremiumLicenseRequired"
    assert assignments.status == 200, "active assignments need no PIM licence"


async def test_memberships_are_paged_with_next_links(start: StartSandbox) -> None:
    data: dict[str, Any] = json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))
    many = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 106)]
    data["groups"] += [
        {"id": group_id, "displayName": f"Admins {index:03d}", "isAssignableToRole": True, "members": [CHRISTIE_ID]}
        for index, group_id in enumerate(many)
    ]
    sandbox = await start(parse_tenant(data))
    async with ClientSession(base_url=sandbox.root_url) as http:
        first = await call(http, "GET", assignable_groups_path(CHRISTIE_ID, "&$select=id"), headers=EVENTUAL)
        next_link = first.body["@odata.nextLink"]
        assert next_link.startswith(sandbox.base_url)
        split = urlsplit(next_link)
        second = await call(http, "GET", f"{split.path}?{split.query}", headers=EVENTUAL)
        small = await call(http, "GET", assignable_groups_path(CHRISTIE_ID, "&$top=1000"), headers=EVENTUAL)
    assert first.body["@odata.count"] == 106 and len(first.body["value"]) == 100
    assert len(second.body["value"]) == 6 and "@odata.nextLink" not in second.body
    ids = {item["id"] for item in first.body["value"] + second.body["value"]}
    assert ids == {*many, HELPDESK_ADMINS_ID}
    assert small.status == 400


async def test_scoped_and_group_roles_are_not_directory_role_memberships(http: ClientSession) -> None:
    """transitiveMemberOf shows directoryRole objects for tenant-wide active roles only (Graph lists unit-scoped
    ones under scopedRoleMemberOf)."""
    christie = await call(http, "GET", f"/v1.0/users/{CHRISTIE_ID}/transitiveMemberOf")
    grady = await call(http, "GET", f"/v1.0/users/{GRADY_ID}/transitiveMemberOf")
    miriam = await call(http, "GET", f"/v1.0/users/{MIRIAM_ID}/transitiveMemberOf")
    assert [item.get("roleTemplateId") for item in christie.body["value"]] == [None, HELPDESK_ADMINISTRATOR_ROLE_ID]
    assert [item["@odata.type"] for item in grady.body["value"]] == ["#microsoft.graph.group"]
    assert miriam.body == {"value": []}
    assert TAP_OPERATORS_ID not in {item["id"] for item in christie.body["value"]}
