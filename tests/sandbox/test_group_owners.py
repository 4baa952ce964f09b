"""Group ownership in the sandbox, read as Graph answers it: a tenant file lists a group's `owners`; a user's owned
groups (`/users/{id}/ownedObjects/microsoft.graph.group`, the role-assignable filter being an advanced query) and a
group's owners (`/groups/{id}/owners`, paged) come back like Graph's, each costed by the throttling model."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession

from bot.sandbox import DEMO_TENANT_PATH, TenantFileError, parse_tenant
from bot.sandbox.throttle import request_cost
from tests.sandbox.support import ADELE_ID, CHRISTIE_ID, HELPDESK_ADMINS_ID, PARIS_HELPDESK_ID, call

PATTI_ID = "c41e7b52-3d8f-4a6e-9b1c-7e2d5f0a9c36"  # owner of "Helpdesk Admins", not a member
MARKETING_ID = "b5aa51d4-2a42-4821-abd2-595e23b0ab58"
EVENTUAL = {"ConsistencyLevel": "eventual"}
OWNED = f"/v1.0/users/{PATTI_ID}/ownedObjects/microsoft.graph.group"


def demo_data() -> dict[str, Any]:
    return json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))


def with_owners(group_id: str, owners: list[str]) -> dict[str, Any]:
    data = demo_data()
    for group in data["groups"]:
        if group["id"] == group_id:
            group["owners"] = owners
    return data


def test_the_demo_tenant_has_an_owner_of_a_role_holding_group_who_is_not_a_member(demo_tenant: Any) -> None:
    helpdesk = demo_tenant.group(HELPDESK_ADMINS_ID)
    assert helpdesk.owner_ids == (PATTI_ID,) and PATTI_ID not in helpdesk.member_ids
    assert [group.id for group in demo_tenant.owned_groups(PATTI_ID)] == [HELPDESK_ADMINS_ID]
    assert [user.id for user in demo_tenant.group_owners(HELPDESK_ADMINS_ID)] == [PATTI_ID]


@pytest.mark.parametrize(
    ("owners", "message"),
    [
        (["not-a-guid"], "owners[0] 'not-a-guid' is not a GUID"),
        (["00000000-0000-4000-8000-000000000000"], "owner '00000000-0000-4000-8000-000000000000' is not a user"),
        ([MARKETING_ID], f"owner '{MARKETING_ID}' is not a user"),
    ],
)
def test_a_tenant_file_owner_must_be_a_user_of_the_tenant(owners: list[str], message: str) -> None:
    with pytest.raises(TenantFileError) as raised:
        parse_tenant(with_owners(HELPDESK_ADMINS_ID, owners))
    assert message in str(raised.value) and "Helpdesk Admins" in str(raised.value)


async def test_owned_role_assignable_groups_are_an_advanced_query(http: ClientSession) -> None:
    query = "$filter=isAssignableToRole eq true&$count=true&$select=id,displayName"
    found = await call(http, "GET", f"{OWNED}?{query}", headers=EVENTUAL)
    short_alias = await call(http, "GET", f"/v1.0/users/{PATTI_ID}/ownedObjects/graph.group?{query}", headers=EVENTUAL)
    without_header = await call(http, "GET", f"{OWNED}?{query}")
    other_filter = await call(http, "GET", f"{OWNED}?$filter=displayName eq 'x'&$count=true", headers=EVENTUAL)
    nobody = await call(
        http, "GET", f"/v1.0/users/{ADELE_ID}/ownedObjects/microsoft.graph.group?{query}", headers=EVENTUAL
    )
    unknown = await call(http, "GET", "/v1.0/users/nobody@contoso.onmicrosoft.com/ownedObjects/microsoft.graph.group")

    assert found.status == 200 and found.body["@odata.count"] == 1
    assert found.body["value"] == [
        {"@odata.type": "#microsoft.graph.group", "id": HELPDESK_ADMINS_ID, "displayName": "Helpdesk Admins"}
    ]
    assert short_alias.body["value"] == found.body["value"]
    assert without_header.status == 400
    assert other_filter.status == 400 and "isAssignableToRole" in other_filter.error["message"]
    assert nobody.status == 200 and nobody.body["value"] == []
    assert unknown.status == 404


async def test_a_groups_owners_are_listed_page_by_page(start: Any) -> None:
    sandbox = await start(parse_tenant(with_owners(PARIS_HELPDESK_ID, [ADELE_ID, PATTI_ID, CHRISTIE_ID])))
    async with ClientSession(base_url=sandbox.root_url) as http:
        first = await call(
            http, "GET", f"/v1.0/groups/{PARIS_HELPDESK_ID}/owners/microsoft.graph.user?$select=id&$top=2"
        )
        link = urlsplit(first.body["@odata.nextLink"])
        second = await call(http, "GET", f"{link.path}?{link.query}")
        every_type = await call(http, "GET", f"/v1.0/groups/{HELPDESK_ADMINS_ID}/owners")
        none = await call(http, "GET", f"/v1.0/groups/{MARKETING_ID}/owners/graph.user")
        unknown = await call(http, "GET", "/v1.0/groups/00000000-0000-4000-8000-000000000000/owners")
    owners = [user["id"] for user in [*first.body["value"], *second.body["value"]]]
    assert sorted(owners) == sorted([ADELE_ID, PATTI_ID, CHRISTIE_ID]) and len(first.body["value"]) == 2
    assert "@odata.nextLink" not in second.body
    assert [user["id"] for user in every_type.body["value"]] == [PATTI_ID]
    assert every_type.body["value"][0]["@odata.type"] == "#microsoft.graph.user"
    assert none.status == 200 and none.body["value"] == []
    assert unknown.status == 404


def test_the_ownership_reads_cost_what_the_published_table_says() -> None:
    # users/{id}/ownedObjects is in the table (2 RU, a cast costs its collection); groups/{id}/owners is not: 1 RU.
    assert request_cost("GET", f"/users/{PATTI_ID}/ownedObjects/graph.group", {}).resource_units == 2
    assert request_cost("GET", f"/users/{PATTI_ID}/ownedObjects/graph.group", {"$select": "id"}).resource_units == 1
    assert request_cost("GET", f"/groups/{HELPDESK_ADMINS_ID}/owners/graph.user", {"$top": "999"}).resource_units == 1
