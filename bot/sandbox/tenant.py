"""In-memory model of a sandbox tenant and the loader for tenant files (format: docs/sandbox.md)."""

from __future__ import annotations

import base64
import json
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, cast

from bot.sandbox.clock import parse_graph_datetime
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
}


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
    # Only role-assignable groups can be given directory roles (Graph's isAssignableToRole, fixed at creation).
    is_assignable_to_role: bool = False


@dataclass(frozen=True)
class AdministrativeUnit:
    id: str
    display_name: str


@dataclass(frozen=True)
class RoleDefinition:
    id: str
    display_name: str
    is_built_in: bool = True


@dataclass(frozen=True)
class RoleAssignment:
    """An active assignment (permanent, or a PIM eligibility that is activated right now)."""

    id: str
    principal_id: str
    role_definition_id: str
    directory_scope_id: str = TENANT_SCOPE


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


@dataclass(frozen=True)
class Tenant:
    """An immutable, cross-checked tenant; construction raises TenantFileError on bad references."""

    tenant_id: str
    display_name: str
    domain: str
    users: tuple[TenantUser, ...] = ()
    groups: tuple[TenantGroup, ...] = ()
    role_definitions: tuple[RoleDefinition, ...] = ()
    role_assignments: tuple[RoleAssignment, ...] = ()
    tap_policy: TapPolicy = field(default_factory=TapPolicy)
    seeded_passes: tuple[SeededPass, ...] = ()
    source_path: Path | None = None
    administrative_units: tuple[AdministrativeUnit, ...] = ()
    role_eligibilities: tuple[RoleEligibility, ...] = ()
    group_eligibilities: tuple[GroupEligibility, ...] = ()
    # Without Entra ID P2 (or ID Governance) Graph's PIM endpoints answer 400 AadPremiumLicenseRequired.
    pim_licensed: bool = True

    _users_by_id: dict[str, TenantUser] = field(init=False, repr=False, compare=False)
    _users_by_upn: dict[str, TenantUser] = field(init=False, repr=False, compare=False)
    _groups_by_id: dict[str, TenantGroup] = field(init=False, repr=False, compare=False)
    _groups_containing: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _role_definitions_by_id: dict[str, RoleDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_users_by_id", _index_users_by_id(self.users))
        object.__setattr__(self, "_users_by_upn", _index_users_by_upn(self.users))
        object.__setattr__(self, "_groups_by_id", _index_groups(self.groups, self._users_by_id))
        object.__setattr__(self, "_role_definitions_by_id", _index_role_definitions(self.role_definitions))
        containing: dict[str, list[str]] = {}
        for group in self.groups:
            for member_id in group.member_ids:
                containing.setdefault(member_id, []).append(group.id)
        object.__setattr__(self, "_groups_containing", {member: tuple(ids) for member, ids in containing.items()})
        self._check_references()

    def user(self, id_or_user_principal_name: str) -> TenantUser | None:
        by_id = self._users_by_id.get(id_or_user_principal_name.lower())
        return by_id or self._users_by_upn.get(id_or_user_principal_name.lower())

    def group(self, group_id: str) -> TenantGroup | None:
        return self._groups_by_id.get(group_id.lower())

    def manager_of(self, user: TenantUser) -> TenantUser | None:
        return self._users_by_id.get(user.manager_id) if user.manager_id else None

    def direct_reports_of(self, user: TenantUser) -> tuple[TenantUser, ...]:
        return tuple(candidate for candidate in self.users if candidate.manager_id == user.id)

    def transitive_group_ids(self, object_id: str) -> frozenset[str]:
        """Every group that contains the object directly or through nested groups."""
        found: set[str] = set()
        pending = deque(self._groups_containing.get(object_id, ()))
        while pending:
            group_id = pending.popleft()
            if group_id not in found:
                found.add(group_id)
                pending.extend(self._groups_containing.get(group_id, ()))
        return frozenset(found)

    def role_definition(self, role_definition_id: str) -> RoleDefinition | None:
        return self._role_definitions_by_id.get(role_definition_id.lower())

    def role_assignments_of(self, principal_id: str) -> tuple[RoleAssignment, ...]:
        """Direct assignments only, as Graph's `principalId eq` filter returns them."""
        return tuple(assignment for assignment in self.role_assignments if assignment.principal_id == principal_id)

    def role_eligibilities_of(self, principal_id: str, now: datetime) -> tuple[RoleEligibility, ...]:
        """The principal's own eligibilities in force at `now`, as Graph's schedule instances list them."""
        return tuple(
            item for item in self.role_eligibilities if item.principal_id == principal_id and item.is_current(now)
        )

    def group_eligibilities_where(
        self, now: datetime, *, principal_id: str | None = None, group_id: str | None = None
    ) -> tuple[GroupEligibility, ...]:
        return tuple(
            item
            for item in self.group_eligibilities
            if item.is_current(now)
            and (principal_id is None or item.principal_id == principal_id)
            and (group_id is None or item.group_id == group_id)
        )

    def administrative_unit(self, unit_id: str) -> AdministrativeUnit | None:
        return next((unit for unit in self.administrative_units if unit.id == unit_id.lower()), None)

    def _check_role_grant(self, where: str, principal_id: str, role_definition_id: str, scope: str) -> None:
        group = self._groups_by_id.get(principal_id)
        if principal_id not in self._users_by_id and group is None:
            raise TenantFileError(f"{where}: principalId '{principal_id}' is neither a user nor a group")
        if group is not None and not group.is_assignable_to_role:
            raise TenantFileError(
                f"{where}: group '{group.display_name}' is not role-assignable (set isAssignableToRole: true)"
            )
        if role_definition_id not in self._role_definitions_by_id:
            raise TenantFileError(
                f"{where}: roleDefinitionId '{role_definition_id}' is not a known role definition "
                "(add it under roleDefinitions)"
            )
        if scope != TENANT_SCOPE:
            unit_id = scope.removeprefix(ADMINISTRATIVE_UNIT_SCOPE_PREFIX)
            if not scope.startswith(ADMINISTRATIVE_UNIT_SCOPE_PREFIX) or self.administrative_unit(unit_id) is None:
                raise TenantFileError(
                    f"{where}: directoryScopeId '{scope}' must be '/' or '/administrativeUnits/<id of a unit "
                    "under administrativeUnits>'"
                )

    def is_targeted_by_tap_policy(self, user: TenantUser) -> bool:
        """Whether the policy lets a pass be created for the user (ignores the policy's state)."""
        groups = self.transitive_group_ids(user.id)

        def matches(target: PolicyTarget) -> bool:
            if target.target_type == "user":
                return target.id == user.id
            return target.id == ALL_USERS_TARGET_ID or target.id in groups

        excluded = any(matches(target) for target in self.tap_policy.exclude_targets)
        return not excluded and any(matches(target) for target in self.tap_policy.include_targets)

    def _check_references(self) -> None:
        for index, user in enumerate(self.users):
            if user.manager_id is None:
                continue
            where = f"users[{index}] ({user.user_principal_name})"
            if user.manager_id == user.id:
                raise TenantFileError(f"{where}: managerId points at the user itself")
            if user.manager_id not in self._users_by_id:
                raise TenantFileError(f"{where}: managerId '{user.manager_id}' is not a user in this tenant")
        _check_manager_chains(self.users, self._users_by_id)

        for index, group in enumerate(self.groups):
            where = f"groups[{index}] ({group.display_name})"
            for member_id in group.member_ids:
                if member_id == group.id:
                    raise TenantFileError(f"{where}: the group lists itself as a member")
                if member_id not in self._users_by_id and member_id not in self._groups_by_id:
                    raise TenantFileError(f"{where}: member '{member_id}' is neither a user nor a group")
            if group.id in self.transitive_group_ids(group.id):
                raise TenantFileError(f"{where}: group nesting forms a cycle through this group")

        for index, group in enumerate(self.groups):
            if group.is_assignable_to_role and any(member in self._groups_by_id for member in group.member_ids):
                raise TenantFileError(
                    f"groups[{index}] ({group.display_name}): a role-assignable group cannot have groups as members"
                )
        unit_ids = [unit.id for unit in self.administrative_units]
        other_ids = self._users_by_id.keys() | self._groups_by_id.keys()
        if len(set(unit_ids)) != len(unit_ids) or set(unit_ids) & other_ids:
            raise TenantFileError("administrativeUnits: ids must be unique across users, groups and units")
        grant_lists = (("roleAssignments", self.role_assignments), ("roleEligibilities", self.role_eligibilities))
        for kind, grants in grant_lists:
            seen: set[tuple[str, str, str]] = set()
            for index, grant in enumerate(grants):
                where = f"{kind}[{index}]"
                self._check_role_grant(where, grant.principal_id, grant.role_definition_id, grant.directory_scope_id)
                key = (grant.principal_id, grant.role_definition_id, grant.directory_scope_id)
                if key in seen:
                    raise TenantFileError(f"{where}: the same principal already has this role at this scope")
                seen.add(key)
        for index, eligibility in enumerate(self.group_eligibilities):
            where = f"groupEligibilities[{index}]"
            if eligibility.principal_id not in self._users_by_id:
                raise TenantFileError(f"{where}: principalId '{eligibility.principal_id}' is not a user")
            if eligibility.group_id not in self._groups_by_id:
                raise TenantFileError(f"{where}: groupId '{eligibility.group_id}' is not a group")
        if not self.pim_licensed and (self.role_eligibilities or self.group_eligibilities):
            raise TenantFileError(
                "pimLicensed is false, so the tenant cannot have roleEligibilities or groupEligibilities"
            )

        for kind, targets in (
            ("includeTargets", self.tap_policy.include_targets),
            ("excludeTargets", self.tap_policy.exclude_targets),
        ):
            for index, target in enumerate(targets):
                where = f"temporaryAccessPassPolicy.{kind}[{index}]"
                known = (
                    target.id in self._users_by_id
                    if target.target_type == "user"
                    else target.id == ALL_USERS_TARGET_ID or target.id in self._groups_by_id
                )
                if not known:
                    raise TenantFileError(f"{where}: {target.target_type} '{target.id}' is not in this tenant")

        users_with_pass: set[str] = set()
        for index, seeded in enumerate(self.seeded_passes):
            where = f"temporaryAccessPasses[{index}]"
            if seeded.user_id not in self._users_by_id:
                raise TenantFileError(f"{where}: userId '{seeded.user_id}' is not a user in this tenant")
            if seeded.user_id in users_with_pass:
                raise TenantFileError(f"{where}: the user already has a pass (a user holds at most one)")
            users_with_pass.add(seeded.user_id)


def _index_users_by_id(users: Iterable[TenantUser]) -> dict[str, TenantUser]:
    index: dict[str, TenantUser] = {}
    for position, user in enumerate(users):
        if user.id in index:
            raise TenantFileError(f"users[{position}] ({user.user_principal_name}): duplicate id '{user.id}'")
        index[user.id] = user
    return index


def _index_users_by_upn(users: Iterable[TenantUser]) -> dict[str, TenantUser]:
    index: dict[str, TenantUser] = {}
    for position, user in enumerate(users):
        key = user.user_principal_name.lower()
        if key in index:
            raise TenantFileError(
                f"users[{position}]: duplicate userPrincipalName '{user.user_principal_name}' "
                "(UPNs are compared case-insensitively)"
            )
        index[key] = user
    return index


def _index_groups(groups: Iterable[TenantGroup], users_by_id: Mapping[str, TenantUser]) -> dict[str, TenantGroup]:
    index: dict[str, TenantGroup] = {}
    for position, group in enumerate(groups):
        if group.id in index or group.id in users_by_id:
            raise TenantFileError(
                f"groups[{position}] ({group.display_name}): id '{group.id}' is already used by another object"
            )
        index[group.id] = group
    return index


def _index_role_definitions(definitions: Iterable[RoleDefinition]) -> dict[str, RoleDefinition]:
    index = {
        role_id: RoleDefinition(role_id, display_name, is_built_in=True)
        for role_id, display_name in BUILT_IN_ROLE_DEFINITIONS.items()
    }
    for definition in definitions:
        index[definition.id] = definition
    return index


def _check_manager_chains(users: Iterable[TenantUser], users_by_id: Mapping[str, TenantUser]) -> None:
    for position, user in enumerate(users):
        seen = {user.id}
        manager_id = user.manager_id
        while manager_id is not None:
            if manager_id in seen:
                raise TenantFileError(
                    f"users[{position}] ({user.user_principal_name}): the managerId chain forms a cycle"
                )
            seen.add(manager_id)
            manager = users_by_id.get(manager_id)
            manager_id = manager.manager_id if manager else None


def role_assignment_id(role_definition_id: str, principal_id: str) -> str:
    """Graph's id shape for unified role assignments: base64url of both GUIDs (little-endian) plus '-1'."""
    raw = uuid.UUID(role_definition_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") + "-1"


# --- Loading tenant files -------------------------------------------------------------------------------


def load_tenant(path: Path) -> Tenant:
    """Reads and validates a tenant file. Blocking: call it through asyncio.to_thread inside a loop."""
    try:
        data: object = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TenantFileError(f"{path}: cannot read the tenant file ({error.strerror})") from error
    except json.JSONDecodeError as error:
        raise TenantFileError(f"{path}: not valid JSON ({error})") from error
    try:
        return parse_tenant(data, source_path=path)
    except TenantFileError as error:
        raise TenantFileError(f"{path}: {error}") from error


def parse_tenant(data: object, source_path: Path | None = None) -> Tenant:
    """Builds a Tenant from the tenant-file JSON (already decoded)."""
    root = _Fields(
        data,
        "tenant file",
        required={"tenantId", "displayName", "domain", "users", "temporaryAccessPassPolicy"},
        optional={
            "$schema",
            "description",
            "groups",
            "roleDefinitions",
            "roleAssignments",
            "roleEligibilities",
            "groupEligibilities",
            "administrativeUnits",
            "pimLicensed",
            "temporaryAccessPasses",
            "tapbot",  # the bot's own settings for this tenant, read by bot.settings, not by the emulator
        },
    )
    users = tuple(_parse_user(item, index) for index, item in enumerate(root.array("users")))
    groups = tuple(_parse_group(item, index) for index, item in enumerate(root.array("groups")))
    role_definitions = tuple(
        _parse_role_definition(item, index) for index, item in enumerate(root.array("roleDefinitions"))
    )
    role_assignments = tuple(
        _parse_role_assignment(item, index) for index, item in enumerate(root.array("roleAssignments"))
    )
    role_eligibilities = tuple(
        _parse_role_eligibility(item, index) for index, item in enumerate(root.array("roleEligibilities"))
    )
    group_eligibilities = tuple(
        _parse_group_eligibility(item, index) for index, item in enumerate(root.array("groupEligibilities"))
    )
    units = tuple(_parse_unit(item, index) for index, item in enumerate(root.array("administrativeUnits")))
    policy = _parse_policy(root.value("temporaryAccessPassPolicy"))
    passes = tuple(_parse_seeded_pass(item, index) for index, item in enumerate(root.array("temporaryAccessPasses")))
    return Tenant(
        tenant_id=root.guid("tenantId"),
        display_name=root.text("displayName"),
        domain=root.text("domain"),
        users=users,
        groups=groups,
        role_definitions=role_definitions,
        role_assignments=role_assignments,
        tap_policy=policy,
        seeded_passes=passes,
        source_path=source_path,
        administrative_units=units,
        role_eligibilities=role_eligibilities,
        group_eligibilities=group_eligibilities,
        pim_licensed=root.flag("pimLicensed", default=True),
    )


class _Fields:
    """Typed access to one JSON object of the tenant file, naming the entry in every error."""

    def __init__(
        self,
        data: object,
        where: str,
        required: set[str],
        optional: set[str] | None = None,
        allow_extra: bool = False,
    ) -> None:
        if not isinstance(data, dict):
            raise TenantFileError(f"{where}: expected a JSON object")
        self.data = cast(dict[str, object], data)
        self.where = where
        missing = sorted(required - self.data.keys())
        if missing:
            raise TenantFileError(f"{where}: missing {', '.join(missing)}")
        unknown = sorted(self.data.keys() - required - (optional or set()))
        if unknown and not allow_extra:
            raise TenantFileError(f"{where}: unknown field(s) {', '.join(unknown)}")

    def value(self, key: str) -> object:
        return self.data.get(key)

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise TenantFileError(f"{self.where}: {key} must be a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.text(key)

    def guid(self, key: str) -> str:
        value = self.text(key)
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise TenantFileError(f"{self.where}: {key} '{value}' is not a GUID") from None

    def optional_guid(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.guid(key)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise TenantFileError(f"{self.where}: {key} must be true or false")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TenantFileError(f"{self.where}: {key} must be an integer")
        return value

    def moment(self, key: str) -> datetime:
        value = self.text(key)
        try:
            return parse_graph_datetime(value)
        except ValueError:
            raise TenantFileError(f"{self.where}: {key} '{value}' is not an ISO 8601 date-time") from None

    def optional_moment(self, key: str) -> datetime | None:
        return None if self.data.get(key) is None else self.moment(key)

    def array(self, key: str) -> list[object]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise TenantFileError(f"{self.where}: {key} must be a JSON array")
        return cast(list[object], value)


def _label(data: object, key: str) -> str:
    if isinstance(data, dict):
        value = cast(dict[str, object], data).get(key)
        if isinstance(value, str):
            return f" ({value})"
    return ""


def _parse_user(data: object, index: int) -> TenantUser:
    fields = _Fields(
        data,
        f"users[{index}]{_label(data, 'userPrincipalName')}",
        required={"id", "userPrincipalName", "displayName"},
        optional={
            "mail",
            "userType",
            "accountEnabled",
            "employeeHireDate",
            "managerId",
            "jobTitle",
            "department",
            "authenticationMethods",
        },
    )
    user_id = fields.guid("id")
    upn = fields.text("userPrincipalName")
    if upn.count("@") != 1 or upn.startswith("@") or upn.endswith("@"):
        raise TenantFileError(f"{fields.where}: userPrincipalName must look like name@domain")
    user_type = fields.value("userType") or "Member"
    if user_type not in ("Member", "Guest"):
        raise TenantFileError(f"{fields.where}: userType must be 'Member' or 'Guest'")
    methods = _parse_methods(user_id, fields.array("authenticationMethods"), fields.where)
    return TenantUser(
        id=user_id,
        user_principal_name=upn,
        display_name=fields.text("displayName"),
        mail=fields.optional_text("mail"),
        user_type=cast(UserType, user_type),
        account_enabled=fields.flag("accountEnabled", default=True),
        employee_hire_date=fields.optional_moment("employeeHireDate"),
        manager_id=fields.optional_guid("managerId"),
        job_title=fields.optional_text("jobTitle"),
        department=fields.optional_text("department"),
        authentication_methods=methods,
    )


def _parse_methods(user_id: str, items: list[object], user_where: str) -> tuple[AuthenticationMethod, ...]:
    methods: list[AuthenticationMethod] = []
    for index, item in enumerate(items):
        where = f"{user_where}.authenticationMethods[{index}]"
        fields = _Fields(item, where, required={"type"}, optional={"id"}, allow_extra=True)
        method_type = fields.text("type")
        if method_type == "temporaryAccessPass":
            raise TenantFileError(f"{where}: list passes under temporaryAccessPasses, not as a method")
        if method_type not in AUTHENTICATION_METHOD_ODATA_TYPES:
            known = ", ".join(AUTHENTICATION_METHOD_ODATA_TYPES)
            raise TenantFileError(f"{where}: unknown method type '{method_type}' (known: {known})")
        default_id = (
            PASSWORD_METHOD_ID
            if method_type == "password"
            else str(uuid.uuid5(uuid.UUID(user_id), f"{method_type}/{index}"))
        )
        method_id = fields.optional_guid("id") or default_id
        extra = {key: value for key, value in fields.data.items() if key not in ("type", "id")}
        methods.append(AuthenticationMethod(method_id, method_type, extra))
    ids = [method.id for method in methods]
    if len(set(ids)) != len(ids):
        raise TenantFileError(f"{user_where}: two authentication methods share an id")
    return tuple(methods)


def _parse_group(data: object, index: int) -> TenantGroup:
    fields = _Fields(
        data,
        f"groups[{index}]{_label(data, 'displayName')}",
        required={"id", "displayName"},
        optional={"description", "members", "isAssignableToRole"},
    )
    members: list[str] = []
    for position, member in enumerate(fields.array("members")):
        try:
            members.append(str(uuid.UUID(str(member))))
        except ValueError:
            raise TenantFileError(f"{fields.where}: members[{position}] '{member}' is not a GUID") from None
    return TenantGroup(
        id=fields.guid("id"),
        display_name=fields.text("displayName"),
        description=fields.optional_text("description"),
        member_ids=tuple(dict.fromkeys(members)),
        is_assignable_to_role=fields.flag("isAssignableToRole", default=False),
    )


def _parse_role_definition(data: object, index: int) -> RoleDefinition:
    fields = _Fields(data, f"roleDefinitions[{index}]", required={"id", "displayName"}, optional={"isBuiltIn"})
    return RoleDefinition(
        id=fields.guid("id"),
        display_name=fields.text("displayName"),
        is_built_in=fields.flag("isBuiltIn", default=False),
    )


def _parse_role_assignment(data: object, index: int) -> RoleAssignment:
    fields = _Fields(
        data,
        f"roleAssignments[{index}]",
        required={"principalId", "roleDefinitionId"},
        optional={"id", "directoryScopeId"},
    )
    principal_id = fields.guid("principalId")
    role_definition_id = fields.guid("roleDefinitionId")
    scope = _scope(fields)
    default_id = role_assignment_id(role_definition_id, principal_id)
    if scope != TENANT_SCOPE:
        default_id = f"{default_id}-{scope.rsplit('/', 1)[-1]}"
    return RoleAssignment(fields.optional_text("id") or default_id, principal_id, role_definition_id, scope)


def _parse_role_eligibility(data: object, index: int) -> RoleEligibility:
    fields = _Fields(
        data,
        f"roleEligibilities[{index}]",
        required={"principalId", "roleDefinitionId"},
        optional={"id", "directoryScopeId", "startDateTime", "endDateTime"},
    )
    principal_id = fields.guid("principalId")
    role_definition_id = fields.guid("roleDefinitionId")
    scope = _scope(fields)
    # Graph's eligibility instance ids look like assignment ids with an '-e' suffix.
    default_id = f"{role_assignment_id(role_definition_id, principal_id)}-e"
    if scope != TENANT_SCOPE:
        default_id = f"{default_id}-{scope.rsplit('/', 1)[-1]}"
    return RoleEligibility(
        id=fields.optional_text("id") or default_id,
        principal_id=principal_id,
        role_definition_id=role_definition_id,
        directory_scope_id=scope,
        start=fields.optional_moment("startDateTime"),
        end=fields.optional_moment("endDateTime"),
    )


def _parse_group_eligibility(data: object, index: int) -> GroupEligibility:
    fields = _Fields(
        data,
        f"groupEligibilities[{index}]",
        required={"principalId", "groupId"},
        optional={"accessId", "startDateTime", "endDateTime"},
    )
    access = fields.value("accessId") or "member"
    if access not in ("member", "owner"):
        raise TenantFileError(f"{fields.where}: accessId must be 'member' or 'owner'")
    principal_id = fields.guid("principalId")
    group_id = fields.guid("groupId")
    return GroupEligibility(
        id=f"{group_id}_{access}_{uuid.uuid5(uuid.UUID(principal_id), group_id)}",
        principal_id=principal_id,
        group_id=group_id,
        access_id=cast(GroupAccess, access),
        start=fields.optional_moment("startDateTime"),
        end=fields.optional_moment("endDateTime"),
    )


def _parse_unit(data: object, index: int) -> AdministrativeUnit:
    fields = _Fields(data, f"administrativeUnits[{index}]{_label(data, 'displayName')}", required={"id", "displayName"})
    return AdministrativeUnit(fields.guid("id"), fields.text("displayName"))


def _scope(fields: _Fields) -> str:
    """directoryScopeId: '/' (the tenant) or '/administrativeUnits/<guid>', the guid normalised to lower case."""
    scope = fields.optional_text("directoryScopeId") or TENANT_SCOPE
    if scope.startswith(ADMINISTRATIVE_UNIT_SCOPE_PREFIX):
        try:
            unit_id = uuid.UUID(scope.removeprefix(ADMINISTRATIVE_UNIT_SCOPE_PREFIX))
            return f"{ADMINISTRATIVE_UNIT_SCOPE_PREFIX}{unit_id}"
        except ValueError:
            pass
    if scope != TENANT_SCOPE:
        raise TenantFileError(
            f"{fields.where}: directoryScopeId '{scope}' must be '/' or '/administrativeUnits/<unit guid>'"
        )
    return scope


def _parse_policy(data: object) -> TapPolicy:
    where = "temporaryAccessPassPolicy"
    fields = _Fields(
        data,
        where,
        required={"state"},
        optional={
            "@odata.type",
            "id",
            "defaultLifetimeInMinutes",
            "defaultLength",
            "minimumLifetimeInMinutes",
            "maximumLifetimeInMinutes",
            "isUsableOnce",
            "includeTargets",
            "excludeTargets",
        },
    )
    odata_type = fields.value("@odata.type")
    if odata_type not in (None, "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"):
        raise TenantFileError(f"{where}: unexpected @odata.type '{odata_type}'")
    if fields.value("id") not in (None, "TemporaryAccessPass"):
        raise TenantFileError(f"{where}: id must be 'TemporaryAccessPass'")
    state = fields.text("state")
    if state not in ("enabled", "disabled"):
        raise TenantFileError(f"{where}: state must be 'enabled' or 'disabled'")
    defaults = TapPolicy()
    minimum = fields.integer("minimumLifetimeInMinutes", defaults.minimum_lifetime_in_minutes)
    maximum = fields.integer("maximumLifetimeInMinutes", defaults.maximum_lifetime_in_minutes)
    default = fields.integer("defaultLifetimeInMinutes", defaults.default_lifetime_in_minutes)
    length = fields.integer("defaultLength", defaults.default_length)
    include_items = fields.value("includeTargets")
    include = (
        defaults.include_targets
        if include_items is None
        else _parse_targets(fields.array("includeTargets"), f"{where}.includeTargets")
    )
    return TapPolicy(
        state=cast(PolicyState, state),
        default_lifetime_in_minutes=default,
        default_length=length,
        minimum_lifetime_in_minutes=minimum,
        maximum_lifetime_in_minutes=maximum,
        is_usable_once=fields.flag("isUsableOnce", default=defaults.is_usable_once),
        include_targets=include,
        exclude_targets=_parse_targets(fields.array("excludeTargets"), f"{where}.excludeTargets"),
    )


def _parse_targets(items: list[object], where: str) -> tuple[PolicyTarget, ...]:
    targets: list[PolicyTarget] = []
    for index, item in enumerate(items):
        fields = _Fields(
            item,
            f"{where}[{index}]",
            required={"targetType", "id"},
            optional={"isRegistrationRequired", "@odata.type"},
        )
        target_type = fields.text("targetType")
        if target_type not in ("user", "group"):
            raise TenantFileError(f"{fields.where}: targetType must be 'user' or 'group'")
        target_id = fields.text("id")
        if target_id != ALL_USERS_TARGET_ID:
            target_id = fields.guid("id")
        elif target_type != "group":
            raise TenantFileError(f"{fields.where}: '{ALL_USERS_TARGET_ID}' needs targetType 'group'")
        targets.append(
            PolicyTarget(
                target_type=cast(TargetType, target_type),
                id=target_id,
                is_registration_required=fields.flag("isRegistrationRequired", default=False),
            )
        )
    return tuple(targets)


def _parse_seeded_pass(data: object, index: int) -> SeededPass:
    fields = _Fields(
        data,
        f"temporaryAccessPasses[{index}]",
        required={"userId", "startDateTime", "lifetimeInMinutes"},
        optional={"id", "createdDateTime", "isUsableOnce", "used"},
    )
    user_id = fields.guid("userId")
    lifetime = fields.integer("lifetimeInMinutes")
    if not TAP_ABSOLUTE_MIN_LIFETIME_MINUTES <= lifetime <= TAP_ABSOLUTE_MAX_LIFETIME_MINUTES:
        raise TenantFileError(
            f"{fields.where}: lifetimeInMinutes must be between {TAP_ABSOLUTE_MIN_LIFETIME_MINUTES} "
            f"and {TAP_ABSOLUTE_MAX_LIFETIME_MINUTES}"
        )
    start = fields.moment("startDateTime")
    return SeededPass(
        user_id=user_id,
        id=fields.optional_guid("id") or str(uuid.uuid5(uuid.UUID(user_id), f"seeded-pass/{index}")),
        created=fields.optional_moment("createdDateTime") or start,
        start=start,
        lifetime_in_minutes=lifetime,
        is_usable_once=fields.flag("isUsableOnce", default=False),
        used=fields.flag("used", default=False),
    )
