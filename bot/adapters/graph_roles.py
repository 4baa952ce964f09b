"""Which directory roles a user holds or could activate, read from Graph by every path (GraphGateway's part)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from msgraph.generated.identity_governance.privileged_access.group.eligibility_schedule_instances.eligibility_schedule_instances_request_builder import (  # noqa: E501
    EligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_eligibility_schedule_instances.role_eligibility_schedule_instances_request_builder import (  # noqa: E501
    RoleEligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.users.item.transitive_member_of.graph_group.graph_group_request_builder import (
    GraphGroupRequestBuilder,
)

from bot.adapters.graph_calls import GraphCalls
from bot.adapters.graph_json import (
    TENANT_SCOPE,
    GroupEligibility,
    RoleGrant,
    _odata_literal,
    _role_label,
    _role_name,
    _values,
)

# `principalId in (...)` on roleAssignments: at most this many ids per request (Graph's usual limit for `in`).
IN_FILTER_LIMIT = 15


class RoleReads(GraphCalls):
    """The role reads of GraphGateway: directory roles, active and eligible, direct or through groups."""

    async def directory_roles(self, user_id: str) -> tuple[str, ...]:
        """Every directory role the user holds or could activate, by any path, each saying how.

        A role can be assigned to the user or to a role-assignable group the user is in (or may join at will
        through PIM for Groups), at the tenant or an administrative unit, active or eligible in PIM. First
        round, concurrently: the user's role-assignable groups, the user's own assignments and eligibilities,
        and the user's PIM for Groups eligibilities; second round, concurrently: those groups' assignments
        (`principalId in`, 15 at a time) and eligibilities (one request per group: `in` is not supported there).
        """
        member_of, own_active, own_eligible, group_eligibilities = await asyncio.gather(
            self.role_assignable_groups(user_id),
            self.active_role_grants([user_id]),
            self.eligible_role_grants(user_id),
            self.group_eligibilities(user_id),
        )
        via: dict[str, str] = {}  # group id -> how the user comes by its roles
        for eligibility in group_eligibilities:
            via[eligibility.group_id] = f"through eligible {eligibility.access}ship of group {eligibility.group_name}"
        for group_id, group_name in member_of.items():
            via[group_id] = f"through group {group_name}"
        group_ids = sorted(via)
        chunks = [group_ids[start : start + IN_FILTER_LIMIT] for start in range(0, len(group_ids), IN_FILTER_LIMIT)]
        rounds = await asyncio.gather(
            *(self.active_role_grants(chunk) for chunk in chunks),
            *(self.eligible_role_grants(group_id) for group_id in group_ids),
        )
        grants = [*own_active, *own_eligible, *(grant for found in rounds for grant in found)]
        return tuple(sorted({_role_label(grant, via.get(grant.principal_id)) for grant in grants}))

    async def role_assignable_groups(self, user_id: str) -> dict[str, str]:
        """The role-assignable groups the user is a (transitive) member of: id → display name.

        Filtering memberships is an advanced query: Graph wants `ConsistencyLevel: eventual` and `$count=true`.
        """
        query = GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
            filter="isAssignableToRole eq true", count=True, select=["id", "displayName"]
        )
        pages = await self._read_pages(
            "read the user's role-assignable groups",
            self._user(user_id).transitive_member_of.graph_group,
            query,
            headers={"ConsistencyLevel": "eventual"},
        )
        groups = [group for page in pages for group in _values(page) if isinstance(group, dict) and group.get("id")]
        return {str(group["id"]).lower(): str(group.get("displayName") or group["id"]) for group in groups}

    async def active_role_grants(self, principal_ids: Sequence[str]) -> list[RoleGrant]:
        """Active role assignments (permanent or activated in PIM) of these principals themselves, at any scope."""
        quoted = ", ".join(f"'{_odata_literal(principal_id)}'" for principal_id in principal_ids)
        query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"principalId in ({quoted})" if len(principal_ids) > 1 else f"principalId eq {quoted}",
            expand=["roleDefinition"],
        )
        pages = await self._read_pages(
            "read directory role assignments", self._client.role_management.directory.role_assignments, query
        )
        return [
            RoleGrant(
                principal_id=str(assignment.get("principalId") or "").lower(),
                role_name=_role_name(assignment.get("roleDefinition")),
                directory_scope_id=str(assignment.get("directoryScopeId") or TENANT_SCOPE),
            )
            for page in pages
            for assignment in _values(page)
        ]

    async def eligible_role_grants(self, principal_id: str) -> list[RoleGrant]:
        """The principal's PIM eligibilities in force now (none in a tenant without PIM licences)."""
        query = RoleEligibilityScheduleInstancesRequestBuilder.RoleEligibilityScheduleInstancesRequestBuilderGetQueryParameters(  # noqa: E501
            filter=f"principalId eq '{_odata_literal(principal_id)}'", expand=["roleDefinition"]
        )
        pages = await self._read_pages(
            "read eligible directory roles",
            self._client.role_management.directory.role_eligibility_schedule_instances,
            query,
            pim=True,
        )
        return [
            RoleGrant(
                principal_id=str(instance.get("principalId") or "").lower(),
                role_name=_role_name(instance.get("roleDefinition")),
                directory_scope_id=str(instance.get("directoryScopeId") or TENANT_SCOPE),
                eligible=True,
            )
            for page in pages
            for instance in _values(page)
        ]

    async def group_eligibilities(self, user_id: str) -> list[GroupEligibility]:
        """PIM for Groups: groups whose membership or ownership the user may activate at will."""
        query = EligibilityScheduleInstancesRequestBuilder.EligibilityScheduleInstancesRequestBuilderGetQueryParameters(
            filter=f"principalId eq '{_odata_literal(user_id)}'", expand=["group"]
        )
        pages = await self._read_pages(
            "read eligible group memberships",
            self._client.identity_governance.privileged_access.group.eligibility_schedule_instances,
            query,
            pim=True,
        )
        found: list[GroupEligibility] = []
        for page in pages:
            for instance in _values(page):
                group_id = instance.get("groupId")
                if not group_id:
                    continue
                group = instance.get("group")
                name = group.get("displayName") if isinstance(group, dict) else None
                access = str(instance.get("accessId") or "member")
                found.append(GroupEligibility(str(group_id).lower(), str(name or group_id), access))
        return found
