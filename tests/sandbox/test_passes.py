"""Temporary Access Pass endpoints: Graph's create/list/get/delete semantics and the policy checks."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
from aiohttp import ClientSession

from bot.sandbox import RunningSandbox, SandboxClock, Tenant
from bot.sandbox.tenant import PolicyTarget
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import (
    ALEX,
    DIEGO,
    FROZEN_NOW,
    JANE_GUEST,
    JONI_EXPIRED_PASS,
    LEE,
    LEE_ID,
    LIDIA,
    NESTOR_DISABLED,
    PRADEEP_EXCLUDED,
    PRADEEP_ID,
    SERVICE_DESK_ID,
    TAP_OPERATORS_ID,
    call,
    passes_path,
)

POLICY_MESSAGE = (
    "Converged UserCredentialPolicy does not allow creating or updating this authentication method. "
    "AuthMethodType [TemporaryAccessPass]."
)


def with_policy(tenant: Tenant, **changes: object) -> Tenant:
    return dataclasses.replace(tenant, tap_policy=dataclasses.replace(tenant.tap_policy, **changes))


async def test_create_returns_the_secret_once_with_policy_defaults(http: ClientSession) -> None:
    created = await call(http, "POST", passes_path(LEE), json={})

    assert created.status == 201
    assert len(created.body["temporaryAccessPass"]) == 8
    assert created.body["lifetimeInMinutes"] == 60
    assert created.body["isUsableOnce"] is False
    assert created.body["isUsable"] is True
    assert created.body["methodUsabilityReason"] == "EnabledByPolicy"
    assert created.body["createdDateTime"] == "2026-11-02T09:00:00Z"
    assert created.body["startDateTime"] == "2026-11-02T09:00:00Z"

    listed = await call(http, "GET", passes_path(LEE))
    fetched = await call(http, "GET", f"{passes_path(LEE)}/{created.body['id']}")
    assert [item["id"] for item in listed.body["value"]] == [created.body["id"]]
    assert listed.body["value"][0]["temporaryAccessPass"] is None
    assert fetched.body["temporaryAccessPass"] is None
    assert fetched.body["createdDateTime"] == created.body["createdDateTime"]


async def test_create_silently_replaces_the_existing_pass(http: ClientSession, clock: SandboxClock) -> None:
    first = await call(http, "POST", passes_path(LEE), json={"lifetimeInMinutes": 120})
    clock.advance(5)
    second = await call(http, "POST", passes_path(LEE.lower()), json={"lifetimeInMinutes": 60})

    assert (first.status, second.status) == (201, 201)
    assert first.body["id"] != second.body["id"]
    listed = await call(http, "GET", passes_path(LEE_ID))
    assert [item["id"] for item in listed.body["value"]] == [second.body["id"]]
    gone = await call(http, "GET", f"{passes_path(LEE)}/{first.body['id']}")
    assert gone.status == 404


async def test_delete_removes_the_pass(http: ClientSession) -> None:
    created = await call(http, "POST", passes_path(LEE))
    deleted = await call(http, "DELETE", f"{passes_path(LEE)}/{created.body['id']}")
    deleted_again = await call(http, "DELETE", f"{passes_path(LEE)}/{created.body['id']}")

    assert deleted.status == 204
    assert deleted.body is None
    assert deleted_again.status == 404
    assert (await call(http, "GET", passes_path(LEE))).body == {"value": []}


async def test_usability_follows_the_clock(http: ClientSession, clock: SandboxClock) -> None:
    later = FROZEN_NOW + timedelta(hours=2)
    future = await call(
        http, "POST", passes_path(LEE), json={"startDateTime": "2026-11-02T11:00:00Z", "lifetimeInMinutes": 60}
    )
    assert future.body["startDateTime"] == "2026-11-02T11:00:00Z"
    assert (future.body["isUsable"], future.body["methodUsabilityReason"]) == (False, "NotYetValid")

    clock.advance((later - FROZEN_NOW).total_seconds())
    current = await call(http, "GET", passes_path(LEE))
    assert current.body["value"][0]["methodUsabilityReason"] == "EnabledByPolicy"

    clock.advance(3600)
    expired = await call(http, "GET", passes_path(LEE))
    assert (expired.body["value"][0]["isUsable"], expired.body["value"][0]["methodUsabilityReason"]) == (
        False,
        "Expired",
    )


async def test_a_start_in_the_past_means_now(http: ClientSession) -> None:
    created = await call(http, "POST", passes_path(LEE), json={"startDateTime": "2020-01-01T00:00:00Z"})
    assert created.body["startDateTime"] == "2026-11-02T09:00:00Z"


async def test_one_time_pass_becomes_one_time_used_after_sign_in(http: ClientSession, sandbox: RunningSandbox) -> None:
    created = await call(http, "POST", passes_path(LEE), json={"isUsableOnce": True})
    secret = created.body["temporaryAccessPass"]

    wrong = await call(http, "POST", f"/_sandbox/passes/{LEE}/use", json={"temporaryAccessPass": secret + "x"})
    used = await call(http, "POST", f"/_sandbox/passes/{LEE}/use", json={"temporaryAccessPass": secret})
    again = await call(http, "POST", f"/_sandbox/passes/{LEE}/use")
    listed = await call(http, "GET", passes_path(LEE))

    assert wrong.status == 401
    assert used.status == 200
    assert again.status == 409
    assert (listed.body["value"][0]["isUsable"], listed.body["value"][0]["methodUsabilityReason"]) == (
        False,
        "OneTimeUsed",
    )


async def test_seeded_pass_from_the_tenant_file_is_listed_as_expired(http: ClientSession) -> None:
    listed = await call(http, "GET", passes_path(JONI_EXPIRED_PASS))
    assert listed.body["value"][0]["id"] == "fda8d9dd-52cf-4957-b871-410e25657f80"
    assert listed.body["value"][0]["methodUsabilityReason"] == "Expired"


@pytest.mark.parametrize("lifetime", [5, 59, 481, 50000])
async def test_lifetime_outside_the_policy_range_is_refused(http: ClientSession, lifetime: int) -> None:
    refused = await call(http, "POST", passes_path(LEE), json={"lifetimeInMinutes": lifetime})

    assert refused.status == 400
    assert refused.error["code"] == "badRequest"
    assert refused.error["message"] == "Invalid LifetimeInMinutes specified. The valid range between 60 and 480."


async def test_lifetime_range_uses_the_tenants_own_numbers(start: StartSandbox, demo_tenant: Tenant) -> None:
    tenant = with_policy(demo_tenant, minimum_lifetime_in_minutes=10, maximum_lifetime_in_minutes=43200)
    sandbox = await start(tenant)
    async with ClientSession(base_url=sandbox.root_url) as http:
        shortest = await call(http, "POST", passes_path(LEE), json={"lifetimeInMinutes": 10})
        too_short = await call(http, "POST", passes_path(LEE), json={"lifetimeInMinutes": 9})
    assert shortest.status == 201
    assert too_short.error["message"] == "Invalid LifetimeInMinutes specified. The valid range between 10 and 43200."


async def test_wrongly_typed_fields_are_refused(http: ClientSession) -> None:
    for body in ({"lifetimeInMinutes": "60"}, {"isUsableOnce": "yes"}, {"startDateTime": "tomorrow"}, {"x": 1}):
        refused = await call(http, "POST", passes_path(LEE), json=body)
        assert refused.status == 400, body


async def test_policy_forcing_one_time_use_refuses_multi_use(start: StartSandbox, demo_tenant: Tenant) -> None:
    sandbox = await start(with_policy(demo_tenant, is_usable_once=True))
    async with ClientSession(base_url=sandbox.root_url) as http:
        refused = await call(http, "POST", passes_path(LEE), json={"isUsableOnce": False})
        defaulted = await call(http, "POST", passes_path(LEE), json={})
    assert refused.status == 400
    assert "isUsableOnce" in refused.error["message"]
    assert defaulted.body["isUsableOnce"] is True


async def test_disabled_policy_refuses_every_pass(start: StartSandbox, demo_tenant: Tenant) -> None:
    sandbox = await start(with_policy(demo_tenant, state="disabled"))
    async with ClientSession(base_url=sandbox.root_url) as http:
        refused = await call(http, "POST", passes_path(LEE))
    assert refused.status == 403
    assert (refused.error["code"], refused.error["message"]) == ("badRequest", POLICY_MESSAGE)


async def test_excluded_user_is_refused_and_an_old_pass_shows_disabled_by_policy(
    start: StartSandbox, demo_tenant: Tenant
) -> None:
    seeded = dataclasses.replace(demo_tenant.seeded_passes[0], user_id=PRADEEP_ID, start=FROZEN_NOW, created=FROZEN_NOW)
    sandbox = await start(dataclasses.replace(demo_tenant, seeded_passes=(seeded,)))
    async with ClientSession(base_url=sandbox.root_url) as http:
        refused = await call(http, "POST", passes_path(PRADEEP_EXCLUDED))
        listed = await call(http, "GET", passes_path(PRADEEP_EXCLUDED))
    assert (refused.status, refused.error["message"]) == (403, POLICY_MESSAGE)
    assert listed.body["value"][0]["methodUsabilityReason"] == "DisabledByPolicy"


async def test_include_targets_count_nested_groups(start: StartSandbox, demo_tenant: Tenant) -> None:
    tenant = with_policy(demo_tenant, include_targets=(PolicyTarget("group", TAP_OPERATORS_ID),))
    sandbox = await start(tenant)
    async with ClientSession(base_url=sandbox.root_url) as http:
        nested_member = await call(http, "POST", passes_path(ALEX))
        outsider = await call(http, "POST", passes_path(DIEGO))
    assert nested_member.status == 201
    assert outsider.status == 403


async def test_exclude_targets_count_nested_groups(start: StartSandbox, demo_tenant: Tenant) -> None:
    tenant = with_policy(demo_tenant, exclude_targets=(PolicyTarget("group", TAP_OPERATORS_ID),))
    sandbox = await start(tenant)
    async with ClientSession(base_url=sandbox.root_url) as http:
        nested_member = await call(http, "POST", passes_path(ALEX))
        outsider = await call(http, "POST", passes_path(DIEGO))
    assert nested_member.status == 403
    assert outsider.status == 201


async def test_user_targets_work(start: StartSandbox, demo_tenant: Tenant) -> None:
    tenant = with_policy(
        demo_tenant,
        include_targets=(PolicyTarget("group", SERVICE_DESK_ID), PolicyTarget("user", LEE_ID)),
    )
    sandbox = await start(tenant)
    async with ClientSession(base_url=sandbox.root_url) as http:
        assert (await call(http, "POST", passes_path(LEE))).status == 201
        assert (await call(http, "POST", passes_path(LIDIA))).status == 403


async def test_guest_is_refused(http: ClientSession) -> None:
    refused = await call(http, "POST", passes_path(JANE_GUEST))
    assert refused.status == 400
    assert refused.error["message"] == "Temporary Access Pass cannot be added to an external guest user"


async def test_disabled_account_gets_a_pass_like_in_graph(http: ClientSession) -> None:
    assert (await call(http, "POST", passes_path(NESTOR_DISABLED))).status == 201


async def test_unknown_user_gets_the_not_found_envelope(http: ClientSession) -> None:
    client_request_id = "4f1b6c1e-2d3a-4b5c-8d9e-0f1a2b3c4d5e"
    answer = await call(
        http, "POST", passes_path("ghost@contoso.onmicrosoft.com"), headers={"client-request-id": client_request_id}
    )

    assert answer.status == 404
    assert answer.error["code"] == "Request_ResourceNotFound"
    assert answer.error["message"] == (
        "Resource 'ghost@contoso.onmicrosoft.com' does not exist or one of its queried reference-property "
        "objects are not present."
    )
    inner = answer.error["innerError"]
    assert inner["client-request-id"] == client_request_id == answer.headers["client-request-id"]
    assert inner["request-id"] == answer.headers["request-id"]
    assert inner["date"].startswith("2026-11-02T09:00:00")


async def test_pass_secrets_never_reach_the_logs_or_the_state(
    http: ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await call(http, "POST", passes_path(LEE))
    state = await call(http, "GET", "/_sandbox/state")

    secret = created.body["temporaryAccessPass"]
    assert secret not in caplog.text
    assert secret not in str(state.body)
    assert any(item["user_principal_name"] == LEE for item in state.body["passes"])
