"""Which role assignments are in force now: the tenant file's (inside their window, if they have one) and the PIM
activations made while the sandbox runs (an eligible role becomes an active, time-bound assignment)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.sandbox.directory import Tenant
from bot.sandbox.tenant_records import RoleAssignment, RoleEligibility, role_assignment_id

if TYPE_CHECKING:
    from bot.sandbox.state import SandboxState

# PIM's longest activation is 24 hours (a role setting, 8 by default); the sandbox takes any length up to that.
MAX_ACTIVATION_MINUTES = 24 * 60


class ActivationRefused(ValueError):
    """The activation cannot be made; the message says why in a sentence."""


class RoleActivations:
    """PIM activations made through the control plane; they vanish with a reset, as the tenant file has none."""

    def __init__(self) -> None:
        self._items: list[RoleAssignment] = []

    def all(self) -> tuple[RoleAssignment, ...]:
        return tuple(self._items)

    def clear(self) -> None:
        self._items.clear()

    def activate(
        self,
        tenant: Tenant,
        *,
        principal_id: str,
        role_definition_id: str,
        directory_scope_id: str | None,
        minutes: int,
        now: datetime,
    ) -> RoleAssignment:
        """Activates the principal's eligibility for the role for `minutes` (never past the eligibility's end)."""
        if not 1 <= minutes <= MAX_ACTIVATION_MINUTES:
            raise ActivationRefused(f"minutes must be between 1 and {MAX_ACTIVATION_MINUTES}; got {minutes}.")
        principal_id, role_definition_id = principal_id.lower(), role_definition_id.lower()
        eligible = [
            item
            for item in tenant.role_eligibilities_of(principal_id, now)
            if item.role_definition_id == role_definition_id
            and (directory_scope_id is None or item.directory_scope_id == directory_scope_id)
        ]
        if not eligible:
            raise ActivationRefused(_not_eligible(tenant, principal_id, role_definition_id, directory_scope_id))
        if len(eligible) > 1:
            scopes = ", ".join(item.directory_scope_id for item in eligible)
            raise ActivationRefused(
                f"The principal is eligible for this role at several scopes ({scopes}): send directoryScopeId."
            )
        [eligibility] = eligible
        in_force = assignments_in_force(tenant, self, now, principal_ids=(principal_id,))
        if any(_same_grant(assignment, eligibility) for assignment in in_force):
            raise ActivationRefused(
                "The role assignment already exists: the role is already active for this principal."
            )
        end = now + timedelta(minutes=minutes)
        if eligibility.end is not None and eligibility.end < end:
            end = eligibility.end
        base = role_assignment_id(role_definition_id, principal_id)
        activation = RoleAssignment(
            id=f"{base}-pim{len(self._items) + 1}",
            principal_id=principal_id,
            role_definition_id=role_definition_id,
            directory_scope_id=eligibility.directory_scope_id,
            start=now,
            end=end,
            activated=True,
        )
        self._items.append(activation)
        return activation


def assignments_in_force(
    tenant: Tenant, activations: RoleActivations, now: datetime, *, principal_ids: Collection[str] | None = None
) -> tuple[RoleAssignment, ...]:
    """Active assignments at `now` (tenant file first, then activations), of the given principals or of everyone."""
    wanted = None if principal_ids is None else {principal_id.lower() for principal_id in principal_ids}
    return tuple(
        assignment
        for assignment in (*tenant.role_assignments, *activations.all())
        if assignment.is_current(now) and (wanted is None or assignment.principal_id in wanted)
    )


def state_assignments(state: SandboxState, principal_ids: Collection[str] | None = None) -> tuple[RoleAssignment, ...]:
    return assignments_in_force(state.tenant, state.role_activations, state.clock.now(), principal_ids=principal_ids)


def _same_grant(assignment: RoleAssignment, eligibility: RoleEligibility) -> bool:
    return (
        assignment.role_definition_id == eligibility.role_definition_id
        and assignment.directory_scope_id == eligibility.directory_scope_id
    )


def _not_eligible(tenant: Tenant, principal_id: str, role_definition_id: str, scope: str | None) -> str:
    definition = tenant.role_definition(role_definition_id)
    role = definition.display_name if definition is not None else role_definition_id
    where = "" if scope is None else f" at scope {scope}"
    return f"The principal {principal_id} is not eligible for {role}{where} now: there is nothing to activate."
