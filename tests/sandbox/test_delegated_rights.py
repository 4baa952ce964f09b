"""The sandbox's Graph enforces delegated rights on pass writes the way Graph and Entra do (issue 14, item 3).

Every case goes over HTTP to a running sandbox: a user's Graph token (minted by the sandbox's own Entra) in the
Authorization header, or none for an app-only call. The tenant is the demo tenant plus a few grants made here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientSession

from bot.sandbox import DEMO_TENANT_PATH, RunningSandbox, parse_tenant
from bot.sandbox.clock import format_graph_datetime
from bot.sandbox.tenant import TenantFileError
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import (
    ADELE_ID,
    ALEX_ID,
    CHRISTIE_ID,
    DIEGO_ID,
    FROZEN_NOW,
    GRADY_ID,
    HELPDESK_ADMINISTRATOR_ROLE_ID,
    HENRIETTA_ID,
    ISAIAH_ID,
    JOHANNA_ID,
    LEE_ID,
    MEGAN_ID,
    MIRIAM_ID,
    PARIS_UNIT_ID,
    PRADEEP_ID,
    Answer,
    call,
)

AUTHENTICATION_ADMINISTRATOR = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
REPORTS_READER = "4a5d8f65-41da-4de4-8968-e035b65339cf"
LIDIA_ID = "5faea182-6306-4ff7-a2a2-0135cd5ba444"
LYNNE_ID = "41a3d674-7ed6-42bc-a472-7908b573fff3"
JONI_ID = "8b22bdb0-c56c-4ef5-a5f1-662179b90168"
PATTI_ID = "c41e7b52-3d8f-4a6e-9b1c-7e2d5f0a9c36"
MEGAN_FISCHER_ID = "b7d3c2a1-5e4f-4a8b-9c6d-2f1e0a9b8c7d"
# Made here: a role-assignable group holding Authentication Administrator tenant-wide, and a restricted unit.
AUTH_ADMINS_GROUP_ID = "5d0c1f7e-8a43-4c2b-9e61-3b7a2f9d4c10"
EXECUTIVES_UNIT_ID = "e1a6b0c4-2f3d-4e5a-8b9c-0d1e2f3a4b5c"
OTHER_TENANT_ID = "0f5c3a8e-1b2d-4c6e-9a7f-8e1d2c3b4a59"

ASSIGNMENTS = "/v1.0/roleManagement/directory/roleAssignments"
SCHEDULES = "/v1.0/roleManagement/directory/roleEligibilitySchedules"
ACTIVATE = "/_sandbox/roles/activate"
A_PASS = {"lifetimeInMinutes": 60}


def demo_data() -> dict[str, Any]:
    return json.loads(DEMO_TENANT_PATH.read_text(encoding="utf-8"))


def with_grant(items: list[dict[str, Any]], grant: dict[str, Any]) -> None:
    """Adds the grant unless the demo tenant already has it (it gives Adele and Alex theirs)."""
    keys = ("principalId", "roleDefinitionId")
    if not any(all(item.get(key) == grant[key] for key in keys) for item in items):
        items.append(grant)


def rights_data() -> dict[str, Any]:
    data = demo_data()
    with_grant(data["roleAssignments"], {"principalId": ADELE_ID, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR})
    with_grant(data["roleEligibilities"], {"principalId": ALEX_ID, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR})
    paris = next(unit for unit in data["administrativeUnits"] if unit["id"] == PARIS_UNIT_ID)
    paris["members"] = sorted({*paris.get("members", []), MIRIAM_ID, GRADY_ID, LYNNE_ID})
    data["groups"].append(
        {
            "id": AUTH_ADMINS_GROUP_ID,
            "displayName": "Authentication Admins",
            "isAssignableToRole": True,
            "members": [DIEGO_ID],
        }
    )
    data["administrativeUnits"].append(
        {
            "id": EXECUTIVES_UNIT_ID,
            "displayName": "Executives",
            "members": [LEE_ID],
            "isMemberManagementRestricted": True,
        }
    )
    window = {
        "startDateTime": format_graph_datetime(FROZEN_NOW - timedelta(hours=1)),
        "endDateTime": format_graph_datetime(FROZEN_NOW + timedelta(hours=1)),
    }
    data["roleAssignments"] += [
        {"principalId": JONI_ID, "roleDefinitionId": PRIVILEGED_AUTHENTICATION_ADMINISTRATOR},
        {"principalId": LIDIA_ID, "roleDefinitionId": HELPDESK_ADMINISTRATOR_ROLE_ID},
        {"principalId": MEGAN_FISCHER_ID, "roleDefinitionId": REPORTS_READER},
        {"principalId": MEGAN_FISCHER_ID, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR, **window},
        {"principalId": AUTH_ADMINS_GROUP_ID, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR},
        {
            "principalId": PRADEEP_ID,
            "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR,
            "directoryScopeId": f"/administrativeUnits/{EXECUTIVES_UNIT_ID}",
        },
        {
            "principalId": LIDIA_ID,
            "roleDefinitionId": PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            "directoryScopeId": f"/administrativeUnits/{PARIS_UNIT_ID}",
        },
    ]
    return data


@pytest.fixture
async def rights(start: StartSandbox) -> RunningSandbox:
    return await start(parse_tenant(rights_data()))


@pytest.fixture
async def graph(rights: RunningSandbox) -> AsyncIterator[ClientSession]:
    async with ClientSession(base_url=rights.root_url) as session:
        yield session


def bearer(sandbox: RunningSandbox, user_id: str, scopes: tuple[str, ...] | None = None) -> dict[str, str]:
    identity = sandbox.state.identity
    token = identity.graph_token(user_id) if scopes is None else identity.graph_token(user_id, scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def passes(user_id: str) -> str:
    return f"/v1.0/users/{user_id}/authentication/temporaryAccessPassMethods"


async def create(
    session: ClientSession, sandbox: RunningSandbox, caller: str | None, target: str, **token: Any
) -> Answer:
    headers = None if caller is None else bearer(sandbox, caller, **token)
    return await call(session, "POST", passes(target), json=A_PASS, headers=headers)


def assert_denied(answer: Answer) -> None:
    assert answer.status == 403, answer.body
    assert answer.error["code"] == "accessDenied"
    assert answer.error["message"] == "Request Authorization failed"


async def pass_count(session: ClientSession, user_id: str) -> int:
    return len((await call(session, "GET", passes(user_id))).body["value"])


# --- Who reaches whom ----------------------------------------------------------------------------------------


async def test_a_technician_without_a_role_is_refused_and_nothing_is_written(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    answer = await create(graph, rights, MEGAN_ID, LYNNE_ID)
    assert_denied(answer)
    assert await pass_count(graph, LYNNE_ID) == 0


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (MEGAN_ID, 201),  # no role at all
        (MEGAN_FISCHER_ID, 201),  # Reports Reader and Authentication Administrator: both on the short list
        (ALEX_ID, 201),  # eligible Authentication Administrator only: also on the list
        (ISAIAH_ID, 403),  # Global Administrator
        (LIDIA_ID, 403),  # Helpdesk Administrator, directly
        (CHRISTIE_ID, 403),  # member of the role-assignable group Helpdesk Admins
        (PATTI_ID, 403),  # owner (not a member) of that group
        (JOHANNA_ID, 403),  # eligible member of that group (PIM for Groups)
        (HENRIETTA_ID, 403),  # eligible Global Administrator, not activated: still an admin
        (MIRIAM_ID, 403),  # User Administrator scoped to a unit: an admin all the same
        (LEE_ID, 403),  # member of a restricted-management unit
    ],
    ids=[
        "non-admin",
        "allowed-roles-only",
        "eligible-aa",
        "global-admin",
        "helpdesk-admin",
        "role-assignable-member",
        "role-assignable-owner",
        "eligible-group-member",
        "eligible-global-admin",
        "au-scoped-admin",
        "restricted-unit-member",
    ],
)
async def test_an_authentication_administrator_reaches_non_admins_only(
    graph: ClientSession, rights: RunningSandbox, target: str, status: int
) -> None:
    answer = await create(graph, rights, ADELE_ID, target)
    assert answer.status == status, answer.body
    if status == 403:
        assert_denied(answer)
        assert await pass_count(graph, target) == 0
    else:
        assert answer.body["temporaryAccessPass"]


async def test_a_privileged_authentication_administrator_reaches_admins(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    for target in (ISAIAH_ID, CHRISTIE_ID, LIDIA_ID):
        assert (await create(graph, rights, JONI_ID, target)).status == 201


async def test_a_role_held_through_a_role_assignable_group_counts(graph: ClientSession, rights: RunningSandbox) -> None:
    assert (await create(graph, rights, DIEGO_ID, MEGAN_ID)).status == 201
    assert_denied(await create(graph, rights, DIEGO_ID, ISAIAH_ID))


async def test_a_role_scoped_to_a_unit_covers_only_its_non_admin_members(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    """Grady is Authentication Administrator for the Paris office through the group Paris Helpdesk."""
    assert (await create(graph, rights, GRADY_ID, LYNNE_ID)).status == 201  # in the unit, no role
    assert_denied(await create(graph, rights, GRADY_ID, MEGAN_ID))  # not in the unit
    assert_denied(await create(graph, rights, GRADY_ID, MIRIAM_ID))  # in the unit, but an admin


async def test_a_privileged_authentication_administrator_of_a_unit_reaches_its_admins_too(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    """Lidia is Privileged Authentication Administrator for the Paris office: any member, none outside."""
    assert (await create(graph, rights, LIDIA_ID, MIRIAM_ID)).status == 201  # an admin, in the unit
    assert (await create(graph, rights, LIDIA_ID, LYNNE_ID)).status == 201
    assert_denied(await create(graph, rights, LIDIA_ID, MEGAN_ID))


async def test_a_restricted_unit_is_reached_only_by_a_role_scoped_to_it(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    assert_denied(await create(graph, rights, JONI_ID, LEE_ID))  # tenant-wide Privileged Authentication Admin
    assert_denied(await create(graph, rights, None, LEE_ID))  # application permissions do not apply there
    assert (await create(graph, rights, PRADEEP_ID, LEE_ID)).status == 201  # Authentication Admin of the unit
    assert_denied(await create(graph, rights, PRADEEP_ID, MEGAN_ID))  # and nobody outside it


# --- PIM: eligible is not active; activations and time-bound assignments have a window -----------------------


async def test_an_eligible_role_counts_only_while_activated(graph: ClientSession, rights: RunningSandbox) -> None:
    assert_denied(await create(graph, rights, ALEX_ID, MEGAN_ID))
    assert (await call(graph, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{ALEX_ID}'")).body["value"] == []

    activation = await call(
        graph,
        "POST",
        ACTIVATE,
        json={"principalId": ALEX_ID, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR, "minutes": 30},
    )
    assert activation.status == 201, activation.body
    assert activation.body["startDateTime"] == format_graph_datetime(FROZEN_NOW)
    assert activation.body["endDateTime"] == format_graph_datetime(FROZEN_NOW + timedelta(minutes=30))
    created = await create(graph, rights, ALEX_ID, MEGAN_ID)
    assert created.status == 201
    active = await call(graph, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{ALEX_ID}'")
    [assignment] = active.body["value"]
    assert assignment["roleDefinitionId"] == AUTHENTICATION_ADMINISTRATOR
    assert assignment["directoryScopeId"] == "/"
    # The activation shows among his memberships as the activated directory role, as Graph does.
    member_of = await call(graph, "GET", f"/v1.0/users/{ALEX_ID}/transitiveMemberOf")
    assert "Authentication Administrator" in {item["displayName"] for item in member_of.body["value"]}

    await call(graph, "POST", "/_sandbox/clock", json={"seconds": 31 * 60})
    deleted = await call(graph, "DELETE", f"{passes(MEGAN_ID)}/{created.body['id']}", headers=bearer(rights, ALEX_ID))
    assert_denied(deleted)
    assert await pass_count(graph, MEGAN_ID) == 1, "the refused delete left the pass"
    assert (await call(graph, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{ALEX_ID}'")).body["value"] == []
    schedules = await call(graph, "GET", f"{SCHEDULES}?$filter=principalId eq '{ALEX_ID}'")
    assert [item["roleDefinitionId"] for item in schedules.body["value"]] == [AUTHENTICATION_ADMINISTRATOR]


async def test_a_time_bound_assignment_counts_only_inside_its_window(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    assert (await create(graph, rights, MEGAN_FISCHER_ID, MEGAN_ID)).status == 201
    await call(graph, "POST", "/_sandbox/clock", json={"seconds": 2 * 3600})
    assert_denied(await create(graph, rights, MEGAN_FISCHER_ID, LYNNE_ID))
    listed = await call(graph, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{MEGAN_FISCHER_ID}'")
    assert [item["roleDefinitionId"] for item in listed.body["value"]] == [REPORTS_READER]


async def test_activation_is_refused_with_a_sentence_when_it_cannot_be_made(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    def body(principal: str, minutes: object = 60) -> dict[str, object]:
        return {"principalId": principal, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR, "minutes": minutes}

    not_eligible = await call(graph, "POST", ACTIVATE, json=body(ADELE_ID))
    assert (
        not_eligible.status == 400 and "not eligible for Authentication Administrator" in not_eligible.error["message"]
    )
    for wrong in (0, 1441, "60", True):
        assert (await call(graph, "POST", ACTIVATE, json=body(ALEX_ID, wrong))).status == 400
    assert (await call(graph, "POST", ACTIVATE, json={"principalId": ALEX_ID})).status == 400
    assert (await call(graph, "POST", ACTIVATE, json=[1])).status == 400
    assert (await call(graph, "POST", ACTIVATE, json=body(ALEX_ID))).status == 201
    again = await call(graph, "POST", ACTIVATE, json=body(ALEX_ID))
    assert again.status == 400 and "already active" in again.error["message"]

    await call(graph, "POST", "/_sandbox/reset")
    assert (await call(graph, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{ALEX_ID}'")).body["value"] == []


# --- Tokens and scopes -------------------------------------------------------------------------------------


async def test_tokens_graph_would_not_accept_get_401(graph: ClientSession, rights: RunningSandbox) -> None:
    identity = rights.state.identity
    foreign = identity.keys.mint(
        object_id=ADELE_ID,
        tenant_id=OTHER_TENANT_ID,
        audience="https://graph.microsoft.com",
        scopes=("UserAuthenticationMethod.ReadWrite.All",),
        app_id=identity.bot_app_id,
        now=FROZEN_NOW,
        lifetime=timedelta(hours=1),
        version="1.0",
    )
    expiring = bearer(rights, ADELE_ID)
    lapsing = bearer(rights, ALEX_ID)
    answers = [
        await call(graph, "POST", passes(MEGAN_ID), json=A_PASS, headers={"Authorization": "Bearer not-a-token"}),
        await call(graph, "POST", passes(MEGAN_ID), json=A_PASS, headers={"Authorization": f"Bearer {foreign}"}),
    ]
    identity.lapse(ALEX_ID)
    answers.append(await call(graph, "POST", passes(MEGAN_ID), json=A_PASS, headers=lapsing))
    await call(graph, "POST", "/_sandbox/clock", json={"seconds": 61 * 60})
    answers.append(await call(graph, "POST", passes(MEGAN_ID), json=A_PASS, headers=expiring))
    for answer in answers:
        assert answer.status == 401, answer.body
        assert answer.error["code"] == "InvalidAuthenticationToken"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
    assert await pass_count(graph, MEGAN_ID) == 0
    # A fresh token for the same person works again.
    assert (await create(graph, rights, ADELE_ID, MEGAN_ID)).status == 201


async def test_a_token_without_a_write_scope_is_refused(graph: ClientSession, rights: RunningSandbox) -> None:
    assert_denied(await create(graph, rights, ADELE_ID, MEGAN_ID, scopes=("User.Read", "UserAuthMethod-TAP.Read.All")))
    narrow = await create(graph, rights, ADELE_ID, MEGAN_ID, scopes=("UserAuthMethod-TAP.ReadWrite.All",))
    assert narrow.status == 201


# --- App-only ----------------------------------------------------------------------------------------------


async def test_app_only_writes_need_an_application_write_permission(start: StartSandbox) -> None:
    default = await start(parse_tenant(demo_data()))
    read_only_data = demo_data()
    read_only_data["applicationPermissions"] = ["User.Read.All", "UserAuthMethod-TAP.Read.All"]
    read_only = await start(parse_tenant(read_only_data))
    async with ClientSession(base_url=default.root_url) as session:
        created = await create(session, default, None, ISAIAH_ID)  # app-only: the bot's own rules are the gate
        assert created.status == 201
    async with ClientSession(base_url=read_only.root_url) as session:
        assert_denied(await create(session, read_only, None, MEGAN_ID))
        listed = await call(session, "GET", passes(JONI_ID))  # reads stay open
        [seeded] = listed.body["value"]
        assert_denied(await call(session, "DELETE", f"{passes(JONI_ID)}/{seeded['id']}"))
        assert await pass_count(session, JONI_ID) == 1


async def test_delete_obeys_the_same_rules(graph: ClientSession, rights: RunningSandbox) -> None:
    created = await create(graph, rights, None, ISAIAH_ID)
    method = f"{passes(ISAIAH_ID)}/{created.body['id']}"
    assert_denied(await call(graph, "DELETE", method, headers=bearer(rights, ADELE_ID)))
    assert_denied(await call(graph, "DELETE", method, headers=bearer(rights, MEGAN_ID)))
    assert await pass_count(graph, ISAIAH_ID) == 1
    assert (await call(graph, "DELETE", method, headers=bearer(rights, JONI_ID))).status == 204


async def test_a_batch_runs_its_items_with_the_batch_requests_token(
    graph: ClientSession, rights: RunningSandbox
) -> None:
    item = {
        "id": "1",
        "method": "POST",
        "url": f"/users/{LYNNE_ID}/authentication/temporaryAccessPassMethods",
        "body": A_PASS,
        "headers": {"Content-Type": "application/json", **bearer(rights, ADELE_ID)},
    }
    answer = await call(graph, "POST", "/v1.0/$batch", json={"requests": [item]}, headers=bearer(rights, MEGAN_ID))
    [response] = answer.body["responses"]
    assert response["status"] == 403 and response["body"]["error"]["code"] == "accessDenied"
    assert await pass_count(graph, LYNNE_ID) == 0


# --- The reads the bot's sentences are built from -------------------------------------------------------------


async def test_administrative_unit_reads(graph: ClientSession) -> None:
    lynne = await call(graph, "GET", f"/v1.0/users/{LYNNE_ID}/memberOf/microsoft.graph.administrativeUnit")
    assert lynne.status == 200
    [unit] = lynne.body["value"]
    assert unit["@odata.type"] == "#microsoft.graph.administrativeUnit"
    assert (unit["id"], unit["displayName"]) == (PARIS_UNIT_ID, "Paris office")
    assert (await call(graph, "GET", f"/v1.0/users/{MEGAN_ID}/memberOf/microsoft.graph.administrativeUnit")).body[
        "value"
    ] == []
    selected = await call(
        graph, "GET", f"/v1.0/users/{LEE_ID}/memberOf/graph.administrativeUnit?$select=id,displayName"
    )
    assert selected.body["value"] == [
        {"@odata.type": "#microsoft.graph.administrativeUnit", "id": EXECUTIVES_UNIT_ID, "displayName": "Executives"}
    ]
    paris = await call(graph, "GET", f"/v1.0/directory/administrativeUnits/{PARIS_UNIT_ID}")
    assert paris.body["displayName"] == "Paris office" and paris.body["isMemberManagementRestricted"] is False
    executives = await call(graph, "GET", f"/v1.0/directory/administrativeUnits/{EXECUTIVES_UNIT_ID}")
    assert executives.body["isMemberManagementRestricted"] is True
    members = await call(graph, "GET", f"/v1.0/directory/administrativeUnits/{PARIS_UNIT_ID}/members?$select=id")
    assert {item["id"] for item in members.body["value"]} == {MIRIAM_ID, GRADY_ID, LYNNE_ID}
    missing = await call(graph, "GET", f"/v1.0/directory/administrativeUnits/{OTHER_TENANT_ID}")
    assert missing.status == 404 and missing.error["code"] == "Request_ResourceNotFound"


async def test_eligibility_schedules_and_assignments_by_principal(graph: ClientSession) -> None:
    schedules = await call(graph, "GET", f"{SCHEDULES}?$filter=principalId eq '{ALEX_ID}'&$expand=roleDefinition")
    [schedule] = schedules.body["value"]
    assert schedule["roleDefinitionId"] == AUTHENTICATION_ADMINISTRATOR and schedule["directoryScopeId"] == "/"
    assert schedule["roleDefinition"]["displayName"] == "Authentication Administrator"
    assert schedule["scheduleInfo"]["expiration"]["type"] == "noExpiration"
    assert schedule["status"] == "Provisioned"
    assert (await call(graph, "GET", f"{SCHEDULES}?$filter=principalId in ('{ALEX_ID}')")).status == 400
    adele = await call(graph, "GET", f"{ASSIGNMENTS}?$filter=principalId eq '{ADELE_ID}'")
    assert [(item["roleDefinitionId"], item["directoryScopeId"]) for item in adele.body["value"]] == [
        (AUTHENTICATION_ADMINISTRATOR, "/")
    ]


# --- The tenant file ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda data: data["administrativeUnits"][0]["members"].append(OTHER_TENANT_ID),
            f"administrativeUnits[0] (Paris office): member '{OTHER_TENANT_ID}' is not a user in this tenant",
        ),
        (
            lambda data: data["administrativeUnits"][0]["members"].append("paris"),
            "administrativeUnits[0] (Paris office): members[3] 'paris' is not a GUID",
        ),
        (
            lambda data: data["administrativeUnits"][0].update(isMemberManagementRestricted="yes"),
            "administrativeUnits[0] (Paris office): isMemberManagementRestricted must be true or false",
        ),
        (
            lambda data: data["roleAssignments"][0].update(
                startDateTime="2026-11-02T10:00:00Z", endDateTime="2026-11-02T09:00:00Z"
            ),
            "roleAssignments[0]: endDateTime must be after startDateTime",
        ),
        (
            lambda data: data.update(applicationPermissions=["User.Read.All", 3]),
            "applicationPermissions[1]: expected a permission name like 'User.Read.All'",
        ),
        (
            lambda data: data.update(applicationPermissions="User.Read.All"),
            "applicationPermissions must be a JSON array",
        ),
    ],
    ids=[
        "unit-member-unknown",
        "unit-member-not-guid",
        "restricted-not-bool",
        "window-backwards",
        "permission",
        "list",
    ],
)
def test_the_tenant_file_refuses_bad_rights_data_naming_the_entry(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(rights_data())
    mutate(data)
    with pytest.raises(TenantFileError) as raised:
        parse_tenant(data)
    assert expected in str(raised.value)


def test_without_application_permissions_the_app_keeps_todays_rights() -> None:
    tenant = parse_tenant(demo_data())
    assert "UserAuthenticationMethod.ReadWrite.All" in tenant.application_permissions
    assert "UserAuthMethod-TAP.ReadWrite.All" in tenant.application_permissions
