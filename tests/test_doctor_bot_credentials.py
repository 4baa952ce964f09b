"""The doctor knows every bot credential the Agents SDK (1.9) implements, spelled as the SDK compares it.

The secretless forms the deployment guide recommends (an Azure Bot of type User-Assigned Managed Identity, or an app
registration with a federated credential from a managed identity) pass; a form the SDK would reject at the first
reply (wrong case, a missing companion setting, an auth type its MSAL authentication does not implement) fails with
the setting to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from microsoft_agents.authentication.msal import MsalAuth, msal_auth
from microsoft_agents.hosting.core import AgentAuthConfiguration
from microsoft_agents.hosting.core.authorization.auth_types import AuthTypes

from bot.adapters.store import SqlStore
from bot.doctor import BOT_AUTH_TYPES, Doctor, Mark
from bot.settings import Settings

TENANT = "e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8"
BOT = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


@pytest.fixture
async def database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tapbot.db'}"
    store = SqlStore.from_url(url)
    await store.create_schema()
    await store.close()
    return url


async def _token(_settings: Settings) -> str:
    return "bot-framework-token"


async def _never(_settings: Settings) -> str:
    raise AssertionError("no token is requested for an unusable registration")


async def registration(database: str, tmp_path: Path, **connection: str) -> tuple[Mark, str]:
    env = {
        "TAPBOT_DATABASE_URL": database,
        BOT + "CLIENTID": "6f1a3c2e-1b2d-4c3e-9f10-123456789abc",
        BOT + "TENANTID": TENANT,
        **{BOT + key: value.replace("<tmp>", str(tmp_path)) for key, value in connection.items()},
    }
    report = await Doctor(env, bot_token=_token).diagnose()
    finding = report.finding("bot_registration")
    return finding.mark, finding.sentence


@pytest.mark.parametrize(
    ("connection", "described"),
    [
        ({"AUTHTYPE": "UserManagedIdentity"}, "user-assigned managed identity, no secret"),
        ({"AUTHTYPE": "SystemManagedIdentity"}, "system-assigned managed identity, no secret"),
        (
            {"AUTHTYPE": "FederatedCredentials", "FEDERATEDCLIENTID": "0d4c1f7e-8a6b-4c2d-9e3f-a1b2c3d4e5f6"},
            "federated credential from a managed identity, no secret",
        ),
        ({"AUTHTYPE": "WorkloadIdentity", "FEDERATEDTOKENFILE": "<tmp>/token"}, "workload identity federation"),
        ({"AUTHTYPE": "certificate", "CERTPFXFILE": "<tmp>/bot.pfx"}, "certificate"),
        ({"CLIENTSECRET": "from-key-vault"}, "ClientSecret: client secret"),
    ],
)
async def test_each_credential_form_of_the_sdk_is_recognised(
    database: str, tmp_path: Path, connection: dict[str, str], described: str
) -> None:
    (tmp_path / "token").write_text("federated-token")
    (tmp_path / "bot.pfx").write_bytes(b"not read by the doctor")
    mark, sentence = await registration(database, tmp_path, **connection)
    assert mark is Mark.OK, sentence
    assert described in sentence


@pytest.mark.parametrize(
    ("connection", "problem"),
    [
        ({"AUTHTYPE": "usermanagedidentity"}, "AUTHTYPE=UserManagedIdentity exactly"),
        ({"AUTHTYPE": "Certificate", "CERTPFXFILE": "<tmp>/bot.pfx"}, "AUTHTYPE=certificate exactly"),
        ({"AUTHTYPE": "FederatedCredentials"}, "needs CONNECTIONS__SERVICE_CONNECTION__SETTINGS__FEDERATEDCLIENTID"),
        ({"AUTHTYPE": "WorkloadIdentity", "FEDERATEDTOKENFILE": "<tmp>/missing"}, "must name a file that exists"),
        ({"AUTHTYPE": "CertificateSubjectName"}, "not an auth type of the Agents SDK"),
        ({"AUTHTYPE": "EntraAuthSideCar"}, "not an auth type of the Agents SDK"),
    ],
)
async def test_a_form_the_sdk_would_reject_fails_with_the_setting_to_fix(
    database: str, tmp_path: Path, connection: dict[str, str], problem: str
) -> None:
    (tmp_path / "bot.pfx").write_bytes(b"x")
    mark, sentence = await registration(database, tmp_path, **connection)
    assert mark is Mark.FAILED
    assert problem in sentence


def test_the_doctor_accepts_exactly_what_the_sdk_builds_a_client_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every accepted form makes the SDK's MsalAuth build an MSAL client; every other one makes it refuse."""
    built: list[str] = []

    class Recorded:
        def __init__(self, *_arguments: object, **_options: object) -> None:
            built.append(type(self).__name__)

    # MSAL's own classes would look the authority up over the network; which one the SDK picks is what matters.
    monkeypatch.setattr(msal_auth, "ConfidentialClientApplication", Recorded)
    monkeypatch.setattr(msal_auth, "ManagedIdentityClient", Recorded)
    (tmp_path / "token").write_text("federated-token")
    companions: dict[str, Any] = {
        "CLIENTSECRET": "secret",
        "CERTPFXFILE": str(tmp_path / "bot.pfx"),
        "FEDERATEDCLIENTID": "0d4c1f7e-8a6b-4c2d-9e3f-a1b2c3d4e5f6",
        "FEDERATEDTOKENFILE": str(tmp_path / "token"),
    }
    for auth_type in AuthTypes:
        if auth_type is AuthTypes.identity_proxy_manager:
            continue  # agentic identities (Agent 365), not a bot registration
        configuration = AgentAuthConfiguration(
            AUTHTYPE=auth_type.value, CLIENTID="6f1a3c2e-1b2d-4c3e-9f10-123456789abc", TENANTID=TENANT, **companions
        )
        auth = MsalAuth(configuration)
        built.clear()
        if auth_type.value in BOT_AUTH_TYPES:
            auth._create_client_application()
            assert built, auth_type
        else:
            with pytest.raises(NotImplementedError):
                auth._create_client_application()
    assert set(BOT_AUTH_TYPES) <= {auth_type.value for auth_type in AuthTypes}
