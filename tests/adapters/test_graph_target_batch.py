"""The target's eligibility reads as one Graph `$batch` (GraphGateway.target_reading), against the sandbox: the same
facts as the single requests, in one HTTP round trip, and an item Graph refused fails or recovers exactly as its
single request would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.domain.errors import GraphRejected, GraphUnavailable
from bot.sandbox.tenant import parse_tenant
from bot.settings import DEMO_TENANT_FILE
from tests.adapters.sandbox_graph import Graph, recording_graph

DEMO = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
LEE = "9d3562ea-aefc-4b97-9721-5e506d279f43"  # demo: an ordinary member, no role
PATTI = "c41e7b52-3d8f-4a6e-9b1c-7e2d5f0a9c36"  # demo: owner of "Helpdesk Admins" (a role through a group)
JONI = "8b22bdb0-c56c-4ef5-a5f1-662179b90168"  # demo: holds a (seeded, expired) pass
GROUP_IDS = [str(group["id"]) for group in DEMO["groups"]]


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    async with recording_graph(parse_tenant(DEMO)) as graph:
        yield graph


async def test_every_demo_user_reads_the_same_facts_as_the_single_requests(graph: Graph) -> None:
    readings = []
    for user in DEMO["users"]:
        user_id = str(user["id"])
        reading = await graph.gateway.target_reading(user_id, GROUP_IDS)
        readings.append(reading)
        assert reading.role_names == await graph.gateway.directory_roles(user_id), user_id
        assert reading.member_group_ids == await graph.gateway.member_groups(user_id, GROUP_IDS), user_id
        assert reading.current_pass == await graph.gateway.current_pass(user_id), user_id
    # The demo tenant has role holders, group members and a live pass: the comparison is not between empty answers.
    assert any(reading.role_names for reading in readings)
    assert any(reading.member_group_ids for reading in readings)


async def test_with_methods_every_demo_user_reads_the_pass_and_methods_of_the_single_requests(graph: Graph) -> None:
    readings = []
    for user in DEMO["users"]:
        user_id = str(user["id"])
        graph.sent.clear()
        reading = await graph.gateway.target_reading(user_id, GROUP_IDS, with_methods=True)
        assert not any("/authentication/" in request for request in graph.sent), graph.sent  # in the batch
        readings.append(reading)
        assert reading.current_pass == await graph.gateway.current_pass(user_id), user_id
        assert reading.sign_in_methods == await graph.gateway.sign_in_methods(user_id), user_id
        assert reading.role_names == await graph.gateway.directory_roles(user_id), user_id
        assert reading.member_group_ids == await graph.gateway.member_groups(user_id, GROUP_IDS), user_id
    # Not only empty answers: a pass (Joni's), and methods besides a password (Megan's).
    assert any(reading.current_pass for reading in readings)
    assert any(len(reading.sign_in_methods or ()) > 1 for reading in readings)
    assert all(reading.sign_in_methods for reading in readings)


async def test_an_unreadable_methods_list_raises_the_single_requests_error(graph: Graph) -> None:
    graph.fault(r"/authentication/methods$", 503, count=None)
    with pytest.raises(GraphUnavailable) as batched:
        await graph.gateway.target_reading(JONI, GROUP_IDS, with_methods=True)
    with pytest.raises(GraphUnavailable) as single:
        await graph.gateway.sign_in_methods(JONI)
    assert str(batched.value) == str(single.value)


async def test_a_listed_pass_without_its_usability_is_read_on_its_own(graph: Graph) -> None:
    listed = {
        "value": [
            {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "password"},
            {"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod", "id": "other"},
        ]
    }
    current, types = await graph.gateway._pass_from_methods(JONI, listed)  # pyright: ignore[reportPrivateUsage]
    assert graph.sent == [f"GET /v1.0/users/{JONI}/authentication/temporaryAccessPassMethods"]
    assert current is not None and current == await graph.gateway.current_pass(JONI)
    assert types == tuple(method["@odata.type"] for method in listed["value"])
    graph.sent.clear()
    current, _ = await graph.gateway._pass_from_methods(JONI, {"value": listed["value"][:1]})  # pyright: ignore[reportPrivateUsage]
    assert current is None and graph.sent == []  # no pass listed: no pass (Graph lists every method)


async def test_an_ordinary_user_costs_one_round_trip(graph: Graph) -> None:
    reading = await graph.gateway.target_reading(LEE, GROUP_IDS)
    assert reading.role_names == ()
    assert graph.sent == ["POST /v1.0/$batch"]
    before = graph.sandbox.state.counters.requests_served
    await graph.gateway.directory_roles(LEE)
    await graph.gateway.member_groups(LEE, GROUP_IDS)
    await graph.gateway.current_pass(LEE)
    assert len(graph.sent) == 1 + graph.sandbox.state.counters.requests_served - before > 1 + 1


async def test_a_role_held_through_a_group_is_read_in_a_second_round(graph: Graph) -> None:
    reading = await graph.gateway.target_reading(PATTI, GROUP_IDS)
    assert reading.role_names == ("Helpdesk Administrator (through ownership of group Helpdesk Admins)",)
    assert graph.sent[0] == "POST /v1.0/$batch"
    assert len(graph.sent) > 1  # the group's assignments and eligibilities, as directory_roles reads them


async def test_a_refused_item_raises_the_single_requests_error(graph: Graph) -> None:
    graph.fault(r"/roleManagement/directory/roleAssignments$", 403)  # this once: the batch's item
    with pytest.raises(GraphRejected) as batched:
        await graph.gateway.target_reading(LEE, GROUP_IDS)
    assert graph.sent == ["POST /v1.0/$batch"]  # mapped from the item's answer, not asked again
    assert "Request id: unknown" not in str(batched.value)
    graph.fault(r"/roleManagement/directory/roleAssignments$", 403)
    with pytest.raises(GraphRejected) as single:
        await graph.gateway.directory_roles(LEE)
    assert _without_request_id(batched.value) == _without_request_id(single.value)
    assert "read directory role assignments" in str(batched.value)


async def test_a_failing_pass_read_raises_the_single_requests_error(graph: Graph) -> None:
    graph.fault(r"/authentication/temporaryAccessPassMethods$", 503, count=None)
    with pytest.raises(GraphUnavailable) as batched:
        await graph.gateway.target_reading(LEE, GROUP_IDS)
    with pytest.raises(GraphUnavailable) as single:
        await graph.gateway.current_pass(LEE)
    assert str(batched.value) == str(single.value)


async def test_a_throttled_item_is_sent_again_on_its_own(graph: Graph) -> None:
    # The batch's first item: nothing was admitted before it, so the pacer learns no limit from this 429 (the items
    # ahead of a refused one count as admitted before it: tests/adapters/test_graph_batch_pacing.py).
    graph.fault(r"/transitiveMemberOf/graph.group$", 429, retry_after_s=0)
    reading = await graph.gateway.target_reading(PATTI, GROUP_IDS)
    assert reading.role_names == await graph.gateway.directory_roles(PATTI)
    assert graph.sent[:2] == [
        "POST /v1.0/$batch",
        f"GET /v1.0/users/{PATTI}/transitiveMemberOf/graph.group",
    ]


async def test_no_pim_licence_in_an_item_means_no_eligibility_without_another_request(graph: Graph) -> None:
    graph.fault(r"/roleEligibilityScheduleInstances$", 400, code="AadPremiumLicenseRequired")
    reading = await graph.gateway.target_reading(LEE, GROUP_IDS)
    assert reading.role_names == ()
    assert graph.sent == ["POST /v1.0/$batch"]


def _without_request_id(error: Exception) -> str:
    return str(error).split("Request id:")[0]
