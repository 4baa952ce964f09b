"""`/users?$search=...` and `$filter=startswith(...)` as Graph documents them (bot/sandbox/user_search.py)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from aiohttp import ClientSession

from bot.sandbox.tenant import Tenant, TenantUser
from bot.sandbox.user_search import SEARCH_NEEDS_HEADER
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import DIEGO_ID, MEGAN_ID, call

EVENTUAL = {"ConsistencyLevel": "eventual"}


def users(search: str | None = None, **query: str) -> str:
    parts = [f"{name}={quote(value, safe='')}" for name, value in query.items()]
    if search is not None:
        parts.append(f"$search={quote(search, safe='')}")
    return "/v1.0/users?" + "&".join([*parts, "$select=displayName"])


def names(body: dict[str, object]) -> list[str]:
    return [str(item["displayName"]) for item in body["value"]]  # type: ignore[index,union-attr]


async def test_search_needs_the_consistency_header_as_in_graph(http: ClientSession) -> None:
    refused = await call(http, "GET", users('"displayName:megan"'))
    assert refused.status == 400
    assert refused.error["code"] == "Request_UnsupportedQuery"
    assert refused.error["message"] == SEARCH_NEEDS_HEADER
    answered = await call(http, "GET", users('"displayName:megan"'), headers=EVENTUAL)
    assert answered.status == 200
    assert names(answered.body) == ["Megan Bowen", "Megan Fischer"]


async def test_display_names_match_by_word_starts_in_any_order(http: ClientSession) -> None:
    async def found(search: str) -> list[str]:
        answer = await call(http, "GET", users(search), headers=EVENTUAL)
        assert answer.status == 200, answer.body
        return names(answer.body)

    assert await found('"displayName:bowen MEG"') == ["Megan Bowen"]
    assert await found('"displayName:egan"') == []  # tokens, not "contains"
    assert await found('"mail:meganf"') == ["Megan Fischer"]  # other properties: startsWith
    assert await found('"userPrincipalName:adelev@contoso"') == ["Adele Vance"]
    assert await found('"givenName:Lid" OR "surname:Gu"') == ["Lee Gu", "Lidia Holloway", "Pradeep Gupta"]
    assert await found('("displayName:megan" OR "displayName:lee") AND "department:Marketing"') == [
        "Megan Bowen",
        "Lee Gu",
    ]


async def test_clause_syntax_errors_are_400(http: ClientSession) -> None:
    for bad in ("displayName:megan", '"displayName:megan" or "mail:x"', '"shoeSize:42"', '"displayName:megan'):
        answer = await call(http, "GET", users(bad), headers=EVENTUAL)
        assert answer.status == 400, bad


async def test_quotes_and_backslashes_are_escaped_inside_a_clause(start: StartSandbox, demo_tenant: Tenant) -> None:
    extra = (
        TenantUser("a0000000-0000-0000-0000-000000000001", "dj@contoso.onmicrosoft.com", 'Dara "DJ" O\'Neil'),
        TenantUser("a0000000-0000-0000-0000-000000000002", "back@contoso.onmicrosoft.com", "Back\\Slash Person"),
    )
    tenant = replace(demo_tenant, users=(*demo_tenant.users, *extra))
    sandbox = await start(tenant)
    async with ClientSession(base_url=sandbox.root_url) as session:
        quoted = await call(session, "GET", users('"displayName:\\"DJ\\" dara"'), headers=EVENTUAL)
        slashed = await call(session, "GET", users('"displayName:back\\\\slash"'), headers=EVENTUAL)
    assert names(quoted.body) == ['Dara "DJ" O\'Neil']
    assert names(slashed.body) == ["Back\\Slash Person"]


async def test_count_only_with_the_header_and_top_within_graphs_range(http: ClientSession) -> None:
    counted = await call(http, "GET", users('"displayName:megan"', **{"$count": "true", "$top": "1"}), headers=EVENTUAL)
    assert counted.body["@odata.count"] == 2 and len(counted.body["value"]) == 1
    assert "@odata.nextLink" in counted.body
    ignored = await call(http, "GET", users(None, **{"$count": "true", "$top": "1"}))
    assert ignored.status == 200 and "@odata.count" not in ignored.body
    too_many = await call(http, "GET", users('"displayName:megan"', **{"$top": "1000"}), headers=EVENTUAL)
    assert too_many.status == 400


async def test_startswith_filters_work_without_the_header(http: ClientSession) -> None:
    answer = await call(
        http, "GET", users(None, **{"$filter": "startswith(givenName,'Meg') or startswith(mail,'lee')"})
    )
    assert answer.status == 200
    assert sorted(names(answer.body)) == ["Lee Gu", "Megan Bowen", "Megan Fischer"]
    unsupported = await call(http, "GET", users(None, **{"$filter": "startswith(jobTitle,'Mark')"}))
    assert unsupported.status == 400 and unsupported.error["code"] == "Request_UnsupportedQuery"


async def test_direct_reports_cast_to_users(http: ClientSession) -> None:
    answer = await call(
        http, "GET", f"/v1.0/users/{DIEGO_ID}/directReports/microsoft.graph.user?$select=id,displayName,department"
    )
    assert answer.status == 200
    assert {item["id"] for item in answer.body["value"]} >= {MEGAN_ID}
    assert all(item["@odata.type"] == "#microsoft.graph.user" for item in answer.body["value"])
    assert "Megan Fischer" in names(answer.body)
