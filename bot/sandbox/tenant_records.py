"""The records of a sandbox tenant (users, groups, roles, the TAP policy) and the constants they share."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bot.settings import DEMO_TENANT_FILE

DEMO_TENANT_PATH = DEMO_TENANT_FILE  # one constant: bot/settings.py names the default tenant file

UserType = Literal["Member", "Guest"]
PolicyState = Literal["enabled", "disabled"]
TargetType = Literal["user", "group"]
GroupAccess = Literal["member", "owner"]

TENANT_SCOPE = "/"
ADMINISTRATIVE_UNIT_SCOPE_PREFIX = "/administrativeUnits/"

ALL_USERS_TARGET_ID = "all_users"
TAP_ABSOLUTE_MIN_LIFETIME_MINUTES = 10
TAP_ABSOLUTE_MAX_LIFETIME_MINUTES = 43200
TAP_MIN_LENGTH = 8
TAP_MAX_LENGTH = 48

# Graph gives every user's password method this same id.
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"

AUTHENTICATION_METHOD_ODATA_TYPES: Mapping[str, str] = {
    "password": "#microsoft.graph.passwordAuthenticationMethod",
    "microsoftAuthenticator": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "phone": "#microsoft.graph.phoneAuthenticationMethod",
    "fido2": "#microsoft.graph.fido2AuthenticationMethod",
    "email": "#microsoft.graph.emailAuthenticationMethod",
    "softwareOath": "#microsoft.graph.softwareOathAuthenticationMethod",
    "windowsHelloForBusiness": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
    "platformCredential": "#microsoft.graph.platformCredentialAuthenticationMethod",
}

# Built-in Entra role templates (their ids are the same in every tenant); a tenant file can add more.
BUILT_IN_ROLE_DEFINITIONS: Mapping[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "95e79109-95c0-4d8e-aee3-d01accf2d47b": "Guest Inviter",
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b": "Message Center Reader",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "4a5d8f65-41da-4de4-8968-e035b65339cf": "Reports Reader",
    "27460883-1df1-4691-b032-3b79643e5e63": "User Experience Success Manager",
    "75934031-6c7e-415a-99d7-48dbd49e875e": "Usage Summary Reports Reader",
}


# The application permissions the sandbox's app holds when the tenant file does not list them: what
# docs/deployment.md asks to grant, plus the broader write permission the bot's tests have always been given.
DEFAULT_APPLICATION_PERMISSIONS: tuple[str, ...] = (
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",
    "UserAuthMethod-TAP.Read.All",
    "Policy.Read.AuthenticationMethod",
    "User.Read.All",
    "UserAuthenticationMethod.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "PrivilegedEligibilitySchedule.Read.AzureADGroup",
)


class TenantFileError(ValueError):
    """The tenant description is invalid; the message names the offending entry."""


@dataclass(frozen=True)
class AuthenticationMethod:
    id: str
    method_type: str
    # Extra Graph properties from the tenant file (phoneNumber, displayName, ...), passed through verbatim.
    properties: Mapping[str, object] = field(default_factory=dict)

    @property
    def odata_type(self) -> str:
        return AUTHENTICATION_METHOD_ODATA_TYPES[self.method_type]


IMPLICIT_PASSWORD_METHOD = AuthenticationMethod(PASSWORD_METHOD_ID, "password", {"password": None})


@dataclass(frozen=True)
class TenantUser:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    user_type: UserType = "Member"
    account_enabled: bool = True
    employee_hire_date: datetime | None = None
    manager_id: str | None = None
    job_title: str | None = None
    department: str | None = None
    given_name: str | None = None
    surname: str | None = None
    # As listed in the tenant file; the password method every user has may be left out (see below).
    authentication_methods: tuple[AuthenticationMethod, ...] = ()

    @property
    def is_guest(self) -> bool:
        return self.user_type == "Guest"

    @property
    def methods_with_password(self) -> tuple[AuthenticationMethod, ...]:
        if any(method.method_type == "password" for method in self.authentication_methods):
            return self.authentication_methods
        return (IMPLICIT_PASSWORD_METHOD, *self.authentication_methods)


@dataclass(frozen=True)
class TenantGroup:
    id: str
    display_name: str
    description: str | None = None
    member_ids: tuple[str, ...] = ()
    # Owners may change the group's members, themselves included: an owner of a role-holding group is privileged.
    owner_ids: tuple[str, ...] = ()
    # Only role-assignable groups can be given directory roles (Graph's isAssignableToRole, fixed at creation).
    is_assignable_to_role: bool = False


@dataclass(frozen=True)
class AdministrativeUnit:
    id: str
    display_name: str
    description: str | None = None
    member_ids: tuple[str, ...] = ()
    """Users only in this sandbox (Graph's units may also hold groups and devices)."""
    # Restricted management: only roles assigned at the scope of such a unit may change its members (Entra:
    # admin-units-restricted-management.md), not tenant-wide roles, not application permissions.
    is_member_management_restricted: bool = False


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    display_name: str
    is_built_in: bool = True


@dataclass(frozen=True)
class RoleAssignment:
    """An active assignment: permanent, time-bound (`start`/`end`), or a PIM activation of an eligibility (always
    time-bound). Outside its window it counts for nothing."""

    id: str
    principal_id: str
    role_definition_id: str
    directory_scope_id: str = TENANT_SCOPE
    start: datetime | None = None
    end: datetime | None = None
    activated: bool = False
    """Made by activating an eligibility (PIM), as opposed to assigned."""

    def is_current(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


@dataclass(frozen=True)
class RoleEligibility:
    """A PIM eligibility for a directory role: the principal can activate it whenever it likes."""

    id: str
    principal_id: str
    role_definition_id: str
    directory_scope_id: str = TENANT_SCOPE
    start: datetime | None = None
    end: datetime | None = None

    def is_current(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


@dataclass(frozen=True)
class GroupEligibility:
    """PIM for Groups: the user may activate membership (or ownership) of the group whenever it likes."""

    id: str
    principal_id: str
    group_id: str
    access_id: GroupAccess = "member"
    start: datetime | None = None
    end: datetime | None = None

    def is_current(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.end is None or now < self.end)


@dataclass(frozen=True)
class PolicyTarget:
    target_type: TargetType
    id: str
    is_registration_required: bool = False


@dataclass(frozen=True)
class TapPolicy:
    """Graph's temporaryAccessPassAuthenticationMethodConfiguration."""

    state: PolicyState = "enabled"
    default_lifetime_in_minutes: int = 60
    default_length: int = 8
    minimum_lifetime_in_minutes: int = 60
    maximum_lifetime_in_minutes: int = 480
    is_usable_once: bool = False
    include_targets: tuple[PolicyTarget, ...] = (PolicyTarget("group", ALL_USERS_TARGET_ID),)
    exclude_targets: tuple[PolicyTarget, ...] = ()

    def __post_init__(self) -> None:
        where = "temporaryAccessPassPolicy"
        lifetimes = (
            self.minimum_lifetime_in_minutes,
            self.default_lifetime_in_minutes,
            self.maximum_lifetime_in_minutes,
        )
        if not TAP_ABSOLUTE_MIN_LIFETIME_MINUTES <= lifetimes[0] <= lifetimes[1] <= lifetimes[2]:
            raise TenantFileError(
                f"{where}: lifetimes must satisfy {TAP_ABSOLUTE_MIN_LIFETIME_MINUTES} <= "
                "minimumLifetimeInMinutes <= defaultLifetimeInMinutes <= maximumLifetimeInMinutes "
                f"(got {', '.join(map(str, lifetimes))})"
            )
        if lifetimes[2] > TAP_ABSOLUTE_MAX_LIFETIME_MINUTES:
            raise TenantFileError(
                f"{where}: maximumLifetimeInMinutes cannot exceed {TAP_ABSOLUTE_MAX_LIFETIME_MINUTES}"
            )
        if not TAP_MIN_LENGTH <= self.default_length <= TAP_MAX_LENGTH:
            raise TenantFileError(f"{where}: defaultLength must be between {TAP_MIN_LENGTH} and {TAP_MAX_LENGTH}")


@dataclass(frozen=True)
class SeededPass:
    """A pass that already exists when the tenant is loaded (its secret is unknown)."""

    user_id: str
    id: str
    created: datetime
    start: datetime
    lifetime_in_minutes: int
    is_usable_once: bool = False
    used: bool = False


def role_assignment_id(role_definition_id: str, principal_id: str) -> str:
    """Graph's id shape for unified role assignments: base64url of both GUIDs (little-endian) plus '-1'."""
    raw = uuid.UUID(role_definition_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") + "-1"
