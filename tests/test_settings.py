from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.adapters.graph import build_credential
from bot.settings import DEMO_TENANT_FILE, SANDBOX_BOT_APP_ID, GraphMode, GraphWrites, Settings, SettingsError

APP = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID"
TENANT = "0f0e0d0c-0000-4000-8000-000000000001"
OPERATORS = "0f0e0d0c-0000-4000-8000-000000000002"


def real_tenant(**extra: str) -> dict[str, str]:
    return {
        APP: "bot-app-id",
        "TAPBOT_GRAPH_AUTH": "managed_identity",
        "TAPBOT_GRAPH_TENANT_ID": TENANT,
        "TAPBOT_OPERATOR_GROUP_ID": OPERATORS,
        **extra,
    }


def test_defaults_run_the_demo_sandbox_unauthenticated_on_loopback() -> None:
    settings = Settings.from_env({})
    assert settings.sandbox and settings.anonymous
    assert settings.host == "127.0.0.1" and settings.port == 3978
    assert settings.sandbox_tenant_file == DEMO_TENANT_FILE
    assert settings.allowed_tenant_ids == {"e0eeef39-44a5-4e21-9fc8-bc6e2ac99ce8"}
    assert settings.operator_group_id == "a7ce04ee-d04a-4705-a2b0-6143136ea70f"
    assert settings.protected_group_ids == {"bd7c3ef1-9245-4256-8aac-1e552b66595b"}


def test_real_tenant_settings() -> None:
    settings = Settings.from_env(real_tenant(TAPBOT_PROTECTED_GROUP_IDS="a, b", PORT="8080"))
    assert not settings.sandbox and not settings.anonymous
    assert (
        settings.graph.mode is GraphMode.MANAGED_IDENTITY
        and settings.graph.scope == "https://graph.microsoft.com/.default"
    )
    assert settings.allowed_tenant_ids == {TENANT} and settings.protected_group_ids == {"a", "b"}
    assert settings.host == "0.0.0.0" and settings.port == 8080


def test_national_cloud_scope() -> None:
    settings = Settings.from_env(real_tenant(TAPBOT_GRAPH_BASE_URL="https://graph.microsoft.us/v1.0/"))
    assert settings.graph.base_url == "https://graph.microsoft.us/v1.0"
    assert settings.graph.scope == "https://graph.microsoft.us/.default"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAPBOT_HOST": "0.0.0.0"}, "TAPBOT_HOST"),
        (
            {
                "TAPBOT_GRAPH_AUTH": "client_secret",
                "TAPBOT_GRAPH_TENANT_ID": TENANT,
                "TAPBOT_GRAPH_CLIENT_ID": "graph-app",
                "TAPBOT_GRAPH_CLIENT_SECRET": "s",
            },
            "no bot app id",
        ),
        ({"TAPBOT_GRAPH_AUTH": "anonymous", "TAPBOT_GRAPH_BASE_URL": "http://10.0.0.5/v1.0"}, "loopback"),
        ({"TAPBOT_GRAPH_AUTH": "password"}, "TAPBOT_GRAPH_AUTH"),
        ({"PORT": "eighty"}, "PORT"),
        ({"TAPBOT_DEFAULT_TIMEZONE": "Mars/Olympus"}, "TAPBOT_DEFAULT_TIMEZONE"),
        ({"TAPBOT_SANDBOX_TENANT": "/nonexistent/tenant.json"}, "TAPBOT_SANDBOX_TENANT"),
        ({**real_tenant(), "TAPBOT_OPERATOR_GROUP_ID": ""}, "TAPBOT_OPERATOR_GROUP_ID"),
        ({**real_tenant(), "TAPBOT_GRAPH_TENANT_ID": ""}, "TAPBOT_GRAPH_TENANT_ID"),
        (real_tenant(TAPBOT_GRAPH_AUTH="client_secret", TAPBOT_GRAPH_CLIENT_ID="x"), "TAPBOT_GRAPH_CLIENT_SECRET"),
        (real_tenant(TAPBOT_GRAPH_BASE_URL="http://graph.example.com/v1.0"), "https"),
    ],
)
def test_bad_settings_stop_the_start_with_a_named_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert named in str(caught.value)


def self_signed_pem(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tapbot-test")])
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_each_credential_kind(tmp_path: Path) -> None:
    pem = self_signed_pem(tmp_path / "graph.pem")
    certificate = Settings.from_env(
        real_tenant(
            TAPBOT_GRAPH_AUTH="certificate", TAPBOT_GRAPH_CLIENT_ID="graph-app", TAPBOT_GRAPH_CERTIFICATE_PATH=str(pem)
        )
    )
    assert isinstance(build_credential(certificate.graph), CertificateCredential)
    secret = Settings.from_env(
        real_tenant(
            TAPBOT_GRAPH_AUTH="client_secret",
            TAPBOT_GRAPH_CLIENT_ID="graph-app",
            TAPBOT_GRAPH_CLIENT_SECRET="v3ry-s3cret",
        )
    )
    assert isinstance(build_credential(secret.graph), ClientSecretCredential)
    assert "v3ry-s3cret" not in repr(secret)
    managed = Settings.from_env(real_tenant())
    assert isinstance(build_credential(managed.graph), ManagedIdentityCredential)


def test_connector_hosts_default_to_teams_clouds_and_can_be_replaced() -> None:
    assert Settings.from_env(real_tenant()).connector_hosts == (
        "smba.trafficmanager.net",
        "smba.infra.gcc.teams.microsoft.com",
        "smba.infra.gov.teams.microsoft.us",
        "smba.infra.dod.teams.microsoft.us",
    )
    custom = Settings.from_env(
        real_tenant(TAPBOT_CONNECTOR_HOSTS="SMBA.trafficmanager.net, *.example.org,127.0.0.1:4000")
    )
    assert custom.connector_hosts == ("smba.trafficmanager.net", "*.example.org", "127.0.0.1:4000")
    for wrong in ("https://smba.trafficmanager.net/", "smba.trafficmanager.net/amer", "user@host", "host:port"):
        with pytest.raises(SettingsError, match="TAPBOT_CONNECTOR_HOSTS"):
            Settings.from_env(real_tenant(TAPBOT_CONNECTOR_HOSTS=wrong))


@pytest.mark.parametrize(
    "base_url", ["https://microsoftgraph.chinacloudapi.cn/v1.0", "https://MicrosoftGraph.ChinaCloudApi.cn/v1.0/"]
)
def test_the_21vianet_cloud_is_refused_with_a_sentence(base_url: str) -> None:
    with pytest.raises(SettingsError, match=r"21Vianet does not offer the v1\.0 Temporary Access Pass APIs"):
        Settings.from_env(real_tenant(TAPBOT_GRAPH_BASE_URL=base_url))


def test_us_government_graph_is_accepted() -> None:
    settings = Settings.from_env(real_tenant(TAPBOT_GRAPH_BASE_URL="https://graph.microsoft.us/v1.0"))
    assert settings.graph.base_url == "https://graph.microsoft.us/v1.0"


def test_reasons_are_optional_by_default_and_the_ticket_pattern_makes_them_required() -> None:
    default = Settings.from_env({}).reasons
    assert (default.required, default.ticket_pattern, default.problem("")) == (False, None, None)
    rules = Settings.from_env({"TAPBOT_TICKET_PATTERN": r"INC\d{7}", "TAPBOT_TICKET_EXAMPLE": "INC0012345"}).reasons
    assert rules.problem("INC0012345 lost phone") is None
    assert (
        rules.problem("")
        == 'Give a reason with a ticket number like INC0012345, for example: reason "INC0012345 lost phone".'
    )
    assert Settings.from_env({"TAPBOT_REASON_REQUIRED": "yes"}).reasons.problem("lost phone") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAPBOT_TICKET_PATTERN": "INC(\\d"}, r"TAPBOT_TICKET_PATTERN=INC\(\\d is not a valid regular expression"),
        ({"TAPBOT_TICKET_PATTERN": "(INC)?"}, "matches an empty reason"),
        ({"TAPBOT_TICKET_EXAMPLE": "INC1"}, "TAPBOT_TICKET_EXAMPLE is set but TAPBOT_TICKET_PATTERN is not"),
        ({"TAPBOT_TICKET_PATTERN": r"INC\d{7}", "TAPBOT_TICKET_EXAMPLE": "INC12"}, "does not match"),
        ({"TAPBOT_REASON_REQUIRED": "maybe"}, "TAPBOT_REASON_REQUIRED=maybe is not true or false"),
    ],
)
def test_bad_reason_settings_stop_the_start_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_follow_through_deletes_a_multi_use_pass_after_registration_unless_told_not_to() -> None:
    assert Settings.from_env({}).revoke_after_registration is True
    assert Settings.from_env({"TAPBOT_REVOKE_AFTER_REGISTRATION": "false"}).revoke_after_registration is False
    with pytest.raises(SettingsError, match="TAPBOT_REVOKE_AFTER_REGISTRATION"):
        Settings.from_env({"TAPBOT_REVOKE_AFTER_REGISTRATION": "sometimes"})


def test_writes_are_the_applications_unless_delegated_is_chosen() -> None:
    settings = Settings.from_env({})
    assert settings.graph_writes is GraphWrites.APPLICATION and not settings.delegated_writes
    assert settings.oauth_connection is None and settings.token_service_url == "https://api.botframework.com"
    delegated = Settings.from_env(real_tenant(TAPBOT_GRAPH_WRITES="Delegated", TAPBOT_OAUTH_CONNECTION="tapbot-graph"))
    assert delegated.delegated_writes and delegated.oauth_connection == "tapbot-graph"
    assert delegated.sso_app_id == "bot-app-id" and delegated.sso_resource == "api://botid-bot-app-id"
    assert delegated.token_service_url == "https://api.botframework.com"


def test_the_sandbox_stands_in_its_own_app_id_for_single_sign_on() -> None:
    from bot.sandbox.identity import SANDBOX_BOT_APP_ID as SANDBOXS_OWN  # settings cannot import the emulator

    settings = Settings.from_env({"TAPBOT_GRAPH_WRITES": "delegated", "TAPBOT_OAUTH_CONNECTION": "graph"})
    assert settings.sso_app_id == SANDBOX_BOT_APP_ID == SANDBOXS_OWN == "5a4db0b7-7e57-4f0b-9a47-0c0ffee0b07a"
    assert settings.sso_resource == f"api://botid-{SANDBOX_BOT_APP_ID}"


def test_the_app_id_uri_and_the_token_service_can_be_named() -> None:
    settings = Settings.from_env(
        real_tenant(
            TAPBOT_GRAPH_WRITES="delegated",
            TAPBOT_OAUTH_CONNECTION="graph",
            TAPBOT_SSO_RESOURCE="api://tapbot.contoso.com/botid-bot-app-id/",
            TAPBOT_TOKEN_SERVICE_URL="https://europe.api.botframework.com/",
        )
    )
    assert settings.sso_resource == "api://tapbot.contoso.com/botid-bot-app-id"
    assert settings.token_service_url == "https://europe.api.botframework.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAPBOT_GRAPH_WRITES": "user"}, "^TAPBOT_GRAPH_WRITES=user is not one of: application, delegated.$"),
        (
            {"TAPBOT_GRAPH_WRITES": "delegated"},
            "^Set TAPBOT_OAUTH_CONNECTION .* TAPBOT_GRAPH_WRITES=delegated needs it.$",
        ),
        (
            {"TAPBOT_GRAPH_WRITES": "delegated", "TAPBOT_OAUTH_CONNECTION": "graph\x07"},
            "^TAPBOT_OAUTH_CONNECTION must be the name",
        ),
        ({"TAPBOT_SSO_RESOURCE": "botid-123"}, "^TAPBOT_SSO_RESOURCE=botid-123 is not an App ID URI"),
        (
            real_tenant(TAPBOT_TOKEN_SERVICE_URL="http://token.example.com"),
            "^TAPBOT_TOKEN_SERVICE_URL=http://token.example.com must be an https address",
        ),
    ],
)
def test_bad_delegated_settings_stop_the_start_in_one_sentence_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env(env)
    assert str(caught.value).endswith(".") and ". " not in str(caught.value), "one sentence"
