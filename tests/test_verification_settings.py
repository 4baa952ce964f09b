"""TAPBOT_VERIFICATION and its companions: on by default (manager), off on request, and refused at start naming the
variable when wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.verification import VerificationMethod
from bot.settings import Settings, SettingsError


def test_a_recovery_pass_needs_the_managers_confirmation_by_default() -> None:
    rules = Settings.from_env({}).verification
    assert rules.methods == (VerificationMethod.MANAGER,) and rules.enabled
    assert not rules.onboarding and rules.window == timedelta(minutes=15) and rules.fallback_group_id is None


@pytest.mark.parametrize("value", ["off", "OFF", "none", ""])
def test_off_or_empty_restores_the_behaviour_before_verification(value: str) -> None:
    assert not Settings.from_env({"TAPBOT_VERIFICATION": value}).verification.enabled


def test_methods_minutes_onboarding_and_the_fallback_group() -> None:
    rules = Settings.from_env(
        {
            "TAPBOT_VERIFICATION": " Verified_ID , manager,manager",
            "TAPBOT_VERIFY_ONBOARDING": "yes",
            "TAPBOT_VERIFICATION_MINUTES": "30",
            "TAPBOT_VERIFICATION_FALLBACK_GROUP": "21AB2CFF-3026-4C46-8578-27CBA81A4826",
        }
    ).verification
    assert rules.methods == (VerificationMethod.VERIFIED_ID, VerificationMethod.MANAGER)
    assert rules.onboarding and rules.window == timedelta(minutes=30)
    assert rules.fallback_group_id == "21ab2cff-3026-4c46-8578-27cba81a4826"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAPBOT_VERIFICATION": "manager,selfie"}, "TAPBOT_VERIFICATION=manager,selfie: 'selfie'"),
        ({"TAPBOT_VERIFICATION": "off", "TAPBOT_VERIFY_ONBOARDING": "true"}, "TAPBOT_VERIFY_ONBOARDING=true"),
        ({"TAPBOT_VERIFY_ONBOARDING": "maybe"}, "TAPBOT_VERIFY_ONBOARDING=maybe"),
        ({"TAPBOT_VERIFICATION_MINUTES": "1"}, "TAPBOT_VERIFICATION_MINUTES=1"),
        ({"TAPBOT_VERIFICATION_MINUTES": "soon"}, "TAPBOT_VERIFICATION_MINUTES=soon"),
        ({"TAPBOT_VERIFICATION_FALLBACK_GROUP": "Security Responders"}, "TAPBOT_VERIFICATION_FALLBACK_GROUP="),
    ],
)
def test_a_wrong_value_stops_the_start_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert named in str(refused.value)
