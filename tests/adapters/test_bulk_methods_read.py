"""A bulk row's one read under the user's lock (GET /users/{id}/authentication/methods) with the real msgraph-sdk
against the sandbox: the methods and the pass from the same list, and no second request when the list holds no pass
(`confirm_missing_pass=False`; follow-through still confirms it on the pass endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

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


async def requests_for(graph: Graph, user_id: str, *, confirm_missing_pass: bool) -> int:
    before = (await graph.counters())["requests_received"]
    await graph.gateway.methods_and_pass(user_id, confirm_missing_pass=confirm_missing_pass)
    return (await graph.counters())["requests_received"] - before


async def test_one_request_whether_or_not_the_user_holds_a_pass(graph: Graph) -> None:
    read = await graph.gateway.methods_and_pass(MEGAN.object_id, confirm_missing_pass=False)
    assert read.current_pass is None
    assert "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod" in {m.odata_type for m in read.methods}
    assert await requests_for(graph, MEGAN.object_id, confirm_missing_pass=False) == 1
    assert await requests_for(graph, MEGAN.object_id, confirm_missing_pass=True) == 2, "follow-through: confirmed"

    issued = await graph.gateway.create_pass(megan(), lifetime_minutes=60, one_time=True, start_at=None)
    read = await graph.gateway.methods_and_pass(MEGAN.object_id, confirm_missing_pass=False)
    assert read.current_pass is not None
    assert (read.current_pass.method_id, read.current_pass.created_at, read.current_pass.expires_at) == (
        issued.info.method_id,
        issued.info.created_at,
        issued.info.expires_at,
    )
    assert read.current_pass.is_live(issued.info.start_at)
    assert "#microsoft.graph.temporaryAccessPassAuthenticationMethod" not in {m.odata_type for m in read.methods}
    assert await requests_for(graph, MEGAN.object_id, confirm_missing_pass=False) == 1
