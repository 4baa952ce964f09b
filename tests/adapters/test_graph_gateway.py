"""The Graph adapter (real msgraph-sdk) against the sandbox tenant over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
import pytest

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.domain.errors import GraphUnavailable, Refused, Rule, Throttled
from bot.domain.model import DirectoryUser, UserType
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import load_tenant
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

    async def fault(self, **rule: object) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.sandbox.control_url}/faults", json=rule) as answer,
        ):
            assert answer.status in (200, 201), await answer.text()

    async def passes(self) -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session, session.get(f"{self.sandbox.control_url}/state") as answer:
            return [item for item in (await answer.json())["passes"] if item["user_id"] == MEGAN.object_id]


async def start_graph(timeout: float = 5.0) -> Graph:
    sandbox = await start_sandbox(load_tenant(DEMO_TENANT_FILE))
    client, http = build_graph_client(GraphSettings(GraphMode.SANDBOX, timeout_seconds=timeout), sandbox.base_url)
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return Graph(GraphGateway(client, SystemClock(), sleep=record_sleep), sandbox, http, sleeps)


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
    assert await graph.gateway.directory_roles(ADELE.object_id) == ()
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
    await graph.fault(method="POST", path_regex=CREATE_PATH, status=429, retry_after_s=2, count=1)
    await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
    assert graph.sleeps[:1] == [2.0]
    await graph.fault(method="POST", path_regex=CREATE_PATH, status=429, retry_after_s=60, count=1)
    with pytest.raises(Throttled) as caught:
        await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=False, start_at=None)
    assert caught.value.retry_after_seconds == 60


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
