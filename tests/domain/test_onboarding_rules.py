from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.domain.errors import Rule
from bot.domain.model import Caller, DirectoryUser
from bot.domain.onboarding import OnboardingDefaults, first_day_start, onboarding_refusal

MANAGER = Caller("m0000000-0000-0000-0000-000000000001", "t")
HIRE = DirectoryUser(
    "h0000000-0000-0000-0000-000000000002",
    "lee@contoso.test",
    "Lee Gu",
    employee_hire_date=datetime(2027, 1, 11, tzinfo=UTC),
)
PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"
AUTHENTICATOR = "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"
DEFAULTS = OnboardingDefaults(None, False, 8, ZoneInfo("America/New_York"))


def test_only_the_manager_may_ask() -> None:
    refusal = onboarding_refusal(MANAGER, HIRE, "someone-else", (PASSWORD,))
    assert refusal is not None and refusal.rule is Rule.NOT_MANAGER
    refusal = onboarding_refusal(MANAGER, HIRE, None, (PASSWORD,))
    assert refusal is not None and refusal.rule is Rule.NOT_MANAGER
    assert onboarding_refusal(MANAGER, HIRE, MANAGER.object_id.upper(), (PASSWORD,)) is None


def test_any_method_besides_password_means_not_a_new_hire() -> None:
    refusal = onboarding_refusal(MANAGER, HIRE, MANAGER.object_id, (PASSWORD, AUTHENTICATOR))
    assert refusal is not None and refusal.rule is Rule.HAS_SIGN_IN_METHODS
    assert "Microsoft Authenticator" in refusal.user_message
    pass_method = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
    assert onboarding_refusal(MANAGER, HIRE, MANAGER.object_id, (PASSWORD, pass_method)) is None


def test_first_day_starts_on_the_hire_date_morning_in_the_tenant_zone() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    start = first_day_start(HIRE, DEFAULTS, now)
    assert start == datetime(2027, 1, 11, 8, 0, tzinfo=ZoneInfo("America/New_York"))


def test_unknown_or_past_hire_date_means_now() -> None:
    now = datetime(2027, 2, 1, tzinfo=UTC)
    assert first_day_start(HIRE, DEFAULTS, now) is None
    no_date = DirectoryUser("x", "x@contoso.test", "X")
    assert first_day_start(no_date, DEFAULTS, now) is None
