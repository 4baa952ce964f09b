"""Which directory roles a user holds or could activate, read from Graph by every path, for one user (a command) or
tenant-wide with the other reads of a bulk job's snapshot: users many at a time, a group's members (GraphGateway's
part)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.owners.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder as OwnerUserRequestBuilder,
)
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.identity_governance.privileged_access.group.eligibility_schedule_instances.eligibility_schedule_instances_request_builder import (  # noqa: E501
    EligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_eligibility_schedule_instances.role_eligibility_schedule_instances_request_builder import (  # noqa: E501
    RoleEligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.users.item.member_of.graph_administrative_unit.graph_administrative_unit_request_builder import (
    GraphAdministrativeUnitRequestBuilder,
)
from msgraph.generated.users.item.owned_objects.graph_group.graph_group_request_builder import (
    GraphGroupRequestBuilder as OwnedGroupRequestBuilder,
)
from msgraph.generated.users.item.transitive_member_of.graph_group.graph_group_request_builder import (
    GraphGroupRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from bot.adapters.graph_batch import BATCH_LIMIT, BatchItem, ItemAnswer, SendAlone, send_batch, single_page
from bot.adapters.graph_calls import MAX_PAGES, GraphCalls, TooManyPages, _Call, _Pager
from bot.adapters.graph_json import (
    TENANT_SCOPE,
    GroupEligibility,
    RoleGrant,
    _directory_user,
    _odata_literal,
    _role_label,
    _role_name,
    _values,
)
from bot.domain.entra_rights import HeldRole, PassWrite, RefusalFacts
from bot.domain.errors import TapError
from bot.domain.model import DirectoryUser

# `principalId in (...)` on roleAssignments, `id in (...)` on users: at most this many values per request. Graph
# limits `in` to 15 values by default (Microsoft Graph known issues, "Some limitations apply to query parameters").
IN_FILTER_LIMIT = 15
# A group whose members fill more pages of 999 than this is checked user by user instead of read whole.
MEMBER_PAGES = 20
# How an active owner of a role-holding group comes by its roles: an owner can add themselves as a member.
_OWNERSHIP = "through ownership of group {group}"
_ACTIVE, _ELIGIBLE = "groupsActive", "groupsEligible"  # names of `_group_grant_reads`' reads
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class RoleReads(GraphCalls):
    """The role reads of GraphGateway: directory roles, active and eligible, direct or through groups."""

    async def directory_roles(self, user_id: str) -> tuple[str, ...]:
        """Every directory role the user holds or could activate, by any path, each saying how.

        A role can be assigned to the user or to a role-assignable group the user is in, owns (an owner may add
        themselves as a member) or may join or own at will through PIM for Groups, at the tenant or an
        administrative unit, active or eligible in PIM. First round, concurrently: the user's role-assignable
        groups, the role-assignable groups the user owns, the user's own assignments and eligibilities, and the
        user's PIM for Groups eligibilities; second round, concurrently: those groups' assignments (`principalId
        in`, 15 at a time) and eligibilities (one request per group: `in` is not supported there). A group that
        holds no role adds nothing, whoever is in it or owns it.
        """
        member_of, owned, own_active, own_eligible, group_eligibilities = await asyncio.gather(
            self.role_assignable_groups(user_id),
            self.owned_role_assignable_groups(user_id),
            self.active_role_grants([user_id]),
            self.eligible_role_grants(user_id),
            self.group_eligibilities(user_id),
        )
        return await self.roles_through_groups(member_of, owned, [*own_active, *own_eligible], group_eligibilities)

    async def roles_through_groups(
        self,
        member_of: Mapping[str, str],
        owned: Mapping[str, str],
        own_grants: Sequence[RoleGrant],
        group_eligibilities: Sequence[GroupEligibility],
    ) -> tuple[str, ...]:
        """`directory_roles`' second round, from what its first round found: its reads in one `$batch`."""
        via = _group_via(member_of, owned, group_eligibilities)
        found = await self.batched_pages("read the roles of the user's groups", self._group_grant_reads(via))
        return _labels([*own_grants, *_round_grants(found)], via)

    def _group_grant_reads(self, group_ids: Iterable[str], prefix: str = "") -> dict[str, _Read]:
        """The groups' own role grants, all independent reads: active assignments (`principalId in`, 15 groups at a
        time) and eligibilities (one read per group: `in` is not supported there); named for `_round_grants`."""
        ordered = sorted(group_ids)
        reads: dict[str, _Read] = {}
        for index, start in enumerate(range(0, len(ordered), IN_FILTER_LIMIT)):
            reads[f"{prefix}{_ACTIVE}{index}"] = self._active_role_grants_read(ordered[start : start + IN_FILTER_LIMIT])
        for index, group_id in enumerate(ordered):
            reads[f"{prefix}{_ELIGIBLE}{index}"] = self._eligible_role_grants_read(group_id)
        return reads

    async def batched_pages(self, what: str, reads: Mapping[str, _Read]) -> dict[str, list[dict[str, Any]]]:
        """Independent collection reads in as few round trips as Graph allows: `$batch`es of up to 20 items, sent
        together (Graph and the pacer still count each item). Each item ends as its single read would: its page,
        the single request's domain error for a refusal, or, for an item throttled, answered 503/504 or paged, the
        single read itself (graph_batch.single_page). A lone read is simply sent."""
        names = list(reads)
        if len(names) <= 1:
            return {name: await reads[name].pages(self) for name in names}
        chunks = [names[start : start + BATCH_LIMIT] for start in range(0, len(names), BATCH_LIMIT)]
        sent = await asyncio.gather(
            *(
                send_batch(self, what, [BatchItem(name, reads[name].first_request()) for name in chunk])
                for chunk in chunks
            )
        )
        answers = {name: answer for found in sent for name, answer in found.items()}

        answered = (reads[name].answered(self, answers.get(name)) for name in names)
        return dict(zip(names, await asyncio.gather(*answered), strict=True))

    def first_round_reads(self, user_id: str) -> dict[str, _Read]:
        """The reads of `directory_roles`' first round, by name, as requests the SDK builds (for one `$batch`)."""
        return {
            "memberOf": self._role_assignable_groups_read(user_id),
            "owned": self._owned_role_assignable_groups_read(user_id),
            "active": self._active_role_grants_read([user_id]),
            "eligible": self._eligible_role_grants_read(user_id),
            "groupEligible": self._group_eligibilities_read(user_id),
        }

    async def role_holders(self) -> dict[str, tuple[str, ...]]:
        """Every user who holds or could activate a directory role, by any path, read tenant-wide: user id (lower
        case) → the same labels `directory_roles` gives that user.

        First round, concurrently: every active assignment and every eligibility in force (all pages, no filter),
        and the role-assignable groups (only those can hold roles besides users and service principals). Second
        round, concurrently, for each group that holds a role: its transitive members, its owners (one request
        each, which grows a snapshot by one request per role-holding group) and its PIM for Groups eligibilities
        (`groupId eq`: Graph requires a filter there). A member of a group is counted through the group, and an
        active owner through ownership rather than an eligibility, as `directory_roles` does.
        """
        active, eligible, groups = await asyncio.gather(
            self.all_role_grants(eligible=False),
            self.all_role_grants(eligible=True),
            self.role_assignable_group_names(),
        )
        by_principal: dict[str, list[RoleGrant]] = {}
        for grant in [*active, *eligible]:
            by_principal.setdefault(grant.principal_id, []).append(grant)
        holding_groups = sorted(principal for principal in by_principal if principal in groups)
        members, owners, eligibilities = await asyncio.gather(
            asyncio.gather(*(self.transitive_user_ids(group_id) for group_id in holding_groups)),
            asyncio.gather(*(self.owner_user_ids(group_id) for group_id in holding_groups)),
            asyncio.gather(*(self.group_eligibilities_of_group(group_id) for group_id in holding_groups)),
        )
        via_by_user: dict[str, dict[str, str]] = {}  # user id -> group id -> how the user comes by its roles
        for group_id, found in zip(holding_groups, eligibilities, strict=True):
            for user_id, access in found:
                via_by_user.setdefault(user_id, {})[group_id] = (
                    f"through eligible {access}ship of group {groups[group_id]}"
                )
        for group_id, user_ids in zip(holding_groups, owners, strict=True):
            for user_id in user_ids:
                via_by_user.setdefault(user_id, {})[group_id] = _OWNERSHIP.format(group=groups[group_id])
        for group_id, user_ids in zip(holding_groups, members, strict=True):
            for user_id in user_ids:
                via_by_user.setdefault(user_id, {})[group_id] = f"through group {groups[group_id]}"
        holders: dict[str, tuple[str, ...]] = {}
        for user_id in (set(by_principal) - set(groups)) | set(via_by_user):
            via = via_by_user.get(user_id, {})
            grants = [*by_principal.get(user_id, ()), *(grant for group_id in via for grant in by_principal[group_id])]
            labels = _labels(grants, via)
            if labels:
                holders[user_id] = labels
        return holders

    async def all_role_grants(self, *, eligible: bool) -> list[RoleGrant]:
        """Every active assignment (or every eligibility in force) of the tenant, at any scope, every page."""
        if eligible:
            builder: Any = self._client.role_management.directory.role_eligibility_schedule_instances
            query: Any = RoleEligibilityScheduleInstancesRequestBuilder.RoleEligibilityScheduleInstancesRequestBuilderGetQueryParameters(  # noqa: E501
                expand=["roleDefinition"]
            )
            what = "list eligible directory roles"
        else:
            builder = self._client.role_management.directory.role_assignments
            query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
                expand=["roleDefinition"]
            )
            what = "list directory role assignments"
        pages = await self._read_pages(what, builder, query, pim=eligible)
        return [_grant(item, eligible=eligible) for page in pages for item in _values(page) if isinstance(item, dict)]

    async def role_assignable_group_names(self) -> dict[str, str]:
        """Every role-assignable group of the tenant: id (lower case) → display name (an advanced query)."""
        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter="isAssignableToRole eq true", count=True, select=["id", "displayName"], top=999
        )
        pages = await self._read_pages(
            "list the role-assignable groups", self._client.groups, query, headers={"ConsistencyLevel": "eventual"}
        )
        groups = [group for page in pages for group in _values(page) if isinstance(group, dict) and group.get("id")]
        return {str(group["id"]).lower(): str(group.get("displayName") or group["id"]) for group in groups}

    async def transitive_user_ids(self, group_id: str, *, max_pages: int = MAX_PAGES) -> frozenset[str]:
        """Object ids (lower case) of the users in the group, nested groups included; TooManyPages beyond
        `max_pages` pages of 999."""
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=["id"], top=999)
        pages = await self._read_pages(
            "read a group's members",
            self._client.groups.by_group_id(group_id).transitive_members.graph_user,
            query,
            max_pages=max_pages,
        )
        return frozenset(
            str(user["id"]).lower()
            for page in pages
            for user in _values(page)
            if isinstance(user, dict) and user.get("id")
        )

    async def owner_user_ids(self, group_id: str) -> frozenset[str]:
        """Object ids (lower case) of the group's owners who are users, every page (`GET /groups/{id}/owners`, cast
        to users: Graph "List group owners", which needs GroupMember.Read.All; owners are limited to 100)."""
        query = OwnerUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=["id"], top=999)
        pages = await self._read_pages(
            "read a group's owners", self._client.groups.by_group_id(group_id).owners.graph_user, query
        )
        return frozenset(
            str(user["id"]).lower()
            for page in pages
            for user in _values(page)
            if isinstance(user, dict) and user.get("id")
        )

    async def group_eligibilities_of_group(self, group_id: str) -> list[tuple[str, str]]:
        """PIM for Groups: (user id, "member" or "owner") of everyone who may activate access to the group."""
        query = EligibilityScheduleInstancesRequestBuilder.EligibilityScheduleInstancesRequestBuilderGetQueryParameters(
            filter=f"groupId eq '{_odata_literal(group_id)}'"
        )
        pages = await self._read_pages(
            "read a group's eligible members",
            self._client.identity_governance.privileged_access.group.eligibility_schedule_instances,
            query,
            pim=True,
        )
        return [
            (str(instance["principalId"]).lower(), str(instance.get("accessId") or "member"))
            for page in pages
            for instance in _values(page)
            if isinstance(instance, dict) and instance.get("principalId")
        ]

    async def find_users(self, references: Sequence[str]) -> dict[str, DirectoryUser]:
        """Users by object id or user principal name, up to 15 per request (`$filter=id in (…)` or
        `userPrincipalName in (…)`: Graph limits `in` to 15 values by default, see IN_FILTER_LIMIT), the requests
        sent concurrently. Keyed by each reference lower-cased; a reference no user has is left out."""
        ids = sorted({reference.lower() for reference in references if _GUID.fullmatch(reference)})
        names = sorted({reference.lower() for reference in references if not _GUID.fullmatch(reference) and reference})
        filters = [
            f"{field} in ({', '.join(_quoted(value) for value in chunk)})"
            for field, values in (("id", ids), ("userPrincipalName", names))
            for chunk in (values[start : start + IN_FILTER_LIMIT] for start in range(0, len(values), IN_FILTER_LIMIT))
        ]
        pages = await asyncio.gather(*(self._users_where(text) for text in filters))
        found: dict[str, DirectoryUser] = {}
        for users in pages:
            for user in users:
                found[user.object_id.lower()] = user
                found[user.user_principal_name.lower()] = user
        return {reference.lower(): found[reference.lower()] for reference in references if reference.lower() in found}

    async def _users_where(self, filter_text: str) -> list[DirectoryUser]:
        from bot.adapters.graph import USER_FIELDS  # the gateway's own list (graph.py imports this module)

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(filter=filter_text, select=USER_FIELDS)
        pages = await self._read_pages("look up the users", self._client.users, query)
        return [_directory_user(user) for page in pages for user in _values(page) if isinstance(user, dict)]

    async def group_members(self, group_id: str) -> frozenset[str] | None:
        """Object ids (lower case) of the group's users, nested groups included; None for a group too large to read
        whole (more than MEMBER_PAGES pages of 999): its membership is then checked user by user."""
        try:
            return await self.transitive_user_ids(group_id, max_pages=MEMBER_PAGES)
        except TooManyPages:
            return None

    async def role_assignable_groups(self, user_id: str) -> dict[str, str]:
        """The role-assignable groups the user is a (transitive) member of: id → display name.

        Filtering memberships is an advanced query: Graph wants `ConsistencyLevel: eventual` and `$count=true`.
        """
        return group_names(await self._role_assignable_groups_read(user_id).pages(self))

    def _role_assignable_groups_read(self, user_id: str) -> _Read:
        query = GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
            filter="isAssignableToRole eq true", count=True, select=["id", "displayName"]
        )
        return _Read(
            "read the user's role-assignable groups",
            self._user(user_id).transitive_member_of.graph_group,
            query,
            headers={"ConsistencyLevel": "eventual"},
        )

    async def owned_role_assignable_groups(self, user_id: str) -> dict[str, str]:
        """The role-assignable groups the user owns: id → display name.

        `GET /users/{id}/ownedObjects/microsoft.graph.group?$filter=isAssignableToRole eq true` (Graph "List
        ownedObjects", user-list-ownedobjects). Filtering a directory-object relationship through an OData cast is
        an advanced query ("Advanced query capabilities on Microsoft Entra ID objects", aad-advanced-queries): it
        needs `ConsistencyLevel: eventual` and `$count=true`, sent here as for memberships.
        """
        return group_names(await self._owned_role_assignable_groups_read(user_id).pages(self))

    def _owned_role_assignable_groups_read(self, user_id: str) -> _Read:
        query = OwnedGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
            filter="isAssignableToRole eq true", count=True, select=["id", "displayName"]
        )
        return _Read(
            "read the user's owned role-assignable groups",
            self._user(user_id).owned_objects.graph_group,
            query,
            headers={"ConsistencyLevel": "eventual"},
        )

    async def active_role_grants(self, principal_ids: Sequence[str]) -> list[RoleGrant]:
        """Active role assignments (permanent or activated in PIM) of these principals themselves, at any scope."""
        return grants(await self._active_role_grants_read(principal_ids).pages(self), eligible=False)

    def _active_role_grants_read(self, principal_ids: Sequence[str]) -> _Read:
        quoted = ", ".join(f"'{_odata_literal(principal_id)}'" for principal_id in principal_ids)
        query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"principalId in ({quoted})" if len(principal_ids) > 1 else f"principalId eq {quoted}",
            expand=["roleDefinition"],
        )
        return _Read("read directory role assignments", self._client.role_management.directory.role_assignments, query)

    async def eligible_role_grants(self, principal_id: str) -> list[RoleGrant]:
        """The principal's PIM eligibilities in force now (none in a tenant without PIM licences)."""
        return grants(await self._eligible_role_grants_read(principal_id).pages(self), eligible=True)

    def _eligible_role_grants_read(self, principal_id: str) -> _Read:
        query = RoleEligibilityScheduleInstancesRequestBuilder.RoleEligibilityScheduleInstancesRequestBuilderGetQueryParameters(  # noqa: E501
            filter=f"principalId eq '{_odata_literal(principal_id)}'", expand=["roleDefinition"]
        )
        return _Read(
            "read eligible directory roles",
            self._client.role_management.directory.role_eligibility_schedule_instances,
            query,
            pim=True,
        )

    async def group_eligibilities(self, user_id: str) -> list[GroupEligibility]:
        """PIM for Groups: groups whose membership or ownership the user may activate at will."""
        return group_eligibilities(await self._group_eligibilities_read(user_id).pages(self))

    def _group_eligibilities_read(self, user_id: str) -> _Read:
        query = EligibilityScheduleInstancesRequestBuilder.EligibilityScheduleInstancesRequestBuilderGetQueryParameters(
            filter=f"principalId eq '{_odata_literal(user_id)}'", expand=["group"]
        )
        return _Read(
            "read eligible group memberships",
            self._client.identity_governance.privileged_access.group.eligibility_schedule_instances,
            query,
            pim=True,
        )


def _group_via(
    member_of: Mapping[str, str], owned: Mapping[str, str], group_eligibilities: Sequence[GroupEligibility]
) -> dict[str, str]:
    """Group id → how the user comes by the group's roles (a membership over an ownership over an eligibility)."""
    via: dict[str, str] = {}
    for eligibility in group_eligibilities:
        via[eligibility.group_id] = f"through eligible {eligibility.access}ship of group {eligibility.group_name}"
    for group_id, group_name in owned.items():
        via[group_id] = _OWNERSHIP.format(group=group_name)
    for group_id, group_name in member_of.items():
        via[group_id] = f"through group {group_name}"
    return via


def _round_grants(found: Mapping[str, Sequence[dict[str, Any]]], prefix: str = "") -> list[RoleGrant]:
    """The grants `_group_grant_reads` (named with `prefix`) read: assignments active, eligibilities eligible."""
    return [
        grant
        for name, pages in found.items()
        if name.startswith(prefix)
        for grant in grants(pages, eligible=name[len(prefix) :].startswith(_ELIGIBLE))
        if name[len(prefix) :].startswith((_ACTIVE, _ELIGIBLE))
    ]


def _unit_names(pages: Sequence[dict[str, Any]]) -> dict[str, str]:
    units = [unit for page in pages for unit in _values(page) if isinstance(unit, dict) and unit.get("id")]
    return {str(unit["id"]).lower(): str(unit.get("displayName") or unit["id"]) for unit in units}


def group_eligibilities(pages: Sequence[dict[str, Any]]) -> list[GroupEligibility]:
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


def group_names(pages: Sequence[dict[str, Any]]) -> dict[str, str]:
    groups = [group for page in pages for group in _values(page) if isinstance(group, dict) and group.get("id")]
    return {str(group["id"]).lower(): str(group.get("displayName") or group["id"]) for group in groups}


def grants(pages: Sequence[dict[str, Any]], *, eligible: bool) -> list[RoleGrant]:
    return [_grant(item, eligible=eligible) for page in pages for item in _values(page)]


@dataclass(frozen=True)
class _Read:
    """One collection read: what it is for (the error sentences), the builder, query and headers the SDK makes the
    request from, and whether Graph's "no PIM licence" answer means an empty collection."""

    what: str
    builder: _Pager
    query: Any
    headers: Mapping[str, str] | None = None
    pim: bool = False

    async def pages(self, calls: GraphCalls) -> list[dict[str, Any]]:
        return await calls._read_pages(self.what, self.builder, self.query, headers=self.headers, pim=self.pim)

    async def answered(self, calls: GraphCalls, answer: ItemAnswer | None) -> list[dict[str, Any]]:
        """The read's pages from its `$batch` item's answer; read on its own when the item must be sent alone
        (throttled, 503/504, or more pages)."""
        try:
            return [single_page(answer, self.what, pim=self.pim)]
        except SendAlone:
            return await self.pages(calls)

    def first_request(self) -> RequestInformation:
        return self.builder.to_get_request_information(_Call().configuration(self.query, self.headers))


class RefusalReads(RoleReads):
    """App-only reads that explain Entra's 403 on a delegated pass write (bot/domain/entra_rights.py): read only then,
    never before a write, so application mode and successful writes cost no request more."""

    async def refusal_facts(self, person_id: str, target: DirectoryUser, write: PassWrite) -> RefusalFacts:
        """The acting person's directory roles (active and eligible, theirs and their role-assignable groups', with
        scope), the target's administrative units, and whether the target is privileged for an Authentication
        Administrator (holds or could activate a role, or is a member or owner of a role-assignable group)."""
        # First round, one batch: the person's groups and own grants, the target's administrative units and the
        # first round of the target's roles (which holds its role-assignable groups, member and owner). Second
        # round, one batch: the grants of the person's groups and of the target's.
        target_first = self.first_round_reads(target.object_id)
        found = await self.batched_pages(
            "read the roles behind Entra's refusal",
            {
                "person:groups": self._role_assignable_groups_read(person_id),
                "person:active": self._active_role_grants_read([person_id]),
                "person:eligible": self._eligible_role_grants_read(person_id),
                "target:units": self._administrative_units_read(target.object_id),
                **{f"target:{name}": read for name, read in target_first.items()},
            },
        )
        groups = group_names(found["person:groups"])
        target_groups = group_names(found["target:memberOf"])
        target_owned = group_names(found["target:owned"])
        target_via = _group_via(target_groups, target_owned, group_eligibilities(found["target:groupEligible"]))
        second = await self.batched_pages(
            "read the roles behind Entra's refusal",
            {**self._group_grant_reads(groups, "person:"), **self._group_grant_reads(target_via, "target:")},
        )
        target_roles = _labels(
            [
                *grants(found["target:active"], eligible=False),
                *grants(found["target:eligible"], eligible=True),
                *_round_grants(second, "target:"),
            ],
            target_via,
        )
        units = _unit_names(found["target:units"])
        held = [
            *grants(found["person:active"], eligible=False),
            *grants(found["person:eligible"], eligible=True),
            *_round_grants(second, "person:"),
        ]
        roles = tuple(HeldRole(grant.role_name, grant.directory_scope_id, active=not grant.eligible) for grant in held)
        names = dict(units)
        unknown = sorted({role.unit_id for role in roles if role.unit_id and role.unit_id not in names})
        names.update(zip(unknown, await self.unit_names(unknown), strict=True))
        privileged: str | None = None
        if target_roles:
            privileged = "holds an admin role"
        elif target_groups:
            privileged = f"is in the role-assignable group {sorted(target_groups.values())[0]}"
        elif target_owned:
            privileged = f"owns the role-assignable group {sorted(target_owned.values())[0]}"
        return RefusalFacts(
            write=write,
            target_name=target.display_name or target.user_principal_name,
            roles=roles,
            target_unit_ids=frozenset(units),
            unit_names=names,
            target_privileged=privileged,
        )

    async def administrative_units_of(self, user_id: str) -> dict[str, str]:
        """The administrative units the user is a member of: id (lower case) → display name
        (`GET /users/{id}/memberOf/microsoft.graph.administrativeUnit`)."""
        return _unit_names(await self._administrative_units_read(user_id).pages(self))

    def _administrative_units_read(self, user_id: str) -> _Read:
        query = GraphAdministrativeUnitRequestBuilder.GraphAdministrativeUnitRequestBuilderGetQueryParameters(
            select=["id", "displayName"]
        )
        return _Read(
            "read the user's administrative units", self._user(user_id).member_of.graph_administrative_unit, query
        )

    async def unit_name(self, unit_id: str) -> str:
        """An administrative unit's display name (`GET /directory/administrativeUnits/{id}`); its id when unread."""
        item = self._client.directory.administrative_units.by_administrative_unit_id(unit_id)
        try:
            unit = await self._read_json(
                "read an administrative unit", lambda call: item.to_get_request_information(call)
            )
        except TapError:
            return unit_id
        return str((unit or {}).get("displayName") or unit_id)

    async def unit_names(self, unit_ids: Sequence[str]) -> list[str]:
        """`unit_name` of each unit, the reads in `$batch`es (they are independent); an item throttled, answered
        503/504 or otherwise unfit is read on its own, a refused one leaves the unit's id, as `unit_name` does."""
        if len(unit_ids) <= 1:
            return [await self.unit_name(unit_id) for unit_id in unit_ids]
        what = "read an administrative unit"
        units = self._client.directory.administrative_units
        answers: dict[str, ItemAnswer] = {}
        for start in range(0, len(unit_ids), BATCH_LIMIT):
            items = [
                BatchItem(
                    f"unit{index}",
                    units.by_administrative_unit_id(unit_id).to_get_request_information(_Call().configuration()),
                )
                for index, unit_id in enumerate(unit_ids[start : start + BATCH_LIMIT], start)
            ]
            with contextlib.suppress(TapError):  # each unit is then read on its own
                answers.update(await send_batch(self, what, items))

        async def name(index: int, unit_id: str) -> str:
            try:
                unit = single_page(answers.get(f"unit{index}"), what)
            except SendAlone:
                return await self.unit_name(unit_id)
            except TapError:
                return unit_id
            return str(unit.get("displayName") or unit_id)

        return list(await asyncio.gather(*(name(index, unit_id) for index, unit_id in enumerate(unit_ids))))


def _grant(item: dict[str, Any], *, eligible: bool) -> RoleGrant:
    """A role assignment or eligibility schedule instance (with its roleDefinition expanded) as a RoleGrant."""
    return RoleGrant(
        principal_id=str(item.get("principalId") or "").lower(),
        role_name=_role_name(item.get("roleDefinition")),
        directory_scope_id=str(item.get("directoryScopeId") or TENANT_SCOPE),
        eligible=eligible,
    )


def _labels(grants: Iterable[RoleGrant], via: Mapping[str, str]) -> tuple[str, ...]:
    """The rule both role reads share: each grant named with how the user holds it (`via` a group, by group id)."""
    return tuple(sorted({_role_label(grant, via.get(grant.principal_id)) for grant in grants}))


def _quoted(value: str) -> str:
    return "'" + _odata_literal(value) + "'"
