"""Delegated pass writes through the real msgraph-sdk client, against a Graph on a loopback port that records the
Authorization header of every request: the person's token on the writes only and the app's credential never with it,
nothing sent without a token, one fresh token after a 401, and Entra's 403 said as the role the person lacks (from
app-only reads of their roles and the target's administrative units). Application mode sends exactly what it did."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.core.credentials import AccessToken

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.domain.errors import EntraRefused, GraphRejected, Refused, Rule, SignInRequired
from bot.domain.model import Caller, DirectoryUser
from bot.domain.ports import DelegatedToken
from bot.settings import GraphMode, GraphSettings

ADELE = Caller(object_id="adele-id", tenant_id="t", display_name="Adele Vance")
MEGAN = DirectoryUser(object_id="megan-id", user_principal_name="megan@contoso.com", display_name="Megan Bowen")
PARIS = "9b1c0000-0000-4000-8000-00000000a001"
APP_TOKEN = "app-credential-token"
CREATED = {
    "id": "method-1",
    "temporaryAccessPass": "Secret-Pass-1",
    "createdDateTime": "2026-11-28T09:00:00Z",
    "startDateTime": "2026-11-28T09:00:00Z",
    "lifetimeInMinutes": 60,
    "isUsableOnce": False,
    "isUsable": True,
    "methodUsabilityReason": "EnabledByPolicy",
}
FORBIDDEN = {"error": {"code": "accessDenied", "message": "Request Authorization failed", "innerError": {}}}


@dataclass
class FakeGraph:
    """Records (method, path, Authorization); writes answer the scripted statuses first, then succeed."""

    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    write_statuses: list[int] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    eligibilities: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    unit_names: dict[str, str] = field(default_factory=dict)
    role_groups: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    orphan: bool = False  # a failed create that did make a pass: the read-back finds it (created just now)

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix("/v1.0")
        self.seen.append((request.method, path, request.headers.get("Authorization")))
        if request.method in ("POST", "DELETE") and "temporaryAccessPassMethods" in path:
            status = self.write_statuses.pop(0) if self.write_statuses else (201 if request.method == "POST" else 204)
            if status in (401, 403):
                return web.json_response(FORBIDDEN, status=status, headers={"request-id": f"req-{len(self.seen)}"})
            if status >= 500:
                return web.json_response({"error": {"code": "serviceUnavailable", "message": "x"}}, status=status)
            if request.method == "DELETE":
                self.orphan = False
                return web.Response(status=204)
            return web.json_response(CREATED, status=201)
        if request.method == "GET" and path.endswith("/temporaryAccessPassMethods"):
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            return _values([{**CREATED, "id": "orphan-1", "createdDateTime": now}] if self.orphan else [])
        principal = re.search(r"principalId eq '([^']+)'", request.query.get("$filter", ""))
        if path == "/roleManagement/directory/roleAssignments":
            return _values([a for a in self.assignments if principal and a["principalId"] == principal.group(1)])
        if path == "/roleManagement/directory/roleEligibilityScheduleInstances":
            return _values([a for a in self.eligibilities if principal and a["principalId"] == principal.group(1)])
        member = re.fullmatch(r"/users/([^/]+)/memberOf/(microsoft\.)?graph\.administrativeUnit", path)
        if member:
            return _values(self.units.get(member.group(1), []))
        groups = re.fullmatch(r"/users/([^/]+)/transitiveMemberOf/(microsoft\.)?graph\.group", path)
        if groups:
            return _values(self.role_groups.get(groups.group(1), []))
        unit = re.fullmatch(r"/directory/administrativeUnits/([^/]+)", path)
        if unit:
            return web.json_response({"id": unit.group(1), "displayName": self.unit_names.get(unit.group(1), "?")})
        user = re.fullmatch(r"/users/([^/]+)", path)
        if user:
            return web.json_response(
                {"id": MEGAN.object_id, "userPrincipalName": MEGAN.user_principal_name, "displayName": "Megan Bowen"}
            )
        return _values([])

    @property
    def writes(self) -> list[tuple[str, str, str | None]]:
        return [item for item in self.seen if item[0] in ("POST", "DELETE") and item[1] != "/$batch"]

    @property
    def reads(self) -> list[tuple[str, str, str | None]]:
        # A $batch of reads is a read; this fake answers it with no items, so each is then read on its own.
        return [item for item in self.seen if item[0] == "GET" or item[1] == "/$batch"]


def _values(items: list[Any]) -> web.Response:
    return web.json_response({"value": items})


def role(principal: str, name: str, scope: str = "/") -> dict[str, Any]:
    return {"principalId": principal, "directoryScopeId": scope, "roleDefinition": {"displayName": name}}


@dataclass
class Tokens:
    """DelegatedTokens in memory: a queue of tokens handed out in turn; none left → SignInRequired."""

    queue: list[str] = field(default_factory=list)
    asked: int = 0
    forgotten: list[str] = field(default_factory=list)

    async def token_for(self, actor: Caller) -> DelegatedToken:
        self.asked += 1
        if not self.queue:
            raise SignInRequired(actor.object_id)
        return DelegatedToken(actor.object_id, self.queue[0], datetime.now(UTC) + timedelta(hours=1))

    async def remember(
        self, actor: Caller, channel_user_id: str, channel_id: str, token: str, expiration: str | None
    ) -> bool:
        raise AssertionError("not used here")

    def forget(self, user_id: str) -> None:
        self.forgotten.append(user_id)
        if self.queue:
            self.queue.pop(0)


class AppCredential:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(APP_TOKEN, int(datetime.now(UTC).timestamp()) + 3600)

    async def close(self) -> None:
        return None


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("/v1.0"))  # type: ignore[attr-defined]
    try:
        yield fake
    finally:
        await server.close()


async def gateway(fake: FakeGraph, tokens: Tokens | None) -> tuple[GraphGateway, Any]:
    base_url: str = fake.base_url  # type: ignore[attr-defined]
    settings = GraphSettings(
        GraphMode.CLIENT_SECRET, base_url=base_url, tenant_id="t", client_id="c", client_secret="s"
    )
    client, http = build_graph_client(settings, base_url, credential=AppCredential())  # type: ignore[arg-type]

    async def no_sleep(_: float) -> None:
        return None

    return GraphGateway(client, SystemClock(), sleep=no_sleep, delegated=tokens), http


async def create(gw: GraphGateway, acting_as: Caller | None = ADELE) -> Any:
    return await gw.create_pass(MEGAN, lifetime_minutes=60, one_time=False, start_at=None, acting_as=acting_as)


async def test_the_write_carries_the_persons_token_and_never_the_apps_reads_stay_the_apps(graph: FakeGraph) -> None:
    gw, http = await gateway(graph, Tokens(["adele-graph-token"]))
    try:
        issued = await create(gw)
        assert issued.info.method_id == "method-1"
        await gw.current_pass(MEGAN.object_id)
        await gw.delete_pass(MEGAN.object_id, "method-1", acting_as=ADELE)
    finally:
        await http.aclose()
    assert [auth for _, _, auth in graph.writes] == ["Bearer adele-graph-token"] * 2
    assert [auth for _, _, auth in graph.reads] == [f"Bearer {APP_TOKEN}"]


async def test_application_mode_sends_the_apps_credential_and_nothing_more(graph: FakeGraph) -> None:
    gw, http = await gateway(graph, None)
    try:
        await create(gw, acting_as=ADELE)
        await gw.delete_pass(MEGAN.object_id, "method-1", acting_as=ADELE)
    finally:
        await http.aclose()
    assert [(method, auth) for method, _, auth in graph.seen] == [
        ("POST", f"Bearer {APP_TOKEN}"),
        ("DELETE", f"Bearer {APP_TOKEN}"),
    ]


async def test_without_a_token_nothing_is_sent(graph: FakeGraph) -> None:
    gw, http = await gateway(graph, Tokens([]))
    try:
        with pytest.raises(SignInRequired) as caught:
            await create(gw)
        with pytest.raises(SignInRequired):
            await gw.delete_pass(MEGAN.object_id, "method-1", acting_as=ADELE)
    finally:
        await http.aclose()
    assert caught.value.user_id == ADELE.object_id and graph.seen == []


async def test_a_delegated_write_naming_nobody_is_refused_unsent(graph: FakeGraph) -> None:
    gw, http = await gateway(graph, Tokens(["t"]))
    try:
        with pytest.raises(GraphRejected, match="no person whose Entra rights"):
            await create(gw, acting_as=None)
    finally:
        await http.aclose()
    assert graph.seen == []


async def test_a_401_gets_one_fresh_token_and_one_retry(graph: FakeGraph) -> None:
    graph.write_statuses = [401]
    tokens = Tokens(["stale", "fresh"])
    gw, http = await gateway(graph, tokens)
    try:
        await create(gw)
    finally:
        await http.aclose()
    assert [auth for _, _, auth in graph.writes] == ["Bearer stale", "Bearer fresh"]
    assert tokens.forgotten == [ADELE.object_id] and graph.reads == []


@pytest.mark.parametrize("write", ["create", "delete"])
async def test_a_second_401_means_sign_in(graph: FakeGraph, write: str) -> None:
    graph.write_statuses = [401, 401]
    gw, http = await gateway(graph, Tokens(["stale", "also-stale", "third"]))
    try:
        with pytest.raises(SignInRequired):
            if write == "create":
                await create(gw)
            else:
                await gw.delete_pass(MEGAN.object_id, "method-1", acting_as=ADELE)
    finally:
        await http.aclose()
    assert len(graph.writes) == 2


async def test_a_401_with_no_fresh_token_means_sign_in(graph: FakeGraph) -> None:
    graph.write_statuses = [401]
    gw, http = await gateway(graph, Tokens(["stale"]))
    try:
        with pytest.raises(SignInRequired):
            await create(gw)
    finally:
        await http.aclose()
    assert len(graph.writes) == 1


async def refused(graph: FakeGraph, *, delete: bool = False) -> EntraRefused:
    graph.write_statuses = [403]
    gw, http = await gateway(graph, Tokens(["adele-graph-token"]))
    try:
        with pytest.raises(EntraRefused) as caught:
            if delete:
                await gw.delete_pass(MEGAN.object_id, "method-1", acting_as=ADELE)
            else:
                await create(gw)
    finally:
        await http.aclose()
    assert len(graph.writes) == 1, "a 403 is not retried"
    assert all(auth == f"Bearer {APP_TOKEN}" for _, _, auth in graph.reads), "the explanation is read app-only"
    assert caught.value.rule is Rule.ENTRA_REFUSED and isinstance(caught.value, Refused)
    return caught.value


async def test_a_403_without_any_role(graph: FakeGraph) -> None:
    refusal = await refused(graph)
    assert refusal.user_message == "You need the Authentication Administrator role in Entra to issue passes."
    assert refusal.request_id == "req-1"


async def test_a_403_with_the_role_only_eligible(graph: FakeGraph) -> None:
    graph.eligibilities = [role(ADELE.object_id, "Authentication Administrator")]
    assert (await refused(graph)).user_message == (
        "Activate your Authentication Administrator role in Privileged Identity Management first, then try again."
    )


async def test_a_403_with_a_role_at_a_unit_the_target_is_not_in(graph: FakeGraph) -> None:
    graph.assignments = [role(ADELE.object_id, "Authentication Administrator", f"/administrativeUnits/{PARIS}")]
    graph.unit_names = {PARIS: "Paris office"}
    assert (await refused(graph, delete=True)).user_message == (
        "Your Authentication Administrator role covers only the administrative unit Paris office; "
        "Megan Bowen is not in it."
    )


async def test_a_403_for_a_privileged_target_through_a_role_assignable_group(graph: FakeGraph) -> None:
    graph.assignments = [
        role(ADELE.object_id, "Authentication Administrator"),
        role("helpdesk-group", "Helpdesk Administrator"),
    ]
    graph.role_groups = {MEGAN.object_id: [{"id": "helpdesk-group", "displayName": "Helpdesk Admins"}]}
    assert (await refused(graph)).user_message == (
        "Megan Bowen holds an admin role: only a Privileged Authentication Administrator can give them a pass."
    )


async def test_a_403_the_roles_do_not_explain_says_entras_code(graph: FakeGraph) -> None:
    graph.assignments = [role(ADELE.object_id, "Privileged Authentication Administrator")]
    refusal = await refused(graph)
    assert refusal.user_message == "Entra refused this write with your rights (accessDenied, request id req-1)."
    assert "Request Authorization failed" not in refusal.user_message
    assert json.dumps(FORBIDDEN)  # the raw message stays Graph's


async def test_the_orphan_of_a_failed_create_is_deleted_with_the_same_persons_token(graph: FakeGraph) -> None:
    graph.write_statuses = [503]
    graph.orphan = True
    gw, http = await gateway(graph, Tokens(["adele-graph-token"]))
    try:
        await create(gw)
    finally:
        await http.aclose()
    assert [(method, auth) for method, _, auth in graph.writes] == [
        ("POST", "Bearer adele-graph-token"),
        ("DELETE", "Bearer adele-graph-token"),
        ("POST", "Bearer adele-graph-token"),
    ]
    assert [auth for _, _, auth in graph.reads] == [f"Bearer {APP_TOKEN}"], "the read-back is the app's"
