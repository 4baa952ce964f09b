"""The in-memory sandbox tenant: a cross-checked directory of the records, and the queries the emulator asks it."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.sandbox.tenant_records import (
    ADMINISTRATIVE_UNIT_SCOPE_PREFIX,
    ALL_USERS_TARGET_ID,
    BUILT_IN_ROLE_DEFINITIONS,
    DEFAULT_APPLICATION_PERMISSIONS,
    TENANT_SCOPE,
    AdministrativeUnit,
    GroupEligibility,
    PolicyTarget,
    RoleAssignment,
    RoleDefinition,
    RoleEligibility,
    SeededPass,
    TapPolicy,
    TenantFileError,
    TenantGroup,
    TenantUser,
)


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
    # The Graph application permissions of the sandbox's app: an app-only write needs one that allows it.
    application_permissions: tuple[str, ...] = DEFAULT_APPLICATION_PERMISSIONS

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

    def transitive_user_members(self, group_id: str) -> tuple[TenantUser, ...]:
        """The users in the group directly or through nested groups, in the tenant's order (Graph's
        `/groups/{id}/transitiveMembers/microsoft.graph.user`)."""
        wanted = group_id.lower()
        return tuple(user for user in self.users if wanted in self.transitive_group_ids(user.id))

    def owned_groups(self, user_id: str) -> tuple[TenantGroup, ...]:
        """The groups the user owns (directly: ownership is not inherited), in the tenant's order."""
        return tuple(group for group in self.groups if user_id.lower() in group.owner_ids)

    def group_owners(self, group_id: str) -> tuple[TenantUser, ...]:
        """The group's owners, in the tenant's order (Graph's `/groups/{id}/owners`; users only in this sandbox)."""
        group = self.group(group_id)
        return tuple(user for user in self.users if group is not None and user.id in group.owner_ids)

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

    def administrative_units_of(self, user_id: str) -> tuple[AdministrativeUnit, ...]:
        """The units the user is a member of, in the tenant's order."""
        return tuple(unit for unit in self.administrative_units if user_id.lower() in unit.member_ids)

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
            for owner_id in group.owner_ids:
                if owner_id not in self._users_by_id:
                    raise TenantFileError(f"{where}: owner '{owner_id}' is not a user in this tenant")
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
        for index, unit in enumerate(self.administrative_units):
            for member_id in unit.member_ids:
                if member_id not in self._users_by_id:
                    raise TenantFileError(
                        f"administrativeUnits[{index}] ({unit.display_name}): member '{member_id}' is not a user "
                        "in this tenant (the sandbox's units hold users only)"
                    )
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
