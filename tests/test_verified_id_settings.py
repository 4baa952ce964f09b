"""TAPBOT_VERIFIED_ID_*: checked at start, each refusal naming its variable."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError, VerifiedIdSettings
from tests.test_settings import real_tenant

DID = "did:web:verifiedid.entra.microsoft.com:0f0e0d0c-0000-4000-8000-000000000001:8a1b2c3d"


def test_the_sandbox_needs_nothing() -> None:
    settings = Settings.from_env({"TAPBOT_VERIFICATION": "manager,verified_id"})
    assert settings.verified_id == VerifiedIdSettings(authority=None, service_url=None, callback_base_url=None)
    assert settings.verified_id.threshold == 70


def test_a_real_tenant_with_verified_id() -> None:
    settings = Settings.from_env(
        real_tenant(
            TAPBOT_VERIFICATION="verified_id",
            TAPBOT_VERIFIED_ID_AUTHORITY=DID,
            TAPBOT_VERIFIED_ID_CALLBACK_URL="https://tapbot.contoso.com/",
            TAPBOT_VERIFIED_ID_THRESHOLD="85",
        )
    )
    assert settings.verified_id == VerifiedIdSettings(
        authority=DID,
        service_url="https://verifiedid.did.msidentity.com/v1.0",
        callback_base_url="https://tapbot.contoso.com",
        threshold=85,
    )


def test_a_real_tenant_without_verified_id_needs_none_of_it() -> None:
    assert Settings.from_env(real_tenant(TAPBOT_VERIFICATION="manager")).verified_id.authority is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            real_tenant(TAPBOT_VERIFICATION="verified_id", TAPBOT_VERIFIED_ID_CALLBACK_URL="https://t.example"),
            "TAPBOT_VERIFIED_ID_AUTHORITY",
        ),
        (
            real_tenant(TAPBOT_VERIFICATION="verified_id", TAPBOT_VERIFIED_ID_AUTHORITY=DID),
            "TAPBOT_VERIFIED_ID_CALLBACK_URL",
        ),
        (
            real_tenant(
                TAPBOT_VERIFICATION="verified_id",
                TAPBOT_VERIFIED_ID_AUTHORITY=DID,
                TAPBOT_VERIFIED_ID_CALLBACK_URL="http://tapbot.contoso.com",
            ),
            "TAPBOT_VERIFIED_ID_CALLBACK_URL",
        ),
        (
            real_tenant(
                TAPBOT_VERIFICATION="verified_id",
                TAPBOT_VERIFIED_ID_AUTHORITY=DID,
                TAPBOT_VERIFIED_ID_CALLBACK_URL="https://tapbot.contoso.com/?x=1",
            ),
            "TAPBOT_VERIFIED_ID_CALLBACK_URL",
        ),
        ({"TAPBOT_VERIFIED_ID_AUTHORITY": "contoso.com"}, "TAPBOT_VERIFIED_ID_AUTHORITY"),
        ({"TAPBOT_VERIFIED_ID_THRESHOLD": "49"}, "TAPBOT_VERIFIED_ID_THRESHOLD"),
        ({"TAPBOT_VERIFIED_ID_THRESHOLD": "101"}, "TAPBOT_VERIFIED_ID_THRESHOLD"),
        ({"TAPBOT_VERIFIED_ID_THRESHOLD": "70.5"}, "TAPBOT_VERIFIED_ID_THRESHOLD"),
        (
            real_tenant(TAPBOT_VERIFIED_ID_SERVICE_URL="http://verifiedid.example/v1.0"),
            "TAPBOT_VERIFIED_ID_SERVICE_URL",
        ),
    ],
)
def test_a_wrong_setting_stops_the_start_naming_it(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)
