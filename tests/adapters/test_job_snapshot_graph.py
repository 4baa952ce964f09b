"""A bulk job's snapshot, read tenant-wide through the real Graph adapter from the sandbox, gives every user of the
demo tenant exactly the verdict the single command gives (same rule, same sentence), for every path to a role."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
import pytest

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.domain.errors import Refused, Rule
from bot.domain.job_snapshot import take_snapshot
from bot.domain.model import Caller
from bot.domain.service import AccessRules, TapService
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import parse_tenant
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings
from tests.fakes import FakePasses, FixedClock, MemoryAudit, MemoryTargetLocks
from tests.harness.bot import ADELE

TENANT_ID = "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8"
OPERATORS = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"
PROTECTED = "bd7c3ef1-9245-4256-8aac-1e552b66595b"
EXCLUDED = "ea2d260f-cb5a-4f87-a2a2-07d306e28184"
SERVICE_ACCOUNTS = "5e7a1c3b-0000-4000-8000-00000000a001"  # nested in Protected accounts
CONTRACTORS = "5e7a1c3b-0000-4000-8000-00000000a002"  # nested in TAP excluded
LYNNE = "41a3d674-7ed6-42bc-a472-7908b573fff3"
DIEGO = "a16c0c60-bbb6-433c-b4da-464eebbc0e8b"


def tenant_data() -> dict[str, Any]:
    """The demo tenant (a role by every path, break-glass, guest, disabled, excluded), plus membership two levels
    deep: Lynne through a group nested in the protected group, Diego through a group nested in the excluded one."""
    data = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    data["groups"] += [
        {"id": SERVICE_ACCOUNTS, "displayName": "Service accounts", "members": [LYNNE]},
        {"id": CONTRACTORS, "displayName": "Contractors", "members": [DIEGO]},
    ]
    for group in data["groups"]:
        if group["id"] == PROTECTED:
            group["members"].append(SERVICE_ACCOUNTS)
        if group["id"] == EXCLUDED:
            group["members"].append(CONTRACTORS)
    return data


@dataclass
class Graph:
    gateway: GraphGateway
    sandbox: RunningSandbox
    http: httpx.AsyncClient

    async def served(self) -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{self.sandbox.control_url}/state") as answer:
            return int((await answer.json())["counters"]["requests_served"])


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    data = tenant_data()
    sandbox = await start_sandbox(parse_tenant(data))
    client, http = build_graph_client(GraphSettings(GraphMode.SANDBOX, timeout_seconds=5), sandbox.base_url)
    try:
        yield Graph(GraphGateway(client, SystemClock()), sandbox, http)
    finally:
        await http.aclose()
        await sandbox.close()


def verdict(refusal: Refused | None) -> tuple[Rule, str] | None:
    return None if refusal is None else (refusal.rule, refusal.user_message)


async def test_the_snapshot_gives_every_user_the_single_commands_verdict(graph: Graph) -> None:
    service = TapService(
        directory=graph.gateway,
        passes=FakePasses(FixedClock()),
        audit=MemoryAudit(),
        clock=FixedClock(),
        access=AccessRules(frozenset({TENANT_ID}), OPERATORS, frozenset({PROTECTED})),
        locks=MemoryTargetLocks(),
    )
    adele = Caller(ADELE.object_id, TENANT_ID, "Adele Vance")
    snapshot = await take_snapshot(graph.gateway, frozenset({PROTECTED}), datetime.now(UTC))
    users = [user for user in tenant_data()["users"]]
    seen: dict[Rule | None, int] = {}
    for entry in users:
        user = await graph.gateway.find_user(entry["id"])
        assert user is not None
        try:
            await service.check_target(adele, user)
            single = None
        except Refused as refusal:
            single = verdict(refusal)
        from_snapshot = verdict(await snapshot.refusal(adele, user, graph.gateway))
        assert from_snapshot == single, entry["userPrincipalName"]
        rule = None if single is None else single[0]
        seen[rule] = seen.get(rule, 0) + 1
    # The matrix covers every refusal a target can earn, and people who may have a pass.
    assert seen == {
        None: 5,
        Rule.SELF_ISSUE: 1,
        # direct (twice), via a group, unit-scoped (both ways), eligible (twice), eligible via group, PIM group,
        # owner of a group
        Rule.ROLE_HOLDER: 9,
        Rule.PROTECTED_GROUP: 2,  # break-glass directly, Lynne through a nested group
        Rule.DISABLED: 1,
        Rule.GUEST: 1,
        Rule.OUTSIDE_POLICY_SCOPE: 2,  # Pradeep directly, Diego through a nested group
    }


async def test_role_holders_name_each_role_as_the_per_user_read_does(graph: Graph) -> None:
    holders = await graph.gateway.role_holders()
    for entry in tenant_data()["users"]:
        assert holders.get(entry["id"], ()) == await graph.gateway.directory_roles(entry["id"]), entry["id"]
    assert len(holders) == 10  # Adele and Alex among them (Authentication Administrator, active and eligible)


async def test_a_snapshot_costs_a_handful_of_requests_whatever_the_job(graph: Graph) -> None:
    """Policy, assignments, eligibilities, role-assignable groups; per role-holding group its members and PIM for
    Groups eligibilities and its owners (3 groups); the members of the protected and the excluded group: 15 requests
    (12 before owners were read)."""
    before = await graph.served()
    await take_snapshot(graph.gateway, frozenset({PROTECTED}), datetime.now(UTC))
    assert await graph.served() - before == 15


async def test_users_are_read_fifteen_to_a_request_by_id_or_name(graph: Graph) -> None:
    entries = tenant_data()["users"]
    references = [
        entry["id"] if index % 2 else entry["userPrincipalName"].upper() for index, entry in enumerate(entries)
    ]
    references.append("nobody@contoso.onmicrosoft.com")
    before = await graph.served()
    found = await graph.gateway.find_users(references)
    # 10 ids in one request, 10 names (+1 unknown) in one more
    assert await graph.served() - before == 2
    assert sorted(user.object_id for user in found.values()) == sorted(entry["id"] for entry in entries)
    assert set(found) == {reference.lower() for reference in references[:-1]}
    many = [entry["id"] for entry in entries]
    before = await graph.served()
    assert len(await graph.gateway.find_users(many)) == len(many)  # 20 ids: 15 + 5
    assert await graph.served() - before == 2
