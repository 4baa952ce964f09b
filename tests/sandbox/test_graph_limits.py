"""The published identity-and-access throttling model: costs, each limit and its window, headers, $batch items.

Every window runs on the sandbox's clock (frozen here, moved with `advance`), never on the wall clock.
"""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from bot.sandbox import SandboxClock, SandboxOptions
from bot.sandbox.throttle import Cost, GraphThrottle, ThrottleSettings, request_cost, tenant_size
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import FROZEN_NOW, LEE, LEE_ID, call

USER = "users/9d3562ea-aefc-4b97-9721-5e506d279f43"
PASSES = f"{USER}/authentication/temporaryAccessPassMethods"
SELECT = {"$select": "id,displayName"}


def throttle(clock: SandboxClock, users: int = 10, **settings: object) -> GraphThrottle:
    return GraphThrottle(
        ThrottleSettings(**{"graph_limits": True, **settings}),  # type: ignore[arg-type]
        users,
        lambda: clock.now().timestamp(),
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", USER, {}, Cost(2, 0)),
        ("GET", USER, SELECT, Cost(1, 0)),
        ("GET", "/users", {"$top": "1", "$select": "id"}, Cost(1, 0)),  # never below 1
        ("GET", "/users", {"$top": "50"}, Cost(2, 0)),
        ("GET", PASSES, {}, Cost(1, 0)),
        ("POST", PASSES, {}, Cost(1, 1)),
        ("DELETE", f"{PASSES}/abc", {}, Cost(1, 1)),
        ("POST", f"{USER}/checkMemberGroups", {}, Cost(4, 0)),  # a POST that reads: no write
        ("POST", "/me/checkMemberGroups", {}, Cost(4, 0)),
        ("GET", f"{USER}/transitiveMemberOf/microsoft.graph.group", {"$select": "id"}, Cost(1, 0)),
        ("GET", f"{USER}/transitiveMemberOf", {}, Cost(2, 0)),
        ("GET", "/roleManagement/directory/roleAssignments", {"$expand": "roleDefinition"}, Cost(2, 0)),
        ("GET", "/groups/g1/transitiveMembers", {}, Cost(5, 0)),
        (
            "GET",
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass",
            {},
            Cost(1, 0),
        ),
    ],
)
def test_request_costs_follow_the_published_table(
    method: str, path: str, query: dict[str, str], expected: Cost
) -> None:
    assert request_cost(method, path, query) == expected


def test_tenant_size_tiers() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    assert [tenant_size(n) for n in (1, 49, 50, 500, 501)] == ["S", "S", "M", "M", "L"]
    limits = [throttle(clock, users).resource_units.limit for users in (49, 50, 501)]
    assert limits == [3_500, 5_000, 8_000]
    assert throttle(clock, 10, tenant_size="L").resource_units.limit == 8_000


def test_resource_units_per_ten_seconds_are_charged_by_cost() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 10)  # S: 3,500 units
    admitted = [model.admit("GET", USER, {}, {}).admitted for _ in range(1_751)]  # 2 units each
    assert admitted.count(True) == 1_750
    refused = model.admit("GET", USER, SELECT, {})
    assert (refused.admitted, refused.limit_name, refused.retry_after_s) == (
        False,
        "resource units per app+tenant",
        10,
    )
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert refused.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    clock.advance(9.9)
    assert not model.admit("GET", USER, SELECT, {}).admitted
    clock.advance(0.1)
    assert model.admit("GET", USER, SELECT, {}).admitted


def test_retry_after_is_the_time_until_enough_has_slid_out() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 10)
    for _ in range(1_000):
        model.admit("GET", USER, SELECT, {})
    clock.advance(5)
    for _ in range(2_500):
        model.admit("GET", USER, SELECT, {})
    clock.advance(1)
    refused = model.admit("GET", USER, SELECT, {})
    assert (refused.admitted, refused.retry_after_s) == (False, 4)  # the first 1,000 leave at t = 10 s


def test_writes_per_app_are_limited_to_3000_per_150_seconds() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 1_000)  # L: 8,000 units, so units do not bind first
    assert all(model.admit("POST", PASSES, {}, {}).admitted for _ in range(3_000))
    refused = model.admit("DELETE", f"{PASSES}/x", {}, {})
    assert (refused.admitted, refused.limit_name, refused.retry_after_s) == (False, "writes per app+tenant", 150)
    assert refused.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
    assert model.admit("GET", USER, SELECT, {}).admitted  # reads are still served
    clock.advance(150)
    assert model.admit("POST", PASSES, {}, {}).admitted


def test_writes_per_tenant_count_every_app() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 1_000)
    for app in range(6):
        for _ in range(3_000):
            assert model.admit("POST", PASSES, {}, {"x-sandbox-app-id": f"app{app}"}).admitted
    refused = model.admit("POST", PASSES, {}, {})  # tapbot itself has written nothing yet
    assert (refused.admitted, refused.limit_name, refused.retry_after_s) == (False, "writes per tenant", 300)
    assert refused.headers["x-ms-throttle-scope"].startswith("Tenant/Write/")
    clock.advance(300)
    assert model.admit("POST", PASSES, {}, {}).admitted


def test_an_unpublished_limit_on_authentication_methods_can_bind_first() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 1_000, auth_method_limit=5, auth_method_window_s=60, auth_method_writes_only=True)
    assert all(model.admit("POST", PASSES, {}, {}).admitted for _ in range(5))
    assert model.admit("GET", PASSES, {}, {}).admitted  # writes only: reading the pass does not count
    assert model.admit("POST", f"{USER}/checkMemberGroups", {}, {}).admitted  # not an authentication method
    refused = model.admit("POST", PASSES, {}, {})
    assert (refused.admitted, refused.limit_name, refused.retry_after_s) == (
        False,
        "authentication-method requests",
        60,
    )
    every_request = throttle(clock, 1_000, auth_method_limit=1)
    assert every_request.admit("GET", PASSES, {}, {}).admitted
    assert not every_request.admit("GET", f"{USER}/authentication/methods", {}, {}).admitted


def test_the_simple_budget_remains_one_configuration() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 10, graph_limits=False, request_budget=2)
    answers = [model.admit("POST", f"{USER}/checkMemberGroups", {}, {}) for _ in range(3)]
    assert [answer.admitted for answer in answers] == [True, True, False]
    assert answers[0].headers == {}  # no resource-unit headers without Graph's model
    assert answers[2].limit_name == "requests"


def test_limit_percentage_header_only_above_eighty_percent() -> None:
    clock = SandboxClock(frozen_at=FROZEN_NOW)
    model = throttle(clock, 10)
    answers = [model.admit("GET", USER, SELECT, {}) for _ in range(2_800)]  # exactly 80 % of 3,500
    last = answers[-1]
    assert last.headers == {"x-ms-resource-unit": "1"}
    above = model.admit("GET", USER, {}, {})
    assert above.headers == {"x-ms-resource-unit": "2", "x-ms-throttle-limit-percentage": "0.80"}
    for _ in range(300):
        above = model.admit("GET", USER, SELECT, {})
    assert above.headers["x-ms-throttle-limit-percentage"] == "0.89"


async def test_headers_and_batch_items_over_http(start: StartSandbox, clock: SandboxClock) -> None:
    sandbox = await start(options=SandboxOptions(graph_limits=True, clock=clock))
    async with ClientSession(base_url=sandbox.root_url) as http:
        single = await call(http, "GET", f"/v1.0/users/{LEE}?$select=id")
        sandbox.state.throttle.resource_units.add(clock.now().timestamp(), 3_500 - 1 - 5)
        items = [{"id": str(n), "method": "GET", "url": f"/users/{LEE_ID}"} for n in range(3)]  # 2 units each
        batch = await call(http, "POST", "/v1.0/$batch", json={"requests": items})
        state = await call(http, "GET", "/_sandbox/state")

    assert single.status == 200
    assert single.headers["x-ms-resource-unit"] == "1"
    assert "x-ms-throttle-limit-percentage" not in single.headers
    answers = sorted(batch.body["responses"], key=lambda item: item["status"])
    assert [item["status"] for item in answers] == [200, 200, 429]
    assert answers[1]["headers"]["x-ms-throttle-limit-percentage"] == "1.00"
    assert answers[2]["headers"]["Retry-After"] == "10"
    assert answers[2]["headers"]["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    counters = state.body["counters"]
    assert counters["resource_units"] == 1 + 2 + 2  # the $batch envelope itself costs nothing
    assert counters["throttled_by"] == {"resource units per app+tenant": 1}
