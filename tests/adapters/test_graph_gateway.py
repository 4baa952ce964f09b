"""The Graph adapter (real msgraph-sdk) against the sandbox tenant over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.adapters.graph_costs import graph_limits
from bot.domain.errors import GraphRejected, GraphUnavailable, Refused, Rule, Throttled
from bot.domain.model import DirectoryUser, UserType
from bot.domain.pacer import Pacer
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import Tenant, load_tenant, parse_tenant
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings
from tests.harness.bot import ADELE, ALEX, DIEGO, ISAIAH, JANE, MEGAN, PRADEEP

OPERATORS = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"
SERVICE_DESK = "ad5728c8-eaa1-4396-b4ca-de298a97a04a"
CREATE_PATH = "temporaryAccessPassMethods$"


@dataclass
class Graph:
    gateway: GraphGateway
    sandbox: RunningSandbox
    http: httpx.AsyncClient
    sleeps: list[float]
    paced: list[float]
    """What the pacer waited (on a clock of its own that only these waits move)."""

    async def counters(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.get(f"{self.sandbox.control_url}/state") as answer:
            return (await answer.json())["counters"]

    async def fault(self, **rule: object) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.sandbox.control_url}/faults", json=rule) as answer,
        ):
            assert answer.status in (200, 201), await answer.text()

    async def passes(self) -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session, session.get(f"{self.sandbox.control_url}/state") as answer:
            return [item for item in (await answer.json())["passes"] if item["user_id"] == MEGAN.object_id]


async def start_graph(timeout: float = 5.0, tenant: Tenant | None = None) -> Graph:
    sandbox = await start_sandbox(tenant or load_tenant(DEMO_TENANT_FILE))
    paced: list[float] = []

    async def pacer_sleep(seconds: float) -> None:
        paced.append(seconds)
        await asyncio.sleep(0)

    pacer = Pacer(graph_limits(), clock=lambda: 1000.0 + sum(paced), sleep=pacer_sleep)
    settings = GraphSettings(GraphMode.SANDBOX, timeout_seconds=timeout)
    client, http = build_graph_client(settings, sandbox.base_url, pacer=pacer)
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return Graph(GraphGateway(client, SystemClock(), sleep=record_sleep), sandbox, http, sleeps, paced)


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    running = await start_graph()
    try:
        yield running
    finally:
        await running.http.aclose()
        await running.sandbox.close()


def megan() -> DirectoryUser:
    return DirectoryUser(MEGAN.object_id, MEGAN.upn, MEGAN.name)


async def test_find_user_by_upn_object_id_and_guest_upn(graph: Graph) -> None:
    by_upn = await graph.gateway.find_user(MEGAN.upn.lower())
    assert by_upn is not None and by_upn.object_id == MEGAN.object_id and by_upn.display_name == "Megan Bowen"
    assert await graph.gateway.find_user(MEGAN.object_id) == by_upn
    guest = await graph.gateway.find_user(JANE.upn)
    assert guest is not None and guest.user_type is UserType.GUEST
    disabled = await graph.gateway.find_user("NestorW@contoso.onmicrosoft.com")
    assert disabled is not None and not disabled.account_enabled
    hire = await graph.gateway.find_user("LeeG@contoso.onmicrosoft.com")
    assert hire is not None and hire.employee_hire_date is not None and hire.employee_hire_date.year == 2027
    assert await graph.gateway.find_user("ghost@contoso.onmicrosoft.com") is None


async def test_group_membership_is_transitive_and_chunked(graph: Graph) -> None:
    assert await graph.gateway.member_groups(ALEX.object_id, [OPERATORS]) == {OPERATORS}
    assert await graph.gateway.member_groups(DIEGO.object_id, [OPERATORS]) == frozenset()
    many = [f"00000000-0000-0000-0000-{index:012d}" for index in range(45)] + [OPERATORS, SERVICE_DESK]
    assert await graph.gateway.member_groups(ALEX.object_id, many) == {OPERATORS, SERVICE_DESK}


async def test_roles_and_policy(graph: Graph) -> None:
    assert await graph.gateway.directory_roles(ISAIAH.object_id) == ("Global Administrator",)
    assert await graph.gateway.directory_roles(ADELE.object_id) == ("Authentication Administrator",)
    assert await graph.gateway.directory_roles(MEGAN.object_id) == ()
    policy = await graph.gateway.tap_policy()
    assert policy.enabled and policy.includes_everyone
    assert (policy.minimum_lifetime_minutes, policy.maximum_lifetime_minutes, policy.default_length) == (60, 480, 8)
    assert policy.target_group_ids == {"ea2d260f-cb5a-4f87-a2a2-07d306e28184"}


async def test_create_read_delete(graph: Graph) -> None:
    issued = await graph.gateway.create_pass(megan(), lifetime_minutes=90, one_time=True, start_at=None)
    assert len(issued.secret.reveal()) == 8 and issued.graph_request_id
    current = await graph.gateway.current_pass(MEGAN.object_id)
    assert current is not None and current.method_id == issued.info.method_id
    assert current.lifetime_minutes == 90 and current.one_time and current.usable
    assert await graph.gateway.delete_pass(MEGAN.object_id, current.method_id)
    assert await graph.gateway.current_pass(MEGAN.object_id) is None
    assert await graph.gateway.delete_pass(MEGAN.object_id, current.method_id) is not None  # already gone: fine


async def test_uncertain_failure_is_checked_before_retrying(graph: Graph) -> None:
    await graph.fault(method="POST", path_regex=CREATE_PATH, status=503, after_effect=True, count=1)
    issued = await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
    passes = await graph.passes()
    assert [item["id"] for item in passes] == [issued.info.method_id]


async def test_create_is_never_retried_by_the_sdk(graph: Graph) -> None:
    # The SDK's own retry would repeat a 503'd POST three times; with it off each attempt is one request.
    await graph.fault(method="POST", path_regex=CREATE_PATH, status=503, count=None)
    with pytest.raises(GraphUnavailable):
        await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
    async with aiohttp.ClientSession() as session, session.get(f"{graph.sandbox.control_url}/state") as answer:
        counters = (await answer.json())["counters"]
    assert counters["faults_injected"] == 3  # three attempts of ours, none added by the SDK


async def test_timeout_is_an_uncertain_failure(tmp_path: object) -> None:
    graph = await start_graph(timeout=1.0)
    try:
        await graph.fault(method="POST", path_regex=CREATE_PATH, delay_s=2.0, count=1)
        issued = await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
        assert [item["id"] for item in await graph.passes()] == [issued.info.method_id]
    finally:
        await graph.http.aclose()
        await graph.sandbox.close()


async def test_throttling(graph: Graph) -> None:
    # One 429 costs exactly one more request: the pacer waits out Retry-After and sends the create again; neither
    # the SDK's RetryHandler nor the gateway adds a request of its own.
    await graph.fault(method="POST", path_regex=CREATE_PATH, status=429, retry_after_s=2, count=1)
    before = await graph.counters()
    await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
    after = await graph.counters()
    assert after["requests_received"] - before["requests_received"] == 2
    assert after["faults_injected"] - before["faults_injected"] == 1
    assert sum(graph.paced) == pytest.approx(2.0) and graph.sleeps == []
    # A wait longer than a chat turn's patience goes up at once, as one request.
    await graph.fault(method="POST", path_regex=CREATE_PATH, status=429, retry_after_s=60, count=1)
    with pytest.raises(Throttled) as caught:
        await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
    assert caught.value.retry_after_seconds == 60
    assert (await graph.counters())["requests_received"] - after["requests_received"] == 1


async def test_graph_refusals_become_rules(graph: Graph) -> None:
    cases = [
        (megan(), 600, Rule.LIFETIME_RANGE),
        (DirectoryUser(JANE.object_id, JANE.upn, "Jane", UserType.GUEST), 60, Rule.GUEST),
        (DirectoryUser(PRADEEP.object_id, PRADEEP.upn, "Pradeep"), 60, Rule.OUTSIDE_POLICY_SCOPE),
    ]
    for user, lifetime, rule in cases:
        with pytest.raises(Refused) as caught:
            await graph.gateway.create_pass(user, lifetime_minutes=lifetime, one_time=False, start_at=None)
        assert caught.value.rule is rule
        assert "{" not in caught.value.user_message  # a sentence, never raw OData


# People of the demo tenant who hold or may activate a role other than by a direct, tenant-wide assignment.
CHRISTIE = "3f8e619a-79e9-4d00-bbb5-dc64d5e6fcbd"
GRADY = "f3ebd287-8aba-4215-a442-62511e3584a3"
HENRIETTA = "ddbd5305-7189-4fb1-8365-a655321e5380"
IRVIN = "28c973a3-ff36-4c20-a78a-2b5e9b96e2b5"
JOHANNA = "f633f7a1-46a4-41ff-b0a7-f712abdad616"
MIRIAM = "0b8df986-914e-4a37-9b65-e000f7cd5fa3"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"


async def test_roles_by_every_path(graph: Graph) -> None:
    expected = {
        ISAIAH.object_id: ("Global Administrator",),
        CHRISTIE: ("Helpdesk Administrator (through group Helpdesk Admins)",),
        GRADY: ("Authentication Administrator (through group Paris Helpdesk, scoped to an administrative unit)",),
        MIRIAM: ("User Administrator (scoped to an administrative unit)",),
        HENRIETTA: ("Global Administrator (eligible in PIM)",),
        IRVIN: ("Security Administrator (eligible in PIM, through group Security Responders)",),
        JOHANNA: ("Helpdesk Administrator (through eligible membership of group Helpdesk Admins)",),
        ADELE.object_id: ("Authentication Administrator",),
        ALEX.object_id: ("Authentication Administrator (eligible in PIM)",),
        MEGAN.object_id: (),
    }
    for user_id, roles in expected.items():
        assert await graph.gateway.directory_roles(user_id) == roles, user_id


def demo_data() -> dict[str, Any]:
    return json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))


async def test_roles_of_many_groups_are_read_page_by_page_and_in_chunks() -> None:
    """106 role-assignable groups: two pages of memberships, eight `principalId in` requests of at most 15."""
    data = demo_data()
    many = [f"00000000-0000-4000-8000-{index:012d}" for index in range(1, 107)]
    data["groups"] += [
        {"id": group_id, "displayName": f"Admins {index:03d}", "isAssignableToRole": True, "members": [MEGAN.object_id]}
        for index, group_id in enumerate(many, start=1)
    ]
    data["roleAssignments"].append({"principalId": many[-1], "roleDefinitionId": USER_ADMINISTRATOR})
    data["roleEligibilities"].append({"principalId": many[0], "roleDefinitionId": USER_ADMINISTRATOR})
    graph = await start_graph(tenant=parse_tenant(data))
    try:
        roles = await graph.gateway.directory_roles(MEGAN.object_id)
    finally:
        await graph.http.aclose()
        await graph.sandbox.close()
    assert roles == (
        "User Administrator (eligible in PIM, through group Admins 001)",
        "User Administrator (through group Admins 106)",
    )


async def test_a_tenant_without_pim_has_no_eligible_roles() -> None:
    data = demo_data()
    del data["roleEligibilities"], data["groupEligibilities"]
    data["pimLicensed"] = False
    graph = await start_graph(tenant=parse_tenant(data))
    try:
        assert await graph.gateway.directory_roles(HENRIETTA) == ()
        assert await graph.gateway.directory_roles(CHRISTIE) == (
            "Helpdesk Administrator (through group Helpdesk Admins)",
        )
    finally:
        await graph.http.aclose()
        await graph.sandbox.close()


@pytest.mark.parametrize(
    "path_regex",
    ["roleAssignments", "roleEligibilityScheduleInstances", "eligibilityScheduleInstances$", "graph.group"],
)
async def test_a_refused_role_read_refuses_rather_than_passes(graph: Graph, path_regex: str) -> None:
    """Deny by default: when one of the reads is refused, nobody is declared free of roles."""
    await graph.fault(method="GET", path_regex=path_regex, status=403, count=None)
    with pytest.raises(GraphRejected) as caught:
        await graph.gateway.directory_roles(MEGAN.object_id)
    assert "not allowed" in caught.value.user_message
