"""Renders sandbox objects as the camelCase JSON Graph v1.0 sends."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from bot.sandbox.clock import format_graph_datetime
from bot.sandbox.errors import bad_request
from bot.sandbox.passes import IssuedPass
from bot.sandbox.tenant import (
    AdministrativeUnit,
    AuthenticationMethod,
    GroupEligibility,
    RoleAssignment,
    RoleDefinition,
    RoleEligibility,
    TapPolicy,
    Tenant,
    TenantGroup,
    TenantUser,
)

USER_ODATA_TYPE = "#microsoft.graph.user"
GROUP_ODATA_TYPE = "#microsoft.graph.group"
DIRECTORY_ROLE_ODATA_TYPE = "#microsoft.graph.directoryRole"
ADMINISTRATIVE_UNIT_ODATA_TYPE = "#microsoft.graph.administrativeUnit"
TAP_METHOD_ODATA_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
TAP_POLICY_ODATA_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"

# What Graph returns for a user when no $select is given. accountEnabled, userType and employeeHireDate
# are NOT in it: a caller that needs them must $select them, exactly as against real Graph.
USER_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)


def user_properties(user: TenantUser) -> dict[str, object]:
    """Every user property the sandbox knows, under its Graph name."""
    return {
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "surname": user.surname,
        "jobTitle": user.job_title,
        "department": user.department,
        "mail": user.mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "userPrincipalName": user.user_principal_name,
        "userType": user.user_type,
        "accountEnabled": user.account_enabled,
        "employeeHireDate": format_graph_datetime(user.employee_hire_date) if user.employee_hire_date else None,
    }


def group_properties(group: TenantGroup) -> dict[str, object]:
    return {
        "id": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "groupTypes": [],
        "mail": None,
        "mailEnabled": False,
        "securityEnabled": True,
        "isAssignableToRole": group.is_assignable_to_role,
    }


def select_properties(
    properties: Mapping[str, object],
    select: str | None,
    type_name: str,
    default: Iterable[str] | None = None,
) -> dict[str, object]:
    """Applies $select (property names compared case-insensitively, unknown ones refused like Graph)."""
    if select is None:
        names = list(default) if default is not None else list(properties)
        return {name: properties[name] for name in names}
    canonical = {name.lower(): name for name in properties}
    selected: dict[str, object] = {}
    for requested in (part.strip() for part in select.split(",")):
        name = canonical.get(requested.lower())
        if name is None:
            raise bad_request(
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{requested}' on type '{type_name}'."
            )
        selected[name] = properties[name]
    return selected


def user_json(user: TenantUser, select: str | None, with_odata_type: bool = False) -> dict[str, object]:
    rendered = select_properties(user_properties(user), select, "microsoft.graph.user", USER_DEFAULT_PROPERTIES)
    return {"@odata.type": USER_ODATA_TYPE, **rendered} if with_odata_type else rendered


def group_json(group: TenantGroup, select: str | None, with_odata_type: bool = False) -> dict[str, object]:
    rendered = select_properties(group_properties(group), select, "microsoft.graph.group")
    return {"@odata.type": GROUP_ODATA_TYPE, **rendered} if with_odata_type else rendered


def directory_role_json(tenant: Tenant, definition: RoleDefinition) -> dict[str, object]:
    """The activated directoryRole object that shows up in memberOf for a role holder."""
    return {
        "@odata.type": DIRECTORY_ROLE_ODATA_TYPE,
        "id": str(uuid.uuid5(uuid.UUID(tenant.tenant_id), f"directoryRole/{definition.id}")),
        "displayName": definition.display_name,
        "description": None,
        "roleTemplateId": definition.id,
    }


def role_definition_json(definition: RoleDefinition) -> dict[str, object]:
    return {
        "id": definition.id,
        "displayName": definition.display_name,
        "description": None,
        "isBuiltIn": definition.is_built_in,
        "isEnabled": True,
        "templateId": definition.id,
    }


def role_assignment_json(assignment: RoleAssignment, role_definition: RoleDefinition | None) -> dict[str, object]:
    rendered: dict[str, object] = {
        "id": assignment.id,
        "principalId": assignment.principal_id,
        "roleDefinitionId": assignment.role_definition_id,
        "directoryScopeId": assignment.directory_scope_id,
    }
    if role_definition is not None:
        rendered["roleDefinition"] = role_definition_json(role_definition)
    return rendered


def role_eligibility_instance_json(
    eligibility: RoleEligibility, role_definition: RoleDefinition | None, loaded_at: datetime
) -> dict[str, object]:
    """A unifiedRoleEligibilityScheduleInstance: the eligibility as it stands now."""
    rendered: dict[str, object] = {
        "id": eligibility.id,
        "principalId": eligibility.principal_id,
        "roleDefinitionId": eligibility.role_definition_id,
        "directoryScopeId": eligibility.directory_scope_id,
        "appScopeId": None,
        "startDateTime": format_graph_datetime(eligibility.start or loaded_at),
        "endDateTime": format_graph_datetime(eligibility.end) if eligibility.end else None,
        "memberType": "Direct",
        "roleEligibilityScheduleId": str(uuid.uuid5(uuid.NAMESPACE_URL, eligibility.id)),
    }
    if role_definition is not None:
        rendered["roleDefinition"] = role_definition_json(role_definition)
    return rendered


def role_eligibility_schedule_json(
    eligibility: RoleEligibility, role_definition: RoleDefinition | None, loaded_at: datetime
) -> dict[str, object]:
    """A unifiedRoleEligibilitySchedule: the eligibility's schedule (start, and when or whether it expires)."""
    start = format_graph_datetime(eligibility.start or loaded_at)
    expiration: dict[str, object] = (
        {"type": "afterDateTime", "endDateTime": format_graph_datetime(eligibility.end), "duration": None}
        if eligibility.end
        else {"type": "noExpiration", "endDateTime": None, "duration": None}
    )
    rendered: dict[str, object] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, eligibility.id)),
        "principalId": eligibility.principal_id,
        "roleDefinitionId": eligibility.role_definition_id,
        "directoryScopeId": eligibility.directory_scope_id,
        "appScopeId": None,
        "createdUsing": str(uuid.uuid5(uuid.NAMESPACE_URL, eligibility.id)),
        "createdDateTime": start,
        "modifiedDateTime": None,
        "status": "Provisioned",
        "memberType": "Direct",
        "scheduleInfo": {"startDateTime": start, "recurrence": None, "expiration": expiration},
    }
    if role_definition is not None:
        rendered["roleDefinition"] = role_definition_json(role_definition)
    return rendered


def administrative_unit_json(
    unit: AdministrativeUnit, select: str | None, with_odata_type: bool = False
) -> dict[str, object]:
    properties: dict[str, object] = {
        "id": unit.id,
        "deletedDateTime": None,
        "displayName": unit.display_name,
        "description": unit.description,
        "isMemberManagementRestricted": unit.is_member_management_restricted,
        "membershipRule": None,
        "membershipRuleProcessingState": None,
        "membershipType": None,
        "visibility": None,
    }
    rendered = select_properties(properties, select, "microsoft.graph.administrativeUnit")
    return {"@odata.type": ADMINISTRATIVE_UNIT_ODATA_TYPE, **rendered} if with_odata_type else rendered


def group_eligibility_instance_json(
    eligibility: GroupEligibility, group: TenantGroup | None, loaded_at: datetime
) -> dict[str, object]:
    """A privilegedAccessGroupEligibilityScheduleInstance (PIM for Groups)."""
    rendered: dict[str, object] = {
        "id": eligibility.id,
        "startDateTime": format_graph_datetime(eligibility.start or loaded_at),
        "endDateTime": format_graph_datetime(eligibility.end) if eligibility.end else None,
        "accessId": eligibility.access_id,
        "principalId": eligibility.principal_id,
        "groupId": eligibility.group_id,
        "memberType": "direct",
        "eligibilityScheduleId": str(uuid.uuid5(uuid.NAMESPACE_URL, eligibility.id)),
    }
    if group is not None:
        rendered["group"] = group_properties(group)
    return rendered


def authentication_method_json(method: AuthenticationMethod) -> dict[str, object]:
    return {"@odata.type": method.odata_type, "id": method.id, **method.properties}


def pass_json(
    issued: IssuedPass, usability_reason: str, secret: str | None = None, with_odata_type: bool = False
) -> dict[str, object]:
    rendered: dict[str, object] = {
        "id": issued.id,
        "temporaryAccessPass": secret,
        "createdDateTime": format_graph_datetime(issued.created),
        "startDateTime": format_graph_datetime(issued.start),
        "lifetimeInMinutes": issued.lifetime_in_minutes,
        "isUsableOnce": issued.is_usable_once,
        "isUsable": usability_reason == "EnabledByPolicy",
        "methodUsabilityReason": usability_reason,
    }
    return {"@odata.type": TAP_METHOD_ODATA_TYPE, **rendered} if with_odata_type else rendered


def tap_policy_json(policy: TapPolicy) -> dict[str, object]:
    return {
        "@odata.type": TAP_POLICY_ODATA_TYPE,
        "id": "TemporaryAccessPass",
        "state": policy.state,
        "defaultLifetimeInMinutes": policy.default_lifetime_in_minutes,
        "defaultLength": policy.default_length,
        "minimumLifetimeInMinutes": policy.minimum_lifetime_in_minutes,
        "maximumLifetimeInMinutes": policy.maximum_lifetime_in_minutes,
        "isUsableOnce": policy.is_usable_once,
        "includeTargets": [
            {
                "targetType": target.target_type,
                "id": target.id,
                "isRegistrationRequired": target.is_registration_required,
            }
            for target in policy.include_targets
        ],
        "excludeTargets": [{"targetType": target.target_type, "id": target.id} for target in policy.exclude_targets],
    }
