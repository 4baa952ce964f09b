"""Owners of role-assignable groups, read through the real Graph adapter from the sandbox: an active owner can add
themselves as a member, so the group's roles (active or eligible) are theirs, per user (`directory_roles`, from
`/users/{id}/ownedObjects`) and tenant-wide (`role_holders`, from `/groups/{id}/owners`), named the same way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.sandbox.server import start_sandbox
from bot.sandbox.tenant import parse_tenant
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings

PATTI = "c41e7b52-3d8f-4a6e-9b1c-7e2d5f0a9c36"  # demo: owner of "Helpdesk Admins", not a member
CHRISTIE = "3f8e619a-79e9-4d00-bbb5-dc64d5e6fcbd"  # member of "Helpdesk Admins"
JOHANNA = "f633f7a1-46a4-41ff-b0a7-f712abdad616"  # eligible member of "Helpdesk Admins" (PIM for Groups)
LEE = "9d3562ea-aefc-4b97-9721-5e506d279f43"
HELPDESK_ADMINS = "ad5f456b-e5ec-4b33-a547-f261cb3a71d1"
SECURITY_RESPONDERS = "21ab2cff-3026-4c46-8578-27cba81a4826"  # eligible for Security Administrator
SPARE = "5e7a1c3b-0000-4000-8000-00000000b001"  # role-assignable, holds no role
HELPDESK = "Helpdesk Administrator"


def tenant_data() -> dict[str, Any]:
    """The demo tenant, plus: Christie (a member) and Johanna (an eligible member) also own Helpdesk Admins; Patti
    also owns Security Responders (an eligible role); Lee owns a role-assignable group that holds no role."""
    data = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    data["groups"].append({"id": SPARE, "displayName": "Spare", "isAssignableToRole": True, "owners": [LEE]})
    for group in data["groups"]:
        if group["id"] == HELPDESK_ADMINS:
            group["owners"] += [CHRISTIE, JOHANNA]
        if group["id"] == SECURITY_RESPONDERS:
            group["owners"] = [PATTI]
    return data


Gateway = Callable[[dict[str, Any]], Any]


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    opened: list[Any] = []

    async def open_one(data: dict[str, Any]) -> GraphGateway:
        sandbox = await start_sandbox(parse_tenant(data))
        client, http = build_graph_client(GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), sandbox.base_url)
        opened.append((sandbox, http))
        return GraphGateway(client, SystemClock())

    try:
        yield open_one
    finally:
        for sandbox, http in opened:
            await http.aclose()
            await sandbox.close()


async def test_an_owner_who_is_not_a_member_holds_the_groups_role_in_the_demo_tenant(gateway: Gateway) -> None:
    graph = await gateway(json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8")))
    label = f"{HELPDESK} (through ownership of group Helpdesk Admins)"
    assert await graph.owned_role_assignable_groups(PATTI) == {HELPDESK_ADMINS: "Helpdesk Admins"}
    assert await graph.owner_user_ids(HELPDESK_ADMINS) == frozenset({PATTI})
    assert await graph.directory_roles(PATTI) == (label,)
    assert (await graph.role_holders())[PATTI] == (label,)


async def test_ownership_is_named_alike_per_user_and_tenant_wide(gateway: Gateway) -> None:
    graph = await gateway(tenant_data())
    holders = await graph.role_holders()
    expected = {
        PATTI: (
            f"{HELPDESK} (through ownership of group Helpdesk Admins)",
            "Security Administrator (eligible in PIM, through ownership of group Security Responders)",
        ),
        CHRISTIE: (f"{HELPDESK} (through group Helpdesk Admins)",),  # a member who also owns: through the group
        JOHANNA: (f"{HELPDESK} (through ownership of group Helpdesk Admins)",),  # active owner beats eligible member
    }
    for user_id, labels in expected.items():
        assert await graph.directory_roles(user_id) == labels, user_id
        assert holders[user_id] == labels, user_id
    # Owning a role-assignable group that holds no role gives nothing, as being in one does.
    assert await graph.owned_role_assignable_groups(LEE) == {SPARE: "Spare"}
    assert await graph.directory_roles(LEE) == ()
    assert LEE not in holders
    for user in tenant_data()["users"]:
        assert holders.get(user["id"], ()) == await graph.directory_roles(user["id"]), user["userPrincipalName"]
