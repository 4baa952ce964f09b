"""Onboarding passes: a manager asks for a first-day pass for a new hire who reports to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.domain.errors import Refused, Rule
from bot.domain.model import Caller, DirectoryUser

# Graph's @odata.type names of the two methods a new hire may already have.
NEW_HIRE_METHOD_TYPES = frozenset(
    {"#microsoft.graph.passwordAuthenticationMethod", "#microsoft.graph.temporaryAccessPassAuthenticationMethod"}
)
METHOD_NAMES = {
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "Microsoft Authenticator",
    "#microsoft.graph.phoneAuthenticationMethod": "a phone",
    "#microsoft.graph.fido2AuthenticationMethod": "a security key",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "Windows Hello",
    "#microsoft.graph.emailAuthenticationMethod": "an email address",
    "#microsoft.graph.softwareOathAuthenticationMethod": "an authenticator app code",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "a platform credential",
    "#microsoft.graph.x509CertificateAuthenticationMethod": "a certificate",
}


@dataclass(frozen=True)
class OnboardingDefaults:
    """Settings for onboarding passes: their lifetime, one-time use, and the hour of the first morning."""

    lifetime_minutes: int | None  # None: the tenant policy's default
    one_time: bool
    first_day_hour: int
    tenant_timezone: ZoneInfo


@dataclass(frozen=True)
class OnboardRequest:
    target: str
    start_at: datetime | None = None
    lifetime_minutes: int | None = None


def onboarding_refusal(
    caller: Caller, user: DirectoryUser, manager_id: str | None, method_types: tuple[str, ...]
) -> Refused | None:
    """The new-hire rule Entra's Lifecycle Workflows apply: the caller's own report, with nothing but a password."""
    if manager_id is None or manager_id.lower() != caller.object_id.lower():
        return Refused(
            Rule.NOT_MANAGER,
            f"You can only request onboarding passes for your own direct reports, and {user.label} does not "
            "report to you in Entra. Ask IT if the manager is wrong.",
        )
    others = sorted(
        {METHOD_NAMES.get(kind, "another sign-in method") for kind in method_types if kind not in NEW_HIRE_METHOD_TYPES}
    )
    if others:
        return Refused(
            Rule.HAS_SIGN_IN_METHODS,
            f"{user.label} has already set up {', '.join(others)}, so this is not a new hire's first sign-in. "
            "Ask IT (an operator) if they need a Temporary Access Pass.",
        )
    return None


def first_day_start(user: DirectoryUser, defaults: OnboardingDefaults, now: datetime) -> datetime | None:
    """The morning of the hire date in the tenant's time zone; None (meaning now) if unknown or already past."""
    if user.employee_hire_date is None:
        return None
    hire_day = user.employee_hire_date.astimezone(defaults.tenant_timezone).date()
    if user.employee_hire_date.time() == time(0, 0) and user.employee_hire_date.utcoffset() is not None:
        hire_day = user.employee_hire_date.date()  # a bare date stored as midnight UTC means that calendar day
    start = datetime.combine(hire_day, time(defaults.first_day_hour), tzinfo=defaults.tenant_timezone)
    return start if start > now else None
