"""Tenant files are validated on load, and every error names the bad entry."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import DEMO_TENANT_PATH, Tenant, TenantFileError, load_tenant, parse_tenant
from tests.sandbox.support import (
    ADELE_ID,
    ALEX_ID,
    GLOBAL_ADMINISTRATOR_ROLE_ID,
    HELPDESK_ADMINS_ID,
    LEE_ID,
    SERVICE_DESK_ID,
    TAP_OPERATORS_ID,
)

Mutation = Callable[[dict[str, Any]], None]
UNKNOWN_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def demo_data() -> dict[str, Any]:
    return json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))


def user(data: dict[str, Any], user_id: str) -> dict[str, Any]:
    return next(entry for entry in data["users"] if entry["id"] == user_id)


def group(data: dict[str, Any], group_id: str) -> dict[str, Any]:
    return next(entry for entry in data["groups"] if entry["id"] == group_id)


def set_manager(user_id: str, manager_id: str) -> Mutation:
    return lambda data: user(data, user_id).update(managerId=manager_id)


def add_user_like(user_id: str, **changes: object) -> Mutation:
    return lambda data: data["users"].append({**user(data, user_id), **changes})


CASES: list[tuple[str, Mutation, str]] = [
    ("unknown manager", set_manager(LEE_ID, UNKNOWN_ID), f"managerId '{UNKNOWN_ID}' is not a user"),
    ("manager cycle", set_manager(ADELE_ID, ALEX_ID), "managerId chain forms a cycle"),
    (
        "duplicate UPN",
        add_user_like(LEE_ID, id=UNKNOWN_ID, userPrincipalName="leeg@CONTOSO.onmicrosoft.com"),
        "duplicate userPrincipalName 'leeg@CONTOSO.onmicrosoft.com'",
    ),
    ("duplicate id", add_user_like(LEE_ID, userPrincipalName="other@contoso.onmicrosoft.com"), "duplicate id"),
    ("id not a GUID", lambda data: user(data, LEE_ID).update(id="lee"), "users[3] (LeeG@contoso.onmicrosoft.com): id"),
    ("typo in a field", lambda data: user(data, LEE_ID).update(managerID=ADELE_ID), "unknown field(s) managerID"),
    ("bad user type", lambda data: user(data, LEE_ID).update(userType="Contractor"), "userType must be"),
    ("bad hire date", lambda data: user(data, LEE_ID).update(employeeHireDate="soon"), "employeeHireDate 'soon'"),
    (
        "unknown method",
        lambda data: user(data, LEE_ID).update(authenticationMethods=[{"type": "smokeSignal"}]),
        "authenticationMethods[0]: unknown method type 'smokeSignal'",
    ),
    (
        "unknown group member",
        lambda data: group(data, SERVICE_DESK_ID)["members"].append(UNKNOWN_ID),
        f"groups[1] (Service Desk): member '{UNKNOWN_ID}' is neither a user nor a group",
    ),
    (
        "group cycle",
        lambda data: group(data, SERVICE_DESK_ID)["members"].append(TAP_OPERATORS_ID),
        "group nesting forms a cycle",
    ),
    (
        "unknown role",
        lambda data: data["roleAssignments"].append({"principalId": LEE_ID, "roleDefinitionId": UNKNOWN_ID}),
        f"roleAssignments[5]: roleDefinitionId '{UNKNOWN_ID}' is not a known role definition",
    ),
    (
        "unknown role holder",
        lambda data: data["roleAssignments"][0].update(principalId=UNKNOWN_ID),
        f"roleAssignments[0]: principalId '{UNKNOWN_ID}' is neither a user nor a group",
    ),
    (
        "policy range upside down",
        lambda data: data["temporaryAccessPassPolicy"].update(minimumLifetimeInMinutes=600),
        "temporaryAccessPassPolicy: lifetimes must satisfy",
    ),
    (
        "policy beyond Graph's maximum",
        lambda data: data["temporaryAccessPassPolicy"].update(maximumLifetimeInMinutes=50000),
        "maximumLifetimeInMinutes cannot exceed 43200",
    ),
    (
        "policy length",
        lambda data: data["temporaryAccessPassPolicy"].update(defaultLength=4),
        "defaultLength must be between 8 and 48",
    ),
    (
        "policy excludes an unknown group",
        lambda data: data["temporaryAccessPassPolicy"]["excludeTargets"][0].update(id=UNKNOWN_ID),
        f"temporaryAccessPassPolicy.excludeTargets[0]: group '{UNKNOWN_ID}' is not in this tenant",
    ),
    (
        "pass for an unknown user",
        lambda data: data["temporaryAccessPasses"][0].update(userId=UNKNOWN_ID),
        f"temporaryAccessPasses[0]: userId '{UNKNOWN_ID}' is not a user",
    ),
    (
        "two passes for one user",
        lambda data: data["temporaryAccessPasses"].append(dict(data["temporaryAccessPasses"][0])),
        "temporaryAccessPasses[1]: the user already has a pass",
    ),
    ("missing policy", lambda data: data.pop("temporaryAccessPassPolicy"), "missing temporaryAccessPassPolicy"),
    (
        "role for a group that is not role-assignable",
        lambda data: data["roleAssignments"].append(
            {"principalId": SERVICE_DESK_ID, "roleDefinitionId": GLOBAL_ADMINISTRATOR_ROLE_ID}
        ),
        "roleAssignments[5]: group 'Service Desk' is not role-assignable (set isAssignableToRole: true)",
    ),
    (
        "eligibility for a group that is not role-assignable",
        lambda data: data["roleEligibilities"][1].update(principalId=TAP_OPERATORS_ID),
        "roleEligibilities[1]: group 'TAP Operators' is not role-assignable",
    ),
    (
        "scope of an unknown administrative unit",
        lambda data: data["roleAssignments"][3].update(directoryScopeId=f"/administrativeUnits/{UNKNOWN_ID}"),
        f"roleAssignments[3]: directoryScopeId '/administrativeUnits/{UNKNOWN_ID}' must be '/' or",
    ),
    (
        "scope that is not a unit",
        lambda data: data["roleEligibilities"][0].update(directoryScopeId="/users"),
        "roleEligibilities[0]: directoryScopeId '/users' must be '/' or '/administrativeUnits/<unit guid>'",
    ),
    (
        "group eligibility for a group that does not exist",
        lambda data: data["groupEligibilities"][0].update(groupId=UNKNOWN_ID),
        f"groupEligibilities[0]: groupId '{UNKNOWN_ID}' is not a group",
    ),
    (
        "group eligibility with an unknown access",
        lambda data: data["groupEligibilities"][0].update(accessId="admin"),
        "groupEligibilities[0]: accessId must be 'member' or 'owner'",
    ),
    (
        "a role-assignable group with a nested group",
        lambda data: group(data, HELPDESK_ADMINS_ID)["members"].append(SERVICE_DESK_ID),
        "(Helpdesk Admins): a role-assignable group cannot have groups as members",
    ),
    (
        "eligibilities without PIM",
        lambda data: data.update(pimLicensed=False),
        "pimLicensed is false, so the tenant cannot have roleEligibilities or groupEligibilities",
    ),
    (
        "the same eligibility twice",
        lambda data: data["roleEligibilities"].append(dict(data["roleEligibilities"][0])),
        "roleEligibilities[3]: the same principal already has this role at this scope",
    ),
]


@pytest.mark.parametrize(("mutation", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_invalid_tenant_is_refused_naming_the_entry(
    demo_data: dict[str, Any], mutation: Mutation, expected: str
) -> None:
    data = copy.deepcopy(demo_data)
    mutation(data)
    with pytest.raises(TenantFileError) as raised:
        parse_tenant(data)
    assert expected in str(raised.value)


def test_demo_tenant_loads(demo_tenant: Tenant) -> None:
    assert demo_tenant.display_name == "Contoso (sandbox)"
    assert len(demo_tenant.users) == 21  # Patti Fernandez (owner of Helpdesk Admins) was added
    assert demo_tenant.source_path == DEMO_TENANT_PATH
    adele = demo_tenant.user("adelev@contoso.onmicrosoft.com")
    assert adele is not None
    assert [method.method_type for method in adele.methods_with_password] == [
        "password",
        "microsoftAuthenticator",
        "phone",
    ]


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(TenantFileError, match=r"broken\.json: not valid JSON"):
        load_tenant(broken)
    with pytest.raises(TenantFileError, match="cannot read the tenant file"):
        load_tenant(tmp_path / "missing.json")


def test_minimal_tenant_gets_policy_defaults_and_an_implicit_password() -> None:
    tenant = parse_tenant(
        {
            "tenantId": "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8",
            "displayName": "Tiny (sandbox)",
            "domain": "tiny.onmicrosoft.com",
            "users": [
                {
                    "id": "884F0A7D-EEEC-4D58-B136-0634982D6C8F",
                    "userPrincipalName": "ann@tiny.onmicrosoft.com",
                    "displayName": "Ann",
                    "authenticationMethods": [{"type": "password"}, {"type": "phone", "phoneNumber": "+1 4255550100"}],
                }
            ],
            "temporaryAccessPassPolicy": {"state": "enabled"},
        }
    )
    [ann] = tenant.users
    assert ann.id == "884f0a7d-eeec-4d58-b136-0634982d6c8f"
    assert [method.method_type for method in ann.methods_with_password] == ["password", "phone"]
    assert ann.methods_with_password[1].properties == {"phoneNumber": "+1 4255550100"}
    assert (tenant.tap_policy.minimum_lifetime_in_minutes, tenant.tap_policy.maximum_lifetime_in_minutes) == (60, 480)
    assert tenant.tap_policy.include_targets[0].id == "all_users"
