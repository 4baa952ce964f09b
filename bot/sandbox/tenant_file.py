"""The loader for tenant files (format: docs/sandbox.md): parses and validates the JSON into a Tenant."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import cast

from bot.sandbox.directory import Tenant
from bot.sandbox.tenant_fields import Fields, label
from bot.sandbox.tenant_records import (
    ADMINISTRATIVE_UNIT_SCOPE_PREFIX,
    ALL_USERS_TARGET_ID,
    AUTHENTICATION_METHOD_ODATA_TYPES,
    DEFAULT_APPLICATION_PERMISSIONS,
    PASSWORD_METHOD_ID,
    TAP_ABSOLUTE_MAX_LIFETIME_MINUTES,
    TAP_ABSOLUTE_MIN_LIFETIME_MINUTES,
    TENANT_SCOPE,
    AdministrativeUnit,
    AuthenticationMethod,
    GroupAccess,
    GroupEligibility,
    PolicyState,
    PolicyTarget,
    RoleAssignment,
    RoleDefinition,
    RoleEligibility,
    SeededPass,
    TapPolicy,
    TargetType,
    TenantFileError,
    TenantGroup,
    TenantUser,
    UserType,
    role_assignment_id,
)


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
    root = Fields(
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
            "applicationPermissions",
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
        application_permissions=_parse_application_permissions(root),
    )


def _parse_application_permissions(root: Fields) -> tuple[str, ...]:
    """The Graph application permissions (app roles) the sandbox's app holds; absent = the default set."""
    if root.value("applicationPermissions") is None:
        return DEFAULT_APPLICATION_PERMISSIONS
    found: list[str] = []
    for position, item in enumerate(root.array("applicationPermissions")):
        if not isinstance(item, str) or not item.strip() or item != item.strip() or " " in item:
            raise TenantFileError(
                f"applicationPermissions[{position}]: expected a permission name like 'User.Read.All'"
            )
        found.append(item)
    return tuple(dict.fromkeys(found))


def _parse_user(data: object, index: int) -> TenantUser:
    fields = Fields(
        data,
        f"users[{index}]{label(data, 'userPrincipalName')}",
        required={"id", "userPrincipalName", "displayName"},
        optional={
            "mail",
            "userType",
            "accountEnabled",
            "employeeHireDate",
            "managerId",
            "jobTitle",
            "department",
            "givenName",
            "surname",
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
        given_name=fields.optional_text("givenName"),
        surname=fields.optional_text("surname"),
        authentication_methods=methods,
    )


def _parse_methods(user_id: str, items: list[object], user_where: str) -> tuple[AuthenticationMethod, ...]:
    methods: list[AuthenticationMethod] = []
    for index, item in enumerate(items):
        where = f"{user_where}.authenticationMethods[{index}]"
        fields = Fields(item, where, required={"type"}, optional={"id"}, allow_extra=True)
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
    fields = Fields(
        data,
        f"groups[{index}]{label(data, 'displayName')}",
        required={"id", "displayName"},
        optional={"description", "members", "owners", "isAssignableToRole"},
    )
    ids: dict[str, list[str]] = {"members": [], "owners": []}
    for key, found in ids.items():
        for position, member in enumerate(fields.array(key)):
            try:
                found.append(str(uuid.UUID(str(member))))
            except ValueError:
                raise TenantFileError(f"{fields.where}: {key}[{position}] '{member}' is not a GUID") from None
    return TenantGroup(
        id=fields.guid("id"),
        display_name=fields.text("displayName"),
        description=fields.optional_text("description"),
        member_ids=tuple(dict.fromkeys(ids["members"])),
        owner_ids=tuple(dict.fromkeys(ids["owners"])),
        is_assignable_to_role=fields.flag("isAssignableToRole", default=False),
    )


def _parse_role_definition(data: object, index: int) -> RoleDefinition:
    fields = Fields(data, f"roleDefinitions[{index}]", required={"id", "displayName"}, optional={"isBuiltIn"})
    return RoleDefinition(
        id=fields.guid("id"),
        display_name=fields.text("displayName"),
        is_built_in=fields.flag("isBuiltIn", default=False),
    )


def _parse_role_assignment(data: object, index: int) -> RoleAssignment:
    fields = Fields(
        data,
        f"roleAssignments[{index}]",
        required={"principalId", "roleDefinitionId"},
        optional={"id", "directoryScopeId", "startDateTime", "endDateTime"},
    )
    principal_id = fields.guid("principalId")
    role_definition_id = fields.guid("roleDefinitionId")
    scope = _scope(fields)
    default_id = role_assignment_id(role_definition_id, principal_id)
    if scope != TENANT_SCOPE:
        default_id = f"{default_id}-{scope.rsplit('/', 1)[-1]}"
    start, end = _window(fields)
    return RoleAssignment(
        fields.optional_text("id") or default_id, principal_id, role_definition_id, scope, start=start, end=end
    )


def _window(fields: Fields) -> tuple[datetime | None, datetime | None]:
    start, end = fields.optional_moment("startDateTime"), fields.optional_moment("endDateTime")
    if start is not None and end is not None and end <= start:
        raise TenantFileError(f"{fields.where}: endDateTime must be after startDateTime")
    return start, end


def _parse_role_eligibility(data: object, index: int) -> RoleEligibility:
    fields = Fields(
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
    start, end = _window(fields)
    return RoleEligibility(
        id=fields.optional_text("id") or default_id,
        principal_id=principal_id,
        role_definition_id=role_definition_id,
        directory_scope_id=scope,
        start=start,
        end=end,
    )


def _parse_group_eligibility(data: object, index: int) -> GroupEligibility:
    fields = Fields(
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
    fields = Fields(
        data,
        f"administrativeUnits[{index}]{label(data, 'displayName')}",
        required={"id", "displayName"},
        optional={"description", "members", "isMemberManagementRestricted"},
    )
    members: list[str] = []
    for position, member in enumerate(fields.array("members")):
        try:
            members.append(str(uuid.UUID(str(member))))
        except ValueError:
            raise TenantFileError(f"{fields.where}: members[{position}] '{member}' is not a GUID") from None
    return AdministrativeUnit(
        fields.guid("id"),
        fields.text("displayName"),
        description=fields.optional_text("description"),
        member_ids=tuple(dict.fromkeys(members)),
        is_member_management_restricted=fields.flag("isMemberManagementRestricted", default=False),
    )


def _scope(fields: Fields) -> str:
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
    fields = Fields(
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
        fields = Fields(
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
    fields = Fields(
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
