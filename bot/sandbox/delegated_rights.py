"""Who may create or delete another user's Temporary Access Pass, decided the way Graph and Entra decide it.

The caller is read from the request's bearer token (bot/sandbox/identity.py verifies it):
- **no bearer**: an app-only call. Allowed when the app holds a write permission (`applicationPermissions` of the
  tenant file), except on members of a restricted-management administrative unit, which application permissions
  never reach (Entra: admin-units-restricted-management.md, "Programmability").
- **a user's token** (delegated): it must carry a write scope (`scp`), and the user must hold, *active now*, a role
  that reaches the target (sso-obo.md §5; Entra: privileged-roles-permissions.md, admin-units-assign-roles.md):
  - Privileged Authentication Administrator, tenant-wide: anyone;
  - Authentication Administrator, tenant-wide: non-admins only — no role (active or eligible, by any path) outside
    the short list below, not a member or owner of a role-assignable group;
  - either role scoped to an administrative unit: only that unit's members, and (Authentication Administrator) only
    its non-admins;
  - a member of a restricted-management unit only through a role scoped to such a unit they are in (tenant-wide roles,
    Privileged Authentication Administrator included, are blocked there).
  Active means a direct assignment or one to a role-assignable group the user is a member of, inside its window if it
  has one (PIM activations are such windows); an eligibility that is not activated counts for nothing.

Refusals use Graph's shapes: 401 `InvalidAuthenticationToken` for a token Graph would not accept, 403 `accessDenied`
"Request Authorization failed" for a caller without the rights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bot.sandbox.active_roles import state_assignments
from bot.sandbox.errors import GraphError
from bot.sandbox.routing import GraphRequest
from bot.sandbox.state import SandboxState
from bot.sandbox.tenant_records import ADMINISTRATIVE_UNIT_SCOPE_PREFIX, TENANT_SCOPE, RoleAssignment, TenantUser
from bot.sandbox.tokens import WRITE_SCOPES, InvalidToken, UserClaims

PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"
AUTHENTICATION_ADMINISTRATOR = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
PASS_WRITER_ROLES = frozenset({PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, AUTHENTICATION_ADMINISTRATOR})

# The only roles a target of an Authentication Administrator may hold (Entra: includes/authentication-administrator.md,
# "Who can perform sensitive actions"); template ids from Entra's permissions-reference.md.
ROLES_AN_AUTHENTICATION_ADMINISTRATOR_MAY_TARGET = frozenset(
    {
        AUTHENTICATION_ADMINISTRATOR,
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",  # Directory Readers
        "95e79109-95c0-4d8e-aee3-d01accf2d47b",  # Guest Inviter
        "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b",  # Message Center Reader
        "966707d0-3269-4727-9be2-8c3a10f19b9d",  # Password Administrator
        "4a5d8f65-41da-4de4-8968-e035b65339cf",  # Reports Reader
        "27460883-1df1-4691-b032-3b79643e5e63",  # User Experience Success Manager
        "75934031-6c7e-415a-99d7-48dbd49e875e",  # Usage Summary Reports Reader
    }
)

ACCESS_DENIED_CODE = "accessDenied"
ACCESS_DENIED_MESSAGE = "Request Authorization failed"
INVALID_TOKEN_CODE = "InvalidAuthenticationToken"
# Graph's challenge on a 401 (the resource is Graph's own app id).
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
# A token another tenant issued, or for a user this tenant does not have: Graph's exact wording is unconfirmed.
FOREIGN_TOKEN_MESSAGE = "Access token validation failure. Invalid issuer."
UNKNOWN_USER_MESSAGE = "Access token validation failure. The user in the token does not exist in this tenant."


class GraphCallers(Protocol):
    """What the sandbox's identity (bot/sandbox/identity.py) offers this module."""

    def graph_caller(self, authorization_header: str | None) -> UserClaims | None: ...


def access_denied() -> GraphError:
    return GraphError(403, ACCESS_DENIED_CODE, ACCESS_DENIED_MESSAGE)


def invalid_token(message: str) -> GraphError:
    return GraphError(401, INVALID_TOKEN_CODE, message, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


def authenticate(state: SandboxState, request: GraphRequest) -> UserClaims | None:
    """The user behind the request's bearer token, None for an app-only call (no bearer); 401 for any token Graph
    would not accept (bad, expired, lapsed, another tenant's, a user who does not exist)."""
    identity: GraphCallers = state.identity
    try:
        claims = identity.graph_caller(_authorization(request.headers))
    except InvalidToken as error:
        raise invalid_token(str(error)) from None
    if claims is None:
        return None
    if claims.tenant_id != state.tenant.tenant_id.lower():
        raise invalid_token(FOREIGN_TOKEN_MESSAGE)
    if state.tenant.user(claims.object_id) is None:
        raise invalid_token(UNKNOWN_USER_MESSAGE)
    return claims


def check_pass_write(state: SandboxState, claims: UserClaims | None, target: TenantUser) -> None:
    """Raises 403 `accessDenied` unless the caller may create or delete `target`'s pass."""
    restricted = any(unit.is_member_management_restricted for unit in state.tenant.administrative_units_of(target.id))
    if claims is None:
        if restricted or not WRITE_SCOPES & set(state.tenant.application_permissions):
            raise access_denied()
        return
    if not claims.has_any_scope(WRITE_SCOPES):
        raise access_denied()
    if not any(_reaches(state, grant, target, restricted) for grant in caller_writer_roles(state, claims.object_id)):
        raise access_denied()


def caller_writer_roles(state: SandboxState, user_id: str) -> tuple[RoleAssignment, ...]:
    """The user's assignments of a pass-writing role active now: their own, and those of the role-assignable groups
    they are a member of."""
    groups = [
        group_id
        for group_id in state.tenant.transitive_group_ids(user_id)
        if (group := state.tenant.group(group_id)) is not None and group.is_assignable_to_role
    ]
    return tuple(
        assignment
        for assignment in state_assignments(state, (user_id, *groups))
        if assignment.role_definition_id in PASS_WRITER_ROLES
    )


def is_admin_for_authentication_administrator(state: SandboxState, user: TenantUser) -> bool:
    """Whether an Authentication Administrator is kept away from the user: a role outside the short list (active or
    eligible, directly, through a role-assignable group, or through an eligible membership or ownership of one), or
    membership or ownership of a role-assignable group."""
    tenant = state.tenant
    now = state.clock.now()
    assignable = {group.id for group in tenant.groups if group.is_assignable_to_role}
    member_of = tenant.transitive_group_ids(user.id) & assignable
    owner_of = {group.id for group in tenant.owned_groups(user.id)} & assignable
    eligible_for = {item.group_id for item in tenant.group_eligibilities_where(now, principal_id=user.id)} & assignable
    if member_of or owner_of or eligible_for:
        return True
    principals = (user.id,)
    roles = {assignment.role_definition_id for assignment in state_assignments(state, principals)}
    roles |= {item.role_definition_id for item in tenant.role_eligibilities_of(user.id, now)}
    return bool(roles - ROLES_AN_AUTHENTICATION_ADMINISTRATOR_MAY_TARGET)


def _reaches(state: SandboxState, grant: RoleAssignment, target: TenantUser, restricted: bool) -> bool:
    if grant.directory_scope_id == TENANT_SCOPE:
        if restricted:
            return False
    else:
        unit = state.tenant.administrative_unit(grant.directory_scope_id.removeprefix(ADMINISTRATIVE_UNIT_SCOPE_PREFIX))
        if unit is None or target.id not in unit.member_ids:
            return False
        if restricted and not unit.is_member_management_restricted:
            return False
    if grant.role_definition_id == PRIVILEGED_AUTHENTICATION_ADMINISTRATOR:
        return True
    return not is_admin_for_authentication_administrator(state, target)


def _authorization(headers: Mapping[str, str]) -> str | None:
    return next((value for name, value in headers.items() if name.lower() == "authorization"), None)
