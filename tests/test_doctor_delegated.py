"""`python app.py doctor` with delegated writes (issue 14): the OAuth connection, and no standing write permission.

The token service is a small aiohttp server on 127.0.0.1 answering `GET /api/usertoken/GetTokenOrSignInResource`
the way the Bot Framework token service does (sso-obo.md §3): a sign-in resource for a known connection, an error
for an unknown one, 401 without the bot's token. The doctor reaches it through the Agents SDK's own
`UserTokenClient`, as the bot does; only the service's URL is swapped (a real deployment's must be https).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from microsoft_agents.activity import TokenOrSignInResourceResponse

from bot.adapters.store import SqlStore
from bot.doctor import Doctor, Mark, Report, render
from bot.doctor_delegated import DOCTOR_USER_ID, method_write_permissions, sdk_sign_in_resource
from bot.sandbox.options import SandboxOptions
from bot.sandbox.server import RunningSandbox, start_sandbox
from bot.sandbox.tenant import load_tenant
from bot.settings import DEMO_TENANT_FILE, SANDBOX_BOT_APP_ID, Settings
from tests.test_doctor import BOT, OPERATORS, TENANT, FakeCredential, fake_token

APP_ID = "6f1a3c2e-1b2d-4c3e-9f10-123456789abc"
RESOURCE = f"api://botid-{APP_ID}"
CONNECTION = "tapbot-graph"
BOT_TOKEN = "bot-framework-token-4f7c2a"
READS = ["User.Read.All", "UserAuthMethod-TAP.Read.All", "UserAuthenticationMethod.Read.All", "GroupMember.Read.All"]


@dataclass
class FakeTokenService:
    """The token service's GetTokenOrSignInResource, with the connections of one Azure Bot."""

    connections: dict[str, str | None]  # name -> Token Exchange URL (None: the connection has none)
    bot_token: str | None = BOT_TOKEN  # None: no Authorization expected (a stand-alone sandbox)
    unknown_status: int = 400
    requests: list[Mapping[str, str]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        authorization = request.headers.get("Authorization")
        self.authorizations.append(authorization)
        if self.bot_token is not None and authorization != f"Bearer {self.bot_token}":
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        name = request.query.get("connectionName", "")
        if name not in self.connections:
            body = {
                "error": {"code": "ServiceError", "message": f"Could not find Connection Setting with name '{name}'"}
            }
            return web.json_response(body, status=self.unknown_status)
        state = json.loads(base64.b64decode(request.query["state"]))
        resource: dict[str, Any] = {
            "signInLink": f"{self.url}/api/oauth/signin?signin=abc",
            "tokenPostResource": {"sasUrl": f"{self.url}/api/sas"},
        }
        exchange_url = self.connections[name]
        if exchange_url is not None and state.get("msAppId"):
            resource["tokenExchangeResource"] = {"id": "ter-1", "uri": exchange_url, "providerId": "aadv2"}
        return web.json_response({"signInResource": resource})


@pytest.fixture
async def database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}"
    store = SqlStore.from_url(url)
    await store.create_schema()
    await store.close()
    return url


@pytest.fixture
async def token_service() -> AsyncIterator[FakeTokenService]:
    service = FakeTokenService({CONNECTION: RESOURCE})
    app = web.Application()
    app.router.add_get("/api/usertoken/GetTokenOrSignInResource", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    service.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield service
    finally:
        await runner.cleanup()


def delegated_env(database: str, **extra: str) -> dict[str, str]:
    """A real deployment in delegated mode (its Graph root answers nobody: these tests are about the new lines)."""
    return {
        BOT + "CLIENTID": APP_ID,
        BOT + "TENANTID": TENANT,
        BOT + "AUTHTYPE": "SystemManagedIdentity",
        "TAPBOT_GRAPH_AUTH": "managed_identity",
        "TAPBOT_GRAPH_TENANT_ID": TENANT,
        "TAPBOT_GRAPH_BASE_URL": "https://127.0.0.1:1/v1.0",
        "TAPBOT_GRAPH_TIMEOUT_SECONDS": "2",
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        "TAPBOT_DATABASE_URL": database,
        "TAPBOT_GRAPH_WRITES": "delegated",
        "TAPBOT_OAUTH_CONNECTION": CONNECTION,
        **extra,
    }


async def bot_token(_settings: Settings) -> str:
    return BOT_TOKEN


def through(service: FakeTokenService) -> Any:
    """The SDK's own client, pointed at the local service instead of https://api.botframework.com."""

    async def source(settings: Settings, token: str) -> TokenOrSignInResourceResponse:
        return await sdk_sign_in_resource(dataclasses.replace(settings, token_service_url=service.url), token)

    return source


async def diagnose(env: dict[str, str], service: FakeTokenService, roles: list[str] | None = None) -> Report:
    credential = FakeCredential(fake_token(READS if roles is None else roles))
    doctor = Doctor(env, lambda _settings: credential, bot_token, sign_in_resource=through(service))
    return await doctor.diagnose()


async def test_a_known_connection_with_single_sign_on_passes(database: str, token_service: FakeTokenService) -> None:
    report = await diagnose(delegated_env(database), token_service)
    finding = report.finding("oauth_connection")
    assert finding.mark is Mark.OK, render(report)
    assert f"knows the OAuth connection '{CONNECTION}'" in finding.sentence
    assert f"single sign-on for {RESOURCE}" in finding.sentence
    assert "through the OAuth connection 'tapbot-graph'" in report.finding("settings").sentence
    (query,) = token_service.requests
    assert token_service.authorizations == [f"Bearer {BOT_TOKEN}"], "asked with the bot's own token"
    assert (query["connectionName"], query["channelId"], query["userId"]) == (CONNECTION, "msteams", DOCTOR_USER_ID)
    assert "code" not in query or query["code"] == "", "no magic code: no user token can come back"
    state = json.loads(base64.b64decode(query["state"]))
    assert (state["connectionName"], state["msAppId"]) == (CONNECTION, APP_ID)
    assert BOT_TOKEN not in render(report)


@pytest.mark.parametrize("status", [400, 404])
async def test_an_unknown_connection_fails_naming_the_setting(
    database: str, token_service: FakeTokenService, status: int
) -> None:
    token_service.unknown_status = status
    report = await diagnose(delegated_env(database, TAPBOT_OAUTH_CONNECTION="tapbot-grpah"), token_service)
    finding = report.finding("oauth_connection")
    assert finding.mark is Mark.FAILED
    assert (
        f"gives no sign-in for the OAuth connection 'tapbot-grpah' (HTTP {status}: Could not find Connection "
        "Setting with name 'tapbot-grpah')" in finding.sentence
    )
    assert "TAPBOT_OAUTH_CONNECTION must be the exact name" in finding.sentence
    assert APP_ID in finding.sentence
    assert not report.healthy


async def test_a_connection_without_a_token_exchange_url_fails(database: str, token_service: FakeTokenService) -> None:
    token_service.connections[CONNECTION] = None
    finding = (await diagnose(delegated_env(database), token_service)).finding("oauth_connection")
    assert finding.mark is Mark.FAILED
    assert f"offers no single sign-on: set its Token Exchange URL to {RESOURCE}" in finding.sentence


async def test_a_token_exchange_url_other_than_the_app_id_uri_fails(
    database: str, token_service: FakeTokenService
) -> None:
    token_service.connections[CONNECTION] = "api://botid-0b7c9d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
    finding = (await diagnose(delegated_env(database), token_service)).finding("oauth_connection")
    assert finding.mark is Mark.FAILED
    assert "exchanges Teams tokens for api://botid-0b7c9d1e" in finding.sentence
    assert f"TAPBOT_SSO_RESOURCE (and the package's webApplicationInfo) is {RESOURCE}" in finding.sentence
    custom = f"api://tapbot.contoso.com/botid-{APP_ID}"
    token_service.connections[CONNECTION] = custom + "/"
    report = await diagnose(delegated_env(database, TAPBOT_SSO_RESOURCE=custom), token_service)
    assert report.finding("oauth_connection").mark is Mark.OK, "the same URI, a trailing slash apart"


async def test_a_token_service_that_refuses_the_bot(database: str, token_service: FakeTokenService) -> None:
    token_service.bot_token = "the-token-of-another-bot"
    finding = (await diagnose(delegated_env(database), token_service)).finding("oauth_connection")
    assert finding.mark is Mark.FAILED
    assert "refused the bot's Bot Framework token (HTTP 401)" in finding.sentence


async def test_a_token_service_that_does_not_answer(database: str) -> None:
    nobody = FakeTokenService({}, url="http://127.0.0.1:1")
    finding = (await diagnose(delegated_env(database), nobody)).finding("oauth_connection")
    assert finding.mark is Mark.FAILED
    assert "did not answer about the OAuth connection 'tapbot-graph'" in finding.sentence
    assert "TAPBOT_TOKEN_SERVICE_URL" in finding.sentence


async def test_no_bot_token_means_the_connection_is_not_asked_about(
    database: str, token_service: FakeTokenService
) -> None:
    async def refused(_settings: Settings) -> str:
        raise RuntimeError("AADSTS700016: Application not found in the directory.")

    doctor = Doctor(
        delegated_env(database),
        lambda _settings: FakeCredential(fake_token(READS)),
        refused,
        sign_in_resource=through(token_service),
    )
    report = await doctor.diagnose()
    assert report.finding("bot_token").mark is Mark.FAILED
    assert report.finding("oauth_connection").mark is Mark.NOT_APPLICABLE
    assert token_service.requests == []


async def test_application_mode_uses_no_connection(database: str, token_service: FakeTokenService) -> None:
    env = delegated_env(database, TAPBOT_GRAPH_WRITES="application")
    report = await diagnose(env, token_service, roles=["UserAuthMethod-TAP.ReadWrite.All", *READS])
    assert report.finding("oauth_connection").mark is Mark.NOT_APPLICABLE
    assert "TAPBOT_GRAPH_WRITES=application" in report.finding("oauth_connection").sentence
    assert token_service.requests == []
    assert report.finding("graph_write").mark is Mark.OK, "application mode still needs its write permission"
    assert "with the bot's application permission" in report.finding("settings").sentence


@pytest.mark.parametrize(
    "write",
    [
        "UserAuthMethod-TAP.ReadWrite.All",
        "UserAuthenticationMethod.ReadWrite.All",
        "UserAuthMethod-Phone.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "RoleManagement.ReadWrite.Directory",
    ],
)
async def test_a_write_permission_left_on_the_bot_fails_in_delegated_mode(
    database: str, token_service: FakeTokenService, write: str
) -> None:
    report = await diagnose(delegated_env(database), token_service, roles=[*READS, write])
    finding = report.finding("graph_write")
    assert finding.mark is Mark.FAILED
    assert f"still grants {write}" in finding.sentence
    assert f"Remove {write} from the bot's Graph identity" in finding.sentence
    assert "TAPBOT_GRAPH_WRITES=delegated" in finding.sentence
    assert not report.healthy


async def test_read_permissions_only_pass_in_delegated_mode(database: str, token_service: FakeTokenService) -> None:
    report = await diagnose(delegated_env(database), token_service)
    finding = report.finding("graph_write")
    assert finding.mark is Mark.OK
    assert "grants no permission to write sign-in methods" in finding.sentence
    assert "technician's own delegated rights" in finding.sentence


def test_which_permissions_count_as_writing_sign_in_methods() -> None:
    held = [
        *READS,
        "Policy.Read.AuthenticationMethod",
        "UserAuthMethod-TAP.ReadWrite.All",
        "UserAuthMethod-Fido2.ReadWrite.All",
        "UserAuthenticationMethod.ReadWrite",
        "Application.ReadWrite.All",
        "Directory.Read.All",
    ]
    assert method_write_permissions(held) == [
        "Application.ReadWrite.All",
        "UserAuthMethod-Fido2.ReadWrite.All",
        "UserAuthMethod-TAP.ReadWrite.All",
        "UserAuthenticationMethod.ReadWrite",
    ]
    assert method_write_permissions(READS) == []


async def test_the_built_in_sandbox_in_delegated_mode(database: str, tmp_path: Path) -> None:
    """The sandbox's app holds its tenant file's applicationPermissions; the demo tenant's default list can write."""
    env = {"TAPBOT_DATABASE_URL": database, "TAPBOT_GRAPH_WRITES": "delegated", "TAPBOT_OAUTH_CONNECTION": CONNECTION}
    report = await Doctor(env).diagnose()
    assert report.finding("oauth_connection").mark is Mark.NOT_APPLICABLE
    assert "built-in sandbox serves its own token service" in report.finding("oauth_connection").sentence
    finding = report.finding("graph_write")
    assert finding.mark is Mark.FAILED
    assert "UserAuthMethod-TAP.ReadWrite.All" in finding.sentence and "applicationPermissions" in finding.sentence

    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    tenant["applicationPermissions"] = READS
    reads_only = tmp_path / "reads-only.json"
    reads_only.write_text(json.dumps(tenant), encoding="utf-8")
    report = await Doctor({**env, "TAPBOT_SANDBOX_TENANT": str(reads_only)}).diagnose()
    assert report.finding("graph_write").mark is Mark.OK
    assert report.healthy, render(report)
    application = await Doctor({"TAPBOT_DATABASE_URL": database, "TAPBOT_SANDBOX_TENANT": str(reads_only)}).diagnose()
    assert application.finding("graph_write").mark is Mark.NOT_APPLICABLE, "application mode in the sandbox as before"


@pytest.mark.parametrize(
    ("connection", "resource", "mark", "fragment"),
    [
        (CONNECTION, None, Mark.OK, f"offers single sign-on for api://botid-{SANDBOX_BOT_APP_ID}"),
        (
            "tapbot-grpah",
            None,
            Mark.FAILED,
            "(HTTP 400: The bot has no OAuth connection named 'tapbot-grpah'): TAPBOT_OAUTH_CONNECTION must be",
        ),
        (CONNECTION, RESOURCE, Mark.FAILED, f"exchanges Teams tokens for api://botid-{SANDBOX_BOT_APP_ID}"),
    ],
    ids=["known", "unknown", "other-app-id-uri"],
)
async def test_against_a_stand_alone_sandbox_token_service(
    database: str, connection: str, resource: str | None, mark: Mark, fragment: str
) -> None:
    """`python -m bot.sandbox` serves the token service at its root; the anonymous bot asks it without a token."""
    sandbox: RunningSandbox = await start_sandbox(
        load_tenant(DEMO_TENANT_FILE), SandboxOptions(oauth_connections=(CONNECTION,))
    )
    try:
        env = {
            "TAPBOT_GRAPH_AUTH": "anonymous",
            "TAPBOT_GRAPH_BASE_URL": sandbox.base_url,
            "TAPBOT_ALLOWED_TENANT_IDS": TENANT,
            "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
            "TAPBOT_DATABASE_URL": database,
            "TAPBOT_GRAPH_WRITES": "delegated",
            "TAPBOT_OAUTH_CONNECTION": connection,
            "TAPBOT_TOKEN_SERVICE_URL": sandbox.root_url,
            **({"TAPBOT_SSO_RESOURCE": resource} if resource else {}),
        }
        report = await Doctor(env).diagnose()
        links = sandbox.state.identity.counters.sign_in_links
    finally:
        await sandbox.close()
    finding = report.finding("oauth_connection")
    assert finding.mark is mark, render(report)
    assert fragment in finding.sentence
    assert links == (0 if connection != CONNECTION else 1), "one sign-in link asked for, no token"
