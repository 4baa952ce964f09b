"""`python app.py doctor` against the sandbox: a healthy deployment, and each thing that can be wrong with one."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from bot.adapters.store import SqlStore
from bot.doctor import Doctor, Mark, Report, diagnose, render, token_roles
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import load_tenant
from bot.settings import DEMO_TENANT_FILE, PROJECT_DIR, Settings

TENANT = "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8"
OPERATORS = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"
PROTECTED = "bd7c3ef1-9245-4256-8aac-1e552b66595b"
BOT = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
GRAPH_CHECKS = (
    "graph_users",
    "graph_membership",
    "graph_roles",
    "graph_role_eligibility",
    "graph_role_groups",
    "graph_pim_groups",
    "graph_policy",
    "graph_passes",
    "graph_methods",
)


@pytest.fixture
async def database(tmp_path: Path) -> str:
    """A database with tapbot's schema, as the app leaves it after its first start."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}"
    store = SqlStore.from_url(url)
    await store.create_schema()
    await store.close()
    return url


@pytest.fixture
async def standalone_sandbox() -> AsyncIterator[RunningSandbox]:
    sandbox = await start_sandbox(load_tenant(DEMO_TENANT_FILE))
    try:
        yield sandbox
    finally:
        await sandbox.close()


def marks(report: Report) -> dict[str, Mark]:
    return {finding.check: finding.mark for finding in report.findings}


def fake_token(roles: list[str]) -> str:
    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'aud': 'https://graph.microsoft.com', 'roles': roles})}.signature"


class FakeCredential:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.scopes: list[str] = []
        self.closed = False

    async def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        if self.token is None:
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


async def test_a_healthy_sandbox_deployment(database: str) -> None:
    report = await diagnose({"TAPBOT_DATABASE_URL": database})
    assert report.healthy, render(report)
    checks = marks(report)
    assert all(checks[check] is Mark.OK for check in (*GRAPH_CHECKS, "tap_policy", "operator_group", "schema"))
    assert checks["graph_token"] is Mark.NOT_APPLICABLE and checks["bot_token"] is Mark.NOT_APPLICABLE
    assert "lifetimes 60–480 minutes (default 60)" in report.finding("tap_policy").sentence
    assert "TAP Operators" in report.finding("operator_group").sentence
    assert "Protected accounts" in report.finding("protected_groups").sentence
    printed = render(report)
    assert printed.splitlines()[0] == "tapbot doctor"
    assert "✓ Users can be read (User.Read.All)." in printed
    assert printed.rstrip().endswith("checks passed.")


async def test_a_disabled_tap_policy_fails(database: str, tmp_path: Path) -> None:
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    tenant["temporaryAccessPassPolicy"]["state"] = "disabled"
    copy = tmp_path / "disabled.json"
    copy.write_text(json.dumps(tenant), encoding="utf-8")
    report = await diagnose({"TAPBOT_DATABASE_URL": database, "TAPBOT_SANDBOX_TENANT": str(copy)})
    assert not report.healthy
    assert report.finding("tap_policy").mark is Mark.FAILED
    assert "disabled" in report.finding("tap_policy").sentence
    assert report.finding("graph_policy").mark is Mark.OK, "reading it worked; its content is the problem"


async def test_an_operator_group_that_does_not_exist(database: str) -> None:
    missing = "0badc0de-0000-4000-8000-000000000000"
    report = await diagnose({"TAPBOT_DATABASE_URL": database, "TAPBOT_OPERATOR_GROUP_ID": missing})
    assert marks(report)["operator_group"] is Mark.FAILED
    assert missing in report.finding("operator_group").sentence
    assert "TAPBOT_OPERATOR_GROUP_ID" in report.finding("operator_group").sentence
    assert not report.healthy


async def test_an_unreachable_database(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://tapbot:hunter2-secret@127.0.0.1:1/tapbot"
    report = await diagnose({"TAPBOT_DATABASE_URL": url})
    assert report.finding("database").mark is Mark.FAILED
    assert "cannot be reached" in report.finding("database").sentence
    assert report.finding("schema").mark is Mark.NOT_APPLICABLE
    assert "hunter2" not in render(report), "the password is never printed"


async def test_a_missing_database_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.db"
    report = await diagnose({"TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{path}"})
    assert report.finding("database").mark is Mark.FAILED
    assert not path.exists()


async def test_an_empty_database_has_no_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    report = await diagnose({"TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{path}"})
    assert report.finding("database").mark is Mark.OK
    assert report.finding("schema").mark is Mark.FAILED
    assert "start the app once" in report.finding("schema").sentence


@pytest.mark.parametrize(
    ("path_regex", "check", "permission"),
    [
        ("roleAssignments", "graph_roles", "RoleManagement.Read.Directory"),
        ("authentication/methods$", "graph_methods", "UserAuthenticationMethod.Read.All"),
        ("roleEligibilityScheduleInstances", "graph_role_eligibility", "RoleManagement.Read.Directory"),
        ("transitiveMemberOf/graph.group", "graph_role_groups", "GroupMember.Read.All"),
        (
            "privilegedAccess/group/eligibilityScheduleInstances",
            "graph_pim_groups",
            "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        ),
    ],
)
async def test_a_refused_read_names_the_permission(
    database: str, standalone_sandbox: RunningSandbox, path_regex: str, check: str, permission: str
) -> None:
    rule = {"method": "GET", "path_regex": path_regex, "status": 403, "count": None}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{standalone_sandbox.control_url}/faults", json=rule) as answer,
    ):
        assert answer.status == 201
    report = await diagnose(
        {
            "TAPBOT_GRAPH_AUTH": "anonymous",
            "TAPBOT_GRAPH_BASE_URL": standalone_sandbox.base_url,
            "TAPBOT_ALLOWED_TENANT_IDS": TENANT,
            "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
            "TAPBOT_PROTECTED_GROUP_IDS": PROTECTED,
            "TAPBOT_DATABASE_URL": database,
        }
    )
    checks = marks(report)
    assert checks[check] is Mark.FAILED
    sentence = report.finding(check).sentence
    assert f"Grant the application permission {permission} and give admin consent" in sentence
    assert "request id" in sentence
    assert all(checks[other] is Mark.OK for other in GRAPH_CHECKS if other != check)
    assert not report.healthy


async def test_graph_that_does_not_answer(database: str) -> None:
    env = {
        "TAPBOT_GRAPH_AUTH": "anonymous",
        "TAPBOT_GRAPH_BASE_URL": "http://127.0.0.1:1/v1.0",
        "TAPBOT_ALLOWED_TENANT_IDS": TENANT,
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        "TAPBOT_DATABASE_URL": database,
    }
    report = await diagnose(env)
    assert report.finding("graph_users").mark is Mark.FAILED
    assert "did not answer" in report.finding("graph_users").sentence
    assert report.finding("graph_roles").mark is Mark.NOT_APPLICABLE


async def test_incomplete_settings_stop_the_checks() -> None:
    report = await diagnose({"TAPBOT_GRAPH_AUTH": "managed_identity"})
    assert [finding.check for finding in report.findings] == ["settings"]
    assert "TAPBOT_GRAPH_TENANT_ID" in report.finding("settings").sentence
    assert not report.healthy


@pytest.mark.parametrize(
    ("connection", "problem"),
    [
        ({"CLIENTID": "app-id"}, "TENANTID"),
        ({"CLIENTID": "app-id", "TENANTID": TENANT}, "CLIENTSECRET"),
        ({"CLIENTID": "app-id", "TENANTID": TENANT, "AUTHTYPE": "certificate"}, "CERTPFXFILE"),
        ({"CLIENTID": "app-id", "TENANTID": TENANT, "AUTHTYPE": "Kerberos"}, "AUTHTYPE=Kerberos"),
        ({"TENANTID": TENANT}, "CLIENTID"),
    ],
)
async def test_inconsistent_bot_registrations(database: str, connection: dict[str, str], problem: str) -> None:
    env = {"TAPBOT_DATABASE_URL": database, **{BOT + key: value for key, value in connection.items()}}
    report = await Doctor(env, bot_token=_never_called).diagnose()
    assert report.finding("bot_registration").mark is Mark.FAILED
    assert problem in report.finding("bot_registration").sentence
    assert report.finding("bot_token").mark is not Mark.OK


async def _never_called(_settings: Settings) -> str:
    raise AssertionError("no token is requested for an incomplete registration")


async def test_a_complete_registration_obtains_a_bot_framework_token(database: str) -> None:
    env = {
        "TAPBOT_DATABASE_URL": database,
        BOT + "CLIENTID": "app-id",
        BOT + "TENANTID": TENANT,
        BOT + "AUTHTYPE": "UserManagedIdentity",
    }

    async def token(_settings: Settings) -> str:
        return "bot-framework-token"

    async def refused(_settings: Settings) -> str:
        raise ClientAuthenticationError("AADSTS700016: Application not found in the directory.")

    report = await Doctor(env, bot_token=token).diagnose()
    assert report.finding("bot_registration").mark is Mark.OK
    assert report.finding("bot_token").mark is Mark.OK
    assert report.healthy, render(report)
    failing = await Doctor(env, bot_token=refused).diagnose()
    assert failing.finding("bot_token").mark is Mark.FAILED
    assert "AADSTS700016" in failing.finding("bot_token").sentence


def real_graph_env(database: str) -> dict[str, str]:
    # A real credential mode, with a Graph root nobody answers on: these tests are about the token lines.
    return {
        BOT + "CLIENTID": "app-id",
        BOT + "TENANTID": TENANT,
        BOT + "AUTHTYPE": "SystemManagedIdentity",
        "TAPBOT_GRAPH_AUTH": "managed_identity",
        "TAPBOT_GRAPH_TENANT_ID": TENANT,
        "TAPBOT_GRAPH_BASE_URL": "https://127.0.0.1:1/v1.0",
        "TAPBOT_GRAPH_TIMEOUT_SECONDS": "2",
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        "TAPBOT_DATABASE_URL": database,
    }


async def test_the_graph_token_and_the_permissions_it_grants(database: str) -> None:
    granted = ["UserAuthMethod-TAP.ReadWrite.All", "User.Read.All", "Policy.Read.AuthenticationMethod"]
    credential = FakeCredential(fake_token(granted))

    async def bot_token(_settings: Settings) -> str:
        return "bot-framework-token"

    report = await Doctor(real_graph_env(database), lambda _settings: credential, bot_token).diagnose()
    token = report.finding("graph_token")
    assert token.mark is Mark.OK
    assert "https://127.0.0.1:1/.default" in token.sentence
    assert set(credential.scopes) == {"https://127.0.0.1:1/.default"}, "Graph calls use the credential just tested"
    assert "User.Read.All" in token.sentence and fake_token(granted) not in render(report)
    assert report.finding("graph_write").mark is Mark.OK
    assert (
        "UserAuthMethod-TAP.ReadWrite.All: the bot can create and delete passes"
        in report.finding("graph_write").sentence
    )
    assert credential.closed

    without_write = FakeCredential(fake_token(["User.Read.All", "UserAuthMethod-TAP.Read.All"]))
    lacking = await Doctor(real_graph_env(database), lambda _settings: without_write, bot_token).diagnose()
    assert lacking.finding("graph_write").mark is Mark.FAILED
    sentence = lacking.finding("graph_write").sentence
    assert "Grant UserAuthMethod-TAP.ReadWrite.All" in sentence and "UserAuthenticationMethod.ReadWrite.All" in sentence


@pytest.mark.parametrize(
    ("granted", "least"),
    [("UserAuthMethod-TAP.ReadWrite.All", True), ("UserAuthenticationMethod.ReadWrite.All", False)],
)
async def test_either_write_permission_lets_the_bot_write(database: str, granted: str, least: bool) -> None:
    """The TAP-only permission is the least privileged one; the all-methods one works but is broader."""

    async def bot_token(_settings: Settings) -> str:
        return "bot-framework-token"

    credential = FakeCredential(fake_token([granted, "User.Read.All"]))
    report = await Doctor(real_graph_env(database), lambda _settings: credential, bot_token).diagnose()
    finding = report.finding("graph_write")
    assert finding.mark is Mark.OK
    assert f"The token grants {granted}" in finding.sentence
    assert ("least privilege" in finding.sentence) is least
    assert ("UserAuthMethod-TAP.ReadWrite.All is enough" in finding.sentence) is not least


async def test_a_credential_that_obtains_no_token(database: str) -> None:
    async def bot_token(_settings: Settings) -> str:
        return "bot-framework-token"

    report = await Doctor(real_graph_env(database), lambda _settings: FakeCredential(None), bot_token).diagnose()
    assert report.finding("graph_token").mark is Mark.FAILED
    assert "AADSTS7000215" in report.finding("graph_token").sentence
    assert all(report.finding(check).mark is Mark.NOT_APPLICABLE for check in GRAPH_CHECKS)
    assert report.finding("database").mark is Mark.OK


def test_token_roles_reads_the_claim_and_tolerates_garbage() -> None:
    assert token_roles(fake_token(["A", "B"])) == {"A", "B"}
    assert token_roles("not-a-token") == frozenset()
    assert token_roles("a.!!!.c") == frozenset()


def run_app_doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("TAPBOT_", "CONNECTIONS__"))}
    return subprocess.run(
        [sys.executable, "app.py", "doctor"],
        cwd=PROJECT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_app_py_doctor_prints_the_checklist_and_exits_0_or_1(database: str, tmp_path: Path) -> None:
    healthy = run_app_doctor({"TAPBOT_DATABASE_URL": database})
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "✓ The Temporary Access Pass policy is enabled" in healthy.stdout
    assert "– Graph credential: not applicable" in healthy.stdout
    broken = run_app_doctor({"TAPBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}"})
    assert broken.returncode == 1
    assert "✗ The database file" in broken.stdout
