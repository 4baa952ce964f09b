"""Follow-through's one read per check (GET /users/{id}/authentication/methods), with the real msgraph-sdk against
the sandbox: the methods with their createdDateTime, and the pass from the same list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.domain.follow_through import STRONG_METHODS
from bot.domain.model import UsabilityReason
from tests.adapters.test_graph_gateway import Graph, megan, start_graph
from tests.harness.bot import MEGAN


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    running = await start_graph()
    try:
        yield running
    finally:
        await running.http.aclose()
        await running.sandbox.close()


async def test_methods_and_the_pass_in_one_request(graph: Graph) -> None:
    before = (await graph.counters())["requests_received"]
    read = await graph.gateway.methods_and_pass(MEGAN.object_id)
    assert read.current_pass is None
    assert (await graph.counters())["requests_received"] - before == 2, "no pass in the list: confirmed on its own"
    [authenticator] = [method for method in read.methods if method.label == "Microsoft Authenticator"]
    assert authenticator.created_at is None, "not set up for phone sign-in: Graph gives no time"

    issued = await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=True, start_at=None)
    async with aiohttp.ClientSession() as session:
        answer = await session.post(
            f"{graph.sandbox.control_url}/users/{MEGAN.object_id}/methods", json={"type": "fido2"}
        )
        assert answer.status == 201
    before = (await graph.counters())["requests_received"]
    read = await graph.gateway.methods_and_pass(MEGAN.object_id)
    assert (await graph.counters())["requests_received"] - before == 1
    assert read.current_pass is not None and read.current_pass.method_id == issued.info.method_id
    assert read.current_pass.usability_reason is UsabilityReason.ENABLED_BY_POLICY
    [fido2] = [method for method in read.methods if method.odata_type == "#microsoft.graph.fido2AuthenticationMethod"]
    assert fido2.label == STRONG_METHODS[fido2.odata_type] and fido2.created_at is not None
    assert fido2.created_at >= issued.info.start_at
