"""Directory reads: users, managers, memberships, role assignments, methods, the policy."""

from __future__ import annotations

from aiohttp import ClientSession

from tests.sandbox.support import (
    ADELE,
    ADELE_ID,
    ALEX,
    DIEGO,
    GLOBAL_ADMINISTRATOR_ROLE_ID,
    ISAIAH,
    ISAIAH_ID,
    JANE_GUEST,
    LEE,
    LYNNE,
    MEGAN,
    MEGAN_ID,
    PROTECTED_ACCOUNTS_ID,
    SERVICE_DESK_ID,
    TAP_EXCLUDED_ID,
    TAP_OPERATORS_ID,
    call,
    passes_path,
    quote_segment,
)


async def test_user_by_upn_is_case_insensitive_and_by_id(http: ClientSession) -> None:
    by_upn = await call(http, "GET", f"/v1.0/users/{ADELE.upper()}")
    by_id = await call(http, "GET", f"/v1.0/users/{ADELE_ID}")

    assert by_upn.status == by_id.status == 200
    assert by_upn.body == by_id.body
    assert by_upn.body["displayName"] == "Adele Vance"
    assert by_upn.body["userPrincipalName"] == ADELE


async def test_user_default_properties_leave_out_what_graph_leaves_out(http: ClientSession) -> None:
    answer = await call(http, "GET", f"/v1.0/users/{LEE}")
    assert "accountEnabled" not in answer.body
    assert "employeeHireDate" not in answer.body
    assert "userType" not in answer.body


async def test_user_select(http: ClientSession) -> None:
    selected = await call(http, "GET", f"/v1.0/users/{LEE}?$select=id,accountEnabled,employeeHireDate,userType,mail")
    guest = await call(http, "GET", f"/v1.0/users/{quote_segment(JANE_GUEST)}?$select=userType")
    unknown = await call(http, "GET", f"/v1.0/users/{LEE}?$select=id,shoeSize")

    assert selected.body == {
        "id": "9d3562ea-aefc-4b97-9721-5e506d279f43",
        "accountEnabled": True,
        "employeeHireDate": "2027-01-11T00:00:00Z",
        "userType": "Member",
        "mail": LEE,
    }
    assert guest.body == {"userType": "Guest"}
    assert unknown.status == 400
    assert "shoeSize" in unknown.error["message"]


async def test_every_answer_carries_request_ids(http: ClientSession) -> None:
    answer = await call(http, "GET", f"/v1.0/users/{LEE}", headers={"client-request-id": "abc-123"})
    assert answer.headers["client-request-id"] == "abc-123"
    assert answer.headers["request-id"]


async def test_manager_and_direct_reports(http: ClientSession) -> None:
    manager = await call(http, "GET", f"/v1.0/users/{LEE}/manager")
    no_manager = await call(http, "GET", f"/v1.0/users/{DIEGO}/manager")
    reports = await call(http, "GET", f"/v1.0/users/{MEGAN}/directReports?$select=displayName,employeeHireDate")

    assert manager.body["id"] == MEGAN_ID
    assert manager.body["@odata.type"] == "#microsoft.graph.user"
    assert no_manager.status == 404
    assert no_manager.error["code"] == "Request_ResourceNotFound"
    assert [report["displayName"] for report in reports.body["value"]] == ["Lee Gu", "Lidia Holloway"]
    assert all(report["employeeHireDate"].startswith("2027-01-") for report in reports.body["value"])


async def test_check_member_groups_is_transitive(http: ClientSession) -> None:
    answer = await call(
        http,
        "POST",
        f"/v1.0/users/{ALEX}/checkMemberGroups",
        json={"groupIds": [TAP_OPERATORS_ID, PROTECTED_ACCOUNTS_ID, SERVICE_DESK_ID]},
    )
    assert answer.status == 200
    assert answer.body == {"value": [TAP_OPERATORS_ID, SERVICE_DESK_ID]}


async def test_check_member_groups_takes_at_most_twenty_ids(http: ClientSession) -> None:
    answer = await call(
        http, "POST", f"/v1.0/users/{ALEX}/checkMemberGroups", json={"groupIds": [TAP_OPERATORS_ID] * 21}
    )
    missing = await call(http, "POST", f"/v1.0/users/{ALEX}/checkMemberGroups", json={})
    assert answer.status == 400
    assert missing.status == 400


async def test_transitive_member_of_lists_groups_and_roles(http: ClientSession) -> None:
    alex = await call(http, "GET", f"/v1.0/users/{ALEX}/transitiveMemberOf")
    isaiah = await call(http, "GET", f"/v1.0/users/{ISAIAH}/transitiveMemberOf")
    isaiah_groups = await call(http, "GET", f"/v1.0/users/{ISAIAH}/transitiveMemberOf/microsoft.graph.group")

    assert {(item["@odata.type"], item["displayName"]) for item in alex.body["value"]} == {
        ("#microsoft.graph.group", "TAP Operators"),
        ("#microsoft.graph.group", "Service Desk"),
    }
    assert [(item["@odata.type"], item["roleTemplateId"]) for item in isaiah.body["value"]] == [
        ("#microsoft.graph.directoryRole", GLOBAL_ADMINISTRATOR_ROLE_ID)
    ]
    assert isaiah_groups.body == {"value": []}


async def test_group_by_id(http: ClientSession) -> None:
    found = await call(http, "GET", f"/v1.0/groups/{TAP_EXCLUDED_ID}")
    missing = await call(http, "GET", "/v1.0/groups/00000000-0000-0000-0000-000000000000")
    assert found.body["displayName"] == "TAP excluded"
    assert missing.status == 404


async def test_role_assignments_by_principal(http: ClientSession) -> None:
    path = "/v1.0/roleManagement/directory/roleAssignments"
    held = await call(http, "GET", f"{path}?$filter=principalId eq '{ISAIAH_ID}'&$expand=roleDefinition")
    none = await call(http, "GET", f"{path}?$filter=principalId eq '{MEGAN_ID}'")

    assert held.status == 200
    [assignment] = held.body["value"]
    assert assignment["principalId"] == ISAIAH_ID
    assert assignment["roleDefinitionId"] == GLOBAL_ADMINISTRATOR_ROLE_ID
    assert assignment["directoryScopeId"] == "/"
    assert assignment["roleDefinition"]["displayName"] == "Global Administrator"
    assert none.body == {"value": []}


async def test_role_assignments_refuse_other_queries(http: ClientSession) -> None:
    path = "/v1.0/roleManagement/directory/roleAssignments"
    other_filter = await call(http, "GET", f"{path}?$filter=roleDefinitionId eq '{GLOBAL_ADMINISTRATOR_ROLE_ID}'")
    other_expand = await call(http, "GET", f"{path}?$filter=principalId eq '{ISAIAH_ID}'&$expand=principal")
    assert other_filter.status == 400
    assert other_expand.status == 400


async def test_authentication_methods_include_a_live_pass(http: ClientSession) -> None:
    before = await call(http, "GET", f"/v1.0/users/{LYNNE}/authentication/methods")
    await call(http, "POST", passes_path(LYNNE))
    after = await call(http, "GET", f"/v1.0/users/{LYNNE}/authentication/methods")

    assert [method["@odata.type"] for method in before.body["value"]] == [
        "#microsoft.graph.passwordAuthenticationMethod",
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "#microsoft.graph.phoneAuthenticationMethod",
    ]
    tap = after.body["value"][-1]
    assert tap["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
    assert tap["temporaryAccessPass"] is None
    new_hire = await call(http, "GET", f"/v1.0/users/{LEE}/authentication/methods")
    assert [method["@odata.type"] for method in new_hire.body["value"]] == [
        "#microsoft.graph.passwordAuthenticationMethod"
    ]


async def test_tap_policy(http: ClientSession) -> None:
    answer = await call(
        http, "GET", "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
    )
    assert answer.body == {
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "id": "TemporaryAccessPass",
        "state": "enabled",
        "defaultLifetimeInMinutes": 60,
        "defaultLength": 8,
        "minimumLifetimeInMinutes": 60,
        "maximumLifetimeInMinutes": 480,
        "isUsableOnce": False,
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}],
        "excludeTargets": [{"targetType": "group", "id": TAP_EXCLUDED_ID}],
    }


async def test_unknown_routes_answer_in_the_graph_envelope(http: ClientSession) -> None:
    unknown_segment = await call(http, "GET", f"/v1.0/users/{LEE}/shoes")
    wrong_method = await call(http, "PATCH", f"/v1.0/users/{LEE}")
    outside = await call(http, "GET", "/beta/users")
    malformed = await call(http, "POST", f"/v1.0/users/{ALEX}/checkMemberGroups", json="not an object")

    assert (unknown_segment.status, unknown_segment.error["code"]) == (400, "BadRequest")
    assert unknown_segment.error["message"] == "Resource not found for the segment 'shoes'."
    assert wrong_method.status == 405
    assert outside.status == 404
    assert outside.error["innerError"]["request-id"] == outside.headers["request-id"]
    assert malformed.status == 400
