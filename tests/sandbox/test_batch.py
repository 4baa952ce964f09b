"""JSON $batch: items go through the same handlers and are throttled one by one."""

from __future__ import annotations

from aiohttp import ClientSession

from bot.sandbox import SandboxClock, SandboxOptions
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import JANE_GUEST, LEE, MEGAN_ID, call, quote_segment


async def test_batch_runs_each_request(http: ClientSession) -> None:
    answer = await call(
        http,
        "POST",
        "/v1.0/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": f"/users/{LEE}/manager?$select=id"},
                {
                    "id": "2",
                    "method": "POST",
                    "url": f"users/{LEE}/authentication/temporaryAccessPassMethods",
                    "headers": {"Content-Type": "application/json", "client-request-id": "item-2"},
                    "body": {"lifetimeInMinutes": 90},
                    "dependsOn": ["1"],
                },
                {"id": "3", "method": "GET", "url": f"/users/{quote_segment(JANE_GUEST)}?$select=userType"},
            ]
        },
    )
    responses = {item["id"]: item for item in answer.body["responses"]}

    assert answer.status == 200
    assert responses["1"]["status"] == 200
    assert responses["1"]["body"] == {"@odata.type": "#microsoft.graph.user", "id": MEGAN_ID}
    assert responses["2"]["status"] == 201
    assert responses["2"]["body"]["lifetimeInMinutes"] == 90
    assert responses["2"]["headers"]["client-request-id"] == "item-2"
    assert responses["3"]["body"] == {"userType": "Guest"}


async def test_failed_dependency_is_not_run(http: ClientSession) -> None:
    answer = await call(
        http,
        "POST",
        "/v1.0/$batch",
        json={
            "requests": [
                {"id": "a", "method": "GET", "url": "/users/ghost@contoso.onmicrosoft.com"},
                {
                    "id": "b",
                    "method": "POST",
                    "url": f"/users/{LEE}/authentication/temporaryAccessPassMethods",
                    "dependsOn": ["a"],
                },
            ]
        },
    )
    statuses = [item["status"] for item in answer.body["responses"]]
    listed = await call(http, "GET", f"/v1.0/users/{LEE}/authentication/temporaryAccessPassMethods")
    assert statuses == [404, 424]
    assert listed.body == {"value": []}


async def test_batch_limits(http: ClientSession) -> None:
    item = {"method": "GET", "url": f"/users/{LEE}"}
    too_many = await call(http, "POST", "/v1.0/$batch", json={"requests": [{"id": str(n), **item} for n in range(21)]})
    duplicate_ids = await call(http, "POST", "/v1.0/$batch", json={"requests": [{"id": "1", **item}] * 2})
    forward_dependency = await call(
        http, "POST", "/v1.0/$batch", json={"requests": [{"id": "1", "dependsOn": ["2"], **item}, {"id": "2", **item}]}
    )
    assert [too_many.status, duplicate_ids.status, forward_dependency.status] == [400, 400, 400]


async def test_batch_items_are_throttled_one_by_one(start: StartSandbox, clock: SandboxClock) -> None:
    sandbox = await start(options=SandboxOptions(request_budget=2, clock=clock))
    requests = [{"id": str(n), "method": "GET", "url": f"/users/{LEE}"} for n in range(3)]
    async with ClientSession(base_url=sandbox.root_url) as http:
        answer = await call(http, "POST", "/v1.0/$batch", json={"requests": requests})

    statuses = sorted(item["status"] for item in answer.body["responses"])
    throttled = next(item for item in answer.body["responses"] if item["status"] == 429)
    assert statuses == [200, 200, 429]
    assert throttled["headers"]["Retry-After"].isdigit()
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
