"""The Graph adapter's name search and direct reports (real msgraph-sdk) against the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.adapters.graph import USER_FIELDS, build_graph_client
from bot.adapters.graph_json import user_search_clauses
from bot.sandbox.tenant import TenantUser, load_tenant
from bot.settings import DEMO_TENANT_FILE, GraphMode, GraphSettings
from tests.adapters.test_graph_gateway import Graph, start_graph
from tests.adapters.test_graph_json import sent_by_kiota
from tests.harness.bot import DIEGO, MEGAN

DARA = TenantUser("a0000000-0000-0000-0000-000000000001", "dj@contoso.onmicrosoft.com", 'Dara "DJ" O\'Neil')
SLASH = TenantUser("a0000000-0000-0000-0000-000000000002", "bs@contoso.onmicrosoft.com", "Back\\Slash Person")
AMP = TenantUser("a0000000-0000-0000-0000-000000000003", "tj@contoso.onmicrosoft.com", "Tom & Jerry")


@pytest.fixture
async def graph() -> AsyncIterator[Graph]:
    demo = load_tenant(DEMO_TENANT_FILE)
    running = await start_graph(tenant=replace(demo, users=(*demo.users, DARA, SLASH, AMP)))
    try:
        yield running
    finally:
        await running.http.aclose()
        await running.sandbox.close()


def test_search_clauses_quote_and_escape_as_graph_documents() -> None:
    assert user_search_clauses('  Dara  "DJ" \\ ') == " OR ".join(
        f'"{name}:Dara \\"DJ\\" \\\\"' for name in ("displayName", "givenName", "surname", "mail", "userPrincipalName")
    )
    assert user_search_clauses("Tom & Jerry") == user_search_clauses("Tom Jerry")  # Graph's known '&' issue
    assert user_search_clauses("  & ") is None


async def test_a_name_finds_people_with_department_and_job_title(graph: Graph) -> None:
    found = await graph.gateway.search_users("Megan", limit=10)
    assert [(user.display_name, user.department, user.job_title) for user in found] == [
        ("Megan Bowen", "Marketing", "Marketing Manager"),
        ("Megan Fischer", "Sales", "Account Executive"),
    ]
    assert [user.object_id for user in await graph.gateway.search_users("bowen meg", limit=10)] == [MEGAN.object_id]
    assert len(await graph.gateway.search_users("Megan", limit=1)) == 1
    assert await graph.gateway.search_users("meganb@contoso", limit=10) == [found[0]]
    assert await graph.gateway.search_users("Zed", limit=10) == []


async def test_quotes_backslashes_and_ampersands_reach_graph_intact(graph: Graph) -> None:
    assert [user.object_id for user in await graph.gateway.search_users('"DJ" dara', limit=5)] == [DARA.id]
    assert [user.object_id for user in await graph.gateway.search_users("back\\slash", limit=5)] == [SLASH.id]
    assert [user.object_id for user in await graph.gateway.search_users("Tom & Jerry", limit=5)] == [AMP.id]


async def test_direct_reports_are_users_with_their_work(graph: Graph) -> None:
    reports = await graph.gateway.direct_reports(DIEGO.object_id)
    megan = next(user for user in reports if user.object_id == MEGAN.object_id)
    assert megan.department == "Marketing" and megan.job_title == "Marketing Manager"
    assert {user.display_name for user in reports} >= {"Megan Bowen", "Megan Fischer", "Lynne Robbins"}
    assert await graph.gateway.direct_reports(MEGAN.object_id) != []


@pytest.mark.parametrize("text", ["Megan Bowen", '"DJ" \\ o\'neil', "zoë & ü/?#%"])
def test_fast_url_expansion_matches_the_sdks_for_searches(text: str) -> None:
    from msgraph.generated.users.item.direct_reports.graph_user.graph_user_request_builder import (
        GraphUserRequestBuilder,
    )
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    from bot.adapters.graph import EVENTUAL_CONSISTENCY
    from bot.adapters.graph_calls import _Call
    from bot.adapters.graph_urls import expanded_url

    client, _http = build_graph_client(GraphSettings(GraphMode.ANONYMOUS), "https://graph.microsoft.com/v1.0")
    search = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        search=user_search_clauses(text), top=11, select=USER_FIELDS
    )
    reports = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=USER_FIELDS, top=999)
    requests = [
        client.users.to_get_request_information(_Call().configuration(search, EVENTUAL_CONSISTENCY)),
        client.users.by_user_id(MEGAN.object_id).direct_reports.graph_user.to_get_request_information(
            _Call().configuration(reports)
        ),
    ]
    for request in requests:
        request.path_parameters["baseurl"] = "https://graph.microsoft.com/v1.0"
        fast = expanded_url(request)
        assert fast is not None, request.url_template
        assert fast == sent_by_kiota(request.url)  # kiota's own expansion, as its middleware sends it
    assert requests[0].headers.get("ConsistencyLevel") == {"eventual"}
