"""The /_sandbox control plane: state, clock, reset (including re-reading the tenant file)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from aiohttp import ClientSession

from bot.sandbox import DEMO_TENANT_PATH, RunningSandbox, load_tenant
from bot.settings import PROJECT_DIR
from tests.sandbox.conftest import StartSandbox
from tests.sandbox.support import LEE, call, passes_path

SANDBOX_DOC = (PROJECT_DIR / "docs" / "sandbox.md").read_text(encoding="utf-8")


async def test_clock_moves_forward_only(http: ClientSession) -> None:
    moved = await call(http, "POST", "/_sandbox/clock", json={"seconds": 90})
    backwards = await call(http, "POST", "/_sandbox/clock", json={"seconds": -1})
    read = await call(http, "GET", "/_sandbox/clock")

    assert moved.body == {"now": "2026-11-02T09:01:30Z", "offset_s": 90.0}
    assert backwards.status == 400
    assert read.body == moved.body


async def test_clock_endpoint_expires_a_pass(http: ClientSession) -> None:
    await call(http, "POST", passes_path(LEE), json={"lifetimeInMinutes": 60})
    await call(http, "POST", "/_sandbox/clock", json={"seconds": 3600})
    listed = await call(http, "GET", passes_path(LEE))
    assert listed.body["value"][0]["methodUsabilityReason"] == "Expired"


async def test_reset_restores_the_tenant_as_started(http: ClientSession) -> None:
    await call(http, "POST", passes_path(LEE))
    await call(http, "POST", "/_sandbox/faults", json={"path_regex": "x", "status": 500})
    await call(http, "POST", "/_sandbox/clock", json={"seconds": 60})

    reset = await call(http, "POST", "/_sandbox/reset")
    state = await call(http, "GET", "/_sandbox/state")

    assert reset.status == 200
    assert [item["user_principal_name"] for item in state.body["passes"]] == ["JoniS@contoso.onmicrosoft.com"]
    assert state.body["faults"] == []
    assert state.body["clock"]["offset_s"] == 0
    assert state.body["counters"]["requests_received"] == 0


async def test_reset_can_reread_the_tenant_file(start: StartSandbox, tmp_path: Path) -> None:
    tenant_file = tmp_path / "tenant.json"
    data = json.loads(await asyncio.to_thread(DEMO_TENANT_PATH.read_text))
    await asyncio.to_thread(tenant_file.write_text, json.dumps(data))
    sandbox = await start(await asyncio.to_thread(load_tenant, tenant_file))

    data["users"].append(
        {
            "id": "0f0e0d0c-0b0a-4909-8807-060504030201",
            "userPrincipalName": "newbie@contoso.onmicrosoft.com",
            "displayName": "New Person",
        }
    )
    await asyncio.to_thread(tenant_file.write_text, json.dumps(data))
    async with ClientSession(base_url=sandbox.root_url) as http:
        before = await call(http, "GET", "/v1.0/users/newbie@contoso.onmicrosoft.com")
        await call(http, "POST", "/_sandbox/reset")
        after_plain_reset = await call(http, "GET", "/v1.0/users/newbie@contoso.onmicrosoft.com")
        await call(http, "POST", "/_sandbox/reset", json={"reread_file": True})
        after_reread = await call(http, "GET", "/v1.0/users/newbie@contoso.onmicrosoft.com")

        await asyncio.to_thread(tenant_file.write_text, "{ broken")
        refused = await call(http, "POST", "/_sandbox/reset", json={"reread_file": True})
        await call(http, "POST", "/_sandbox/reset")
        still_there = await call(http, "GET", "/v1.0/users/newbie@contoso.onmicrosoft.com")

    assert (before.status, after_plain_reset.status, after_reread.status) == (404, 404, 200)
    assert refused.status == 400
    assert "not valid JSON" in refused.error["message"]
    assert still_there.status == 200


async def test_state_reports_tenant_and_counters(http: ClientSession) -> None:
    await call(http, "GET", f"/v1.0/users/{LEE}")
    state = await call(http, "GET", "/_sandbox/state")

    assert state.body["tenant"]["display_name"] == "Contoso (sandbox)"
    assert state.body["tenant"]["users"] == 21
    assert state.body["counters"]["requests_received"] == 1


def test_every_control_and_file_endpoint_is_documented(sandbox: RunningSandbox) -> None:
    """docs/sandbox.md has a table row `METHOD /_sandbox/…` for each route (parameter names may differ)."""
    documented = {
        re.sub(r"\{[^}]*\}", "{}", f"{method} {path}")
        for method, path in re.findall(
            r"^\| `(GET|POST|PUT|DELETE) (/_sandbox/(?:\{[^}]*\}|[^?` {])*)", SANDBOX_DOC, re.MULTILINE
        )
    }
    routes = {
        re.sub(r"\{[^}]*\}", "{}", f"{route.method} {route.resource.canonical}")
        for route in sandbox.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/_sandbox")
        and route.method in ("GET", "POST", "PUT", "DELETE")
    }
    assert routes, "no control routes found"
    assert routes - documented == set()
