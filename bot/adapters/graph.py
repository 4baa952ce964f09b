"""Microsoft Graph, through msgraph-sdk: the only module that imports msgraph or azure-identity.

One class, one method per Graph call the bot makes, Graph errors translated into domain errors here.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar, cast

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_option import RequestOption
from kiota_abstractions.serialization import Parsable, ParsableFactory
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from kiota_http.middleware.options.headers_inspection_handler_option import HeadersInspectionHandlerOption
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder
from msgraph.generated.identity_governance.privileged_access.group.eligibility_schedule_instances.eligibility_schedule_instances_request_builder import (  # noqa: E501
    EligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.models.authentication_method_collection_response import AuthenticationMethodCollectionResponse
from msgraph.generated.models.authentication_method_configuration import AuthenticationMethodConfiguration
from msgraph.generated.models.authentication_method_target_type import AuthenticationMethodTargetType
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.group import Group
from msgraph.generated.models.group_collection_response import GroupCollectionResponse
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.privileged_access_group_eligibility_schedule_instance_collection_response import (
    PrivilegedAccessGroupEligibilityScheduleInstanceCollectionResponse,
)
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.temporary_access_pass_authentication_method_collection_response import (
    TemporaryAccessPassAuthenticationMethodCollectionResponse,
)
from msgraph.generated.models.temporary_access_pass_authentication_method_configuration import (
    TemporaryAccessPassAuthenticationMethodConfiguration,
)
from msgraph.generated.models.unified_role_assignment_collection_response import (
    UnifiedRoleAssignmentCollectionResponse,
)
from msgraph.generated.models.unified_role_definition import UnifiedRoleDefinition
from msgraph.generated.models.unified_role_eligibility_schedule_instance_collection_response import (
    UnifiedRoleEligibilityScheduleInstanceCollectionResponse,
)
from msgraph.generated.models.user import User
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_eligibility_schedule_instances.role_eligibility_schedule_instances_request_builder import (  # noqa: E501
    RoleEligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_response import (
    CheckMemberGroupsPostResponse,
)
from msgraph.generated.users.item.transitive_member_of.graph_group.graph_group_request_builder import (
    GraphGroupRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from bot.domain.errors import GraphRejected, GraphUnavailable, Refused, Rule, TapError, Throttled
from bot.domain.model import (
    DirectoryUser,
    IssuedPass,
    PassInfo,
    PassSecret,
    PolicyTarget,
    TapPolicy,
    TargetType,
    UsabilityReason,
    UserType,
)
from bot.domain.ports import Clock
from bot.settings import GraphMode, GraphSettings
from bot.telemetry import GraphTelemetryTransport

logger = logging.getLogger(__name__)

T = TypeVar("T")

USER_FIELDS = [
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "userType",
    "accountEnabled",
    "employeeHireDate",
]
CHECK_MEMBER_GROUPS_LIMIT = 20
# How far Graph's clock may trail ours when deciding whether a pass found after an uncertain failure is ours.
CLOCK_SKEW = timedelta(minutes=2)
CREATE_ATTEMPTS = 3
# An interactive command waits for a throttled create at most this long before telling the user to retry.
MAX_INTERACTIVE_THROTTLE_WAIT = timedelta(seconds=5)
POLICY_SCOPE_MESSAGE = "Converged UserCredentialPolicy does not allow"
GUEST_MESSAGE = "external guest"
LIFETIME_MESSAGE = "LifetimeInMinutes"
# `principalId in (...)` on roleAssignments: at most this many ids per request (Graph's usual limit for `in`).
IN_FILTER_LIMIT = 15
# Graph's answer on PIM endpoints in a tenant without Entra ID P2 / ID Governance: no PIM, so no eligibility.
PIM_UNLICENSED_CODE = "AadPremiumLicenseRequired"
# A collection longer than this many pages is refused rather than read half (deny by default).
MAX_PAGES = 50
TENANT_SCOPE = "/"


def load_response_models() -> None:
    """Parses one sample of every Graph answer the bot reads, so their model modules are imported.

    msgraph-sdk imports hundreds of model modules the first time it parses a user: about a second that would
    otherwise land on the first operator's command. Run it in a thread at start-up.
    """
    samples: list[tuple[ParsableFactory[Parsable], dict[str, Any]]] = [
        (User, {"id": "warm-up", "userPrincipalName": "warm-up@example.invalid"}),
        (TemporaryAccessPassAuthenticationMethodCollectionResponse, {"value": [{"id": "m", "lifetimeInMinutes": 60}]}),
        (UnifiedRoleAssignmentCollectionResponse, {"value": [{"id": "r", "roleDefinition": {"id": "d"}}]}),
        (UnifiedRoleEligibilityScheduleInstanceCollectionResponse, {"value": [{"id": "e", "roleDefinition": {}}]}),
        (PrivilegedAccessGroupEligibilityScheduleInstanceCollectionResponse, {"value": [{"id": "p", "group": {}}]}),
        (GroupCollectionResponse, {"value": [{"id": "g", "displayName": "G"}]}),
        (CheckMemberGroupsPostResponse, {"value": ["g"]}),
        (DirectoryObject, {"@odata.type": "#microsoft.graph.user", "id": "m"}),
        (
            AuthenticationMethodCollectionResponse,
            {"value": [{"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "p"}]},
        ),
        (
            AuthenticationMethodConfiguration,
            {
                "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
                "includeTargets": [{"id": "all_users", "targetType": "group"}],
            },
        ),
        (ODataError, {"error": {"code": "c", "message": "m", "innerError": {"request-id": "r"}}}),
    ]
    for model, sample in samples:
        JsonParseNode(sample).get_object_value(model)


def build_credential(settings: GraphSettings) -> AsyncTokenCredential:
    """The azure-identity credential a deployment chose: certificate, managed identity or client secret."""
    authority = settings.authority_host
    if settings.mode is GraphMode.CERTIFICATE:
        assert settings.tenant_id and settings.client_id and settings.certificate_path
        return CertificateCredential(
            settings.tenant_id,
            settings.client_id,
            certificate_path=str(settings.certificate_path),
            password=settings.certificate_password,
            authority=authority,
        )
    if settings.mode is GraphMode.CLIENT_SECRET:
        assert settings.tenant_id and settings.client_id and settings.client_secret
        return ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret, authority=authority
        )
    if settings.mode is GraphMode.MANAGED_IDENTITY:
        if settings.client_id:
            return ManagedIdentityCredential(client_id=settings.client_id)
        return ManagedIdentityCredential()
    raise ValueError(f"Graph mode {settings.mode.value} does not use a credential")


def build_graph_client(
    settings: GraphSettings, base_url: str, *, credential: AsyncTokenCredential | None = None
) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """A Graph client pointed at `base_url` (a national cloud, or the sandbox), and the HTTP client to close.

    `credential` replaces the one the settings describe (the doctor passes the one it has just tested).
    """
    auth_provider: AuthenticationProvider
    if settings.mode in (GraphMode.SANDBOX, GraphMode.ANONYMOUS):
        auth_provider = AnonymousAuthenticationProvider()
    else:
        host = httpx.URL(base_url).host
        auth_provider = AzureIdentityAuthenticationProvider(
            credential or build_credential(settings), scopes=[settings.scope], allowed_hosts=[host]
        )
    # Under kiota's middleware: every attempt, retries included, is one span with its status (bot/telemetry.py).
    http_client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout_seconds), transport=GraphTelemetryTransport()
    )
    # Reads may be retried by the SDK (they are idempotent), but never for long inside a chat turn.
    read_retries: dict[str, RequestOption] = {RetryHandlerOption.get_key(): RetryHandlerOption(delay=1, max_retries=2)}
    http_client = GraphClientFactory.create_with_default_middleware(client=http_client, options=read_retries)
    adapter = GraphRequestAdapter(auth_provider, client=http_client)
    # Without an explicit base URL, httpx's own base_url (with a trailing slash) would produce '//users'.
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), http_client


@dataclass
class _Call:
    """Options for one Graph request: SDK retry switched off when asked, response headers captured."""

    no_retry: bool = False

    def __post_init__(self) -> None:
        self.headers = HeadersInspectionHandlerOption(inspect_request_headers=False, inspect_response_headers=True)

    def configuration(self, query: Any = None, headers: Mapping[str, str] | None = None) -> RequestConfiguration[Any]:
        options: list[RequestOption] = [self.headers]
        if self.no_retry:
            options.append(RetryHandlerOption(max_retries=0, should_retry=False))
        configuration: RequestConfiguration[Any] = RequestConfiguration(options=options, query_parameters=query)
        configuration.headers.add("client-request-id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            configuration.headers.add(name, value)
        return configuration

    @property
    def request_id(self) -> str | None:
        values = self.headers.response_headers.get("request-id")
        return next(iter(values), None) if values else None


@dataclass(frozen=True)
class RoleGrant:
    """A directory role a principal holds (active) or may activate at will (eligible in PIM)."""

    principal_id: str
    role_name: str
    directory_scope_id: str = TENANT_SCOPE
    eligible: bool = False


@dataclass(frozen=True)
class GroupEligibility:
    """PIM for Groups: the user may activate membership (or ownership) of this group at will."""

    group_id: str
    group_name: str
    access: str  # "member" or "owner"


class _Page(Protocol):
    """A page of a Graph collection as msgraph-sdk parses it."""

    @property
    def odata_next_link(self) -> str | None: ...


class _Pager(Protocol):
    """A collection request builder: `get` for the first page, `with_url` for the pages after it."""

    async def get(self, request_configuration: Any = None) -> Any: ...

    def with_url(self, raw_url: str) -> Any: ...


class GraphGateway:
    """Implements the domain's Directory and PassMethods ports over msgraph-sdk."""

    def __init__(
        self,
        client: GraphServiceClient,
        clock: Clock,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._clock = clock
        self._sleep = sleep

    def _user(self, reference: str) -> UserItemRequestBuilder:
        return self._client.users.by_user_id(reference)

    # --- Directory ----------------------------------------------------------------------------------------

    async def find_user(self, reference: str) -> DirectoryUser | None:
        call = _Call()
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=USER_FIELDS)
        try:
            user = await self._user(reference).get(call.configuration(query))
        except ODataError as error:
            if error.response_status_code == 404:
                return None
            if error.response_status_code == 400:
                return None  # Graph answers 400 for a malformed id or UPN: no such user either way.
            raise _translate(error, "look up the user") from None
        except httpx.HTTPError as error:
            raise _unavailable("look up the user", error) from None
        return _directory_user(user) if user else None

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        wanted = sorted(set(group_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), CHECK_MEMBER_GROUPS_LIMIT):
            chunk = wanted[start : start + CHECK_MEMBER_GROUPS_LIMIT]
            post = partial(
                self._user(user_id).check_member_groups.post, CheckMemberGroupsPostRequestBody(group_ids=chunk)
            )
            response = await self._read("check group membership", post)
            found.update(response.value or [] if response else [])
        return frozenset(found)

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
        groups: list[Group] = [group for page in pages for group in page.value or []]
        return {group.id.lower(): group.display_name or group.id for group in groups if group.id}

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
                principal_id=(assignment.principal_id or "").lower(),
                role_name=_role_name(assignment.role_definition),
                directory_scope_id=assignment.directory_scope_id or TENANT_SCOPE,
            )
            for page in pages
            for assignment in page.value or []
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
                principal_id=(instance.principal_id or "").lower(),
                role_name=_role_name(instance.role_definition),
                directory_scope_id=instance.directory_scope_id or TENANT_SCOPE,
                eligible=True,
            )
            for page in pages
            for instance in page.value or []
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
            for instance in page.value or []:
                if not instance.group_id:
                    continue
                name = instance.group.display_name if instance.group and instance.group.display_name else None
                access = instance.access_id.value if instance.access_id else "member"
                found.append(GroupEligibility(instance.group_id.lower(), name or instance.group_id, access))
        return found

    async def group_name(self, group_id: str) -> str | None:
        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=["id", "displayName"])
        try:
            group = await self._read(
                "read a group", lambda call: self._client.groups.by_group_id(group_id).get(call), query
            )
        except TapError:
            return None
        return group.display_name if group else None

    async def find_group(self, group_id: str) -> str | None:
        """The group's display name; None when the tenant has no such group. Other failures raise."""
        query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=["id", "displayName"])
        call = _Call()
        try:
            group = await self._client.groups.by_group_id(group_id).get(call.configuration(query))
        except ODataError as error:
            if error.response_status_code in (400, 404):
                return None  # 400: not even a valid object id
            raise _translate(error, "read a group") from None
        except httpx.HTTPError as error:
            raise _unavailable("read a group", error) from None
        return (group.display_name or group_id) if group else None

    async def any_user_id(self) -> str | None:
        """The object id of one user of the tenant (GET /users?$top=1): a harmless read for checks."""
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=1, select=["id"])
        response = await self._read("list users", lambda call: self._client.users.get(call), query)
        users = (response.value or []) if response else []
        return users[0].id if users and users[0].id else None

    async def manager_id(self, user_id: str) -> str | None:
        call = _Call()
        try:
            manager = await self._user(user_id).manager.get(call.configuration())
        except ODataError as error:
            if error.response_status_code == 404:
                return None  # Graph answers 404 when the user has no manager
            raise _translate(error, "read the user's manager") from None
        except httpx.HTTPError as error:
            raise _unavailable("read the user's manager", error) from None
        return manager.id if manager else None

    async def sign_in_methods(self, user_id: str) -> tuple[str, ...]:
        response = await self._read(
            "read the user's sign-in methods", lambda call: self._user(user_id).authentication.methods.get(call)
        )
        methods = (response.value or []) if response else []
        return tuple(method.odata_type or "" for method in methods)

    async def tap_policy(self) -> TapPolicy:
        configurations = self._client.policies.authentication_methods_policy.authentication_method_configurations
        config = await self._read(
            "read the Temporary Access Pass policy",
            lambda call: configurations.by_authentication_method_configuration_id("TemporaryAccessPass").get(call),
        )
        if not isinstance(config, TemporaryAccessPassAuthenticationMethodConfiguration):
            raise GraphRejected("Graph did not return a Temporary Access Pass policy for this tenant.")
        return TapPolicy(
            enabled=str(config.state.value if config.state else "").lower() == "enabled",
            default_lifetime_minutes=config.default_lifetime_in_minutes or 60,
            minimum_lifetime_minutes=config.minimum_lifetime_in_minutes or 60,
            maximum_lifetime_minutes=config.maximum_lifetime_in_minutes or 480,
            default_length=config.default_length or 8,
            one_time_forced=bool(config.is_usable_once),
            include_targets=tuple(_target(t.target_type, t.id) for t in config.include_targets or [] if t.id),
            exclude_targets=tuple(_target(t.target_type, t.id) for t in config.exclude_targets or [] if t.id),
        )

    # --- PassMethods --------------------------------------------------------------------------------------

    async def current_pass(self, user_id: str) -> PassInfo | None:
        response = await self._read(
            "read the user's pass",
            lambda call: self._user(user_id).authentication.temporary_access_pass_methods.get(call),
        )
        methods = (response.value or []) if response else []
        return _pass_info(methods[0]) if methods else None

    async def create_pass(
        self,
        user: DirectoryUser,
        *,
        lifetime_minutes: int,
        one_time: bool,
        start_at: datetime | None,
        replacing: PassInfo | None = None,
        max_throttle_wait: timedelta | None = None,
    ) -> IssuedPass:
        """Creates the pass with the SDK's automatic retry off, and decides retries itself.

        Graph replaces a user's pass on every create, so a blind retry after an answer that never came could
        leave a pass nobody has seen. After an uncertain failure the user's pass is read back: one created
        since this attempt began is ours, with its value lost, and is deleted before trying again.
        """
        max_throttle_wait = MAX_INTERACTIVE_THROTTLE_WAIT if max_throttle_wait is None else max_throttle_wait
        body = TemporaryAccessPassAuthenticationMethod(
            lifetime_in_minutes=lifetime_minutes, is_usable_once=one_time, start_date_time=start_at
        )
        methods = self._user(user.object_id).authentication.temporary_access_pass_methods
        last_request_id: str | None = None
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            attempt_started = self._clock.now()
            call = _Call(no_retry=True)
            try:
                created = await methods.post(body, call.configuration())
            except ODataError as error:
                status = error.response_status_code or 0
                last_request_id = _request_id(error)
                if status == 429:
                    wait = _retry_after(error)
                    if wait > max_throttle_wait.total_seconds() or attempt == CREATE_ATTEMPTS:
                        raise Throttled(wait, last_request_id) from None
                    await self._sleep(wait)
                    continue
                if status < 500:
                    raise _translate(error, "create the pass") from None
                logger.warning(
                    "pass creation answered %s (attempt %s); checking what happened",
                    status,
                    attempt,
                    extra=_fields("create the pass", last_request_id, status=status, target_id=user.object_id),
                )
            except httpx.HTTPError as error:
                logger.warning(
                    "pass creation failed in transit (%s, attempt %s)",
                    type(error).__name__,
                    attempt,
                    extra=_fields("create the pass", None, target_id=user.object_id),
                )
            else:
                if created is None or not created.temporary_access_pass:
                    raise GraphRejected("Graph created no pass value; nothing was issued.", call.request_id)
                logger.info(
                    "Graph created a pass",
                    extra=_fields("create the pass", call.request_id, status=201, target_id=user.object_id),
                )
                return IssuedPass(
                    user=user,
                    info=_pass_info(created),
                    secret=PassSecret(created.temporary_access_pass),
                    graph_request_id=call.request_id,
                )
            await self._remove_orphan(user.object_id, attempt_started, replacing)
            await self._sleep(0.5 * attempt)
        raise GraphUnavailable(
            "Microsoft Graph did not confirm the new pass, so none was issued (nothing is left behind). "
            "Try again in a minute.",
            last_request_id,
        )

    async def _remove_orphan(self, user_id: str, attempt_started: datetime, replacing: PassInfo | None) -> None:
        """Deletes a pass the failed attempt may have created: its value never reached us."""
        current = await self.current_pass(user_id)
        if current is None:
            return
        if replacing is not None and current.method_id == replacing.method_id:
            return
        if current.created_at >= attempt_started - CLOCK_SKEW:
            logger.warning(
                "an uncertain create did create a pass for %s; deleting it before retrying",
                user_id,
                extra=_fields("create the pass", None, target_id=user_id),
            )
            await self.delete_pass(user_id, current.method_id)

    async def delete_pass(self, user_id: str, method_id: str) -> str | None:
        item = self._user(
            user_id
        ).authentication.temporary_access_pass_methods.by_temporary_access_pass_authentication_method_id(method_id)
        call = _Call()
        try:
            await item.delete(call.configuration())
        except ODataError as error:
            if error.response_status_code == 404:
                return _request_id(error)
            raise _translate(error, "delete the pass") from None
        except httpx.HTTPError as error:
            raise _unavailable("delete the pass", error) from None
        logger.info("Graph deleted a pass", extra=_fields("delete the pass", call.request_id, target_id=user_id))
        return call.request_id

    # --- plumbing -----------------------------------------------------------------------------------------

    async def _read_pages(
        self,
        what: str,
        builder: _Pager,
        query: Any,
        *,
        headers: Mapping[str, str] | None = None,
        pim: bool = False,
    ) -> list[Any]:
        """Every page of a collection, following `@odata.nextLink`. With `pim`, Graph's "this tenant has no PIM
        licence" answer means an empty collection: without PIM nobody can be eligible for anything."""
        pages: list[Any] = []
        next_link: str | None = None
        while len(pages) < MAX_PAGES:
            call = _Call()
            request = builder if next_link is None else builder.with_url(next_link)
            try:
                page = await request.get(call.configuration(query, headers))
            except ODataError as error:
                if pim and error.error is not None and error.error.code == PIM_UNLICENSED_CODE:
                    logger.info("PIM is not licensed in this tenant: %s finds nothing", what)
                    return []
                raise _translate(error, what) from None
            except httpx.HTTPError as error:
                raise _unavailable(what, error) from None
            if page is None:
                break
            pages.append(page)
            next_link = cast(_Page, page).odata_next_link
            if not next_link:
                return pages
        if next_link:
            raise GraphRejected(f"Microsoft Graph answered too many pages when I tried to {what}; nothing was decided.")
        return pages

    async def _read(
        self, what: str, request: Callable[[RequestConfiguration[Any]], Awaitable[T]], query: Any = None
    ) -> T:
        call = _Call()
        try:
            answer = await request(call.configuration(query))
        except ODataError as error:
            raise _translate(error, what) from None
        except httpx.HTTPError as error:
            raise _unavailable(what, error) from None
        logger.debug("Graph answered: %s", what, extra=_fields(what, call.request_id))
        return answer


def _odata_literal(value: str) -> str:
    return value.replace("'", "''")


def _role_name(definition: UnifiedRoleDefinition | None) -> str:
    return definition.display_name if definition and definition.display_name else "a directory role"


def _role_label(grant: RoleGrant, via_group: str | None) -> str:
    """'Global Administrator', or with how it is held: 'Helpdesk Administrator (eligible in PIM, through group X)'."""
    how: list[str] = []
    if grant.eligible:
        how.append("eligible in PIM")
    if via_group is not None:
        how.append(via_group)
    if grant.directory_scope_id != TENANT_SCOPE:
        how.append("scoped to an administrative unit")
    return f"{grant.role_name} ({', '.join(how)})" if how else grant.role_name


def _fields(operation: str, request_id: str | None, *, status: int | None = None, **more: str) -> dict[str, object]:
    """Structured log fields of one Graph call: what it was for, Graph's request id, the HTTP status."""
    fields: dict[str, object] = {"graph_operation": operation, "graph_request_id": request_id}
    if status is not None:
        fields["graph_status"] = status
    fields.update(more)
    return fields


def _translate(error: ODataError, what: str) -> TapError:
    """Graph's error → a domain error with a sentence the requester can act on (never raw OData)."""
    status = error.response_status_code or 0
    message = (error.error.message if error.error else None) or ""
    request_id = _request_id(error)
    logger.info(
        "Graph refused to %s: status %s, request id %s",
        what,
        status,
        request_id,
        extra=_fields(
            what, request_id, status=status, graph_error_code=(error.error.code if error.error else None) or ""
        ),
    )
    if status == 429:
        return Throttled(_retry_after(error), request_id)
    if POLICY_SCOPE_MESSAGE in message:
        return Refused(
            Rule.OUTSIDE_POLICY_SCOPE,
            "The tenant's Temporary Access Pass policy does not allow a pass for this user "
            "(the policy is off, or the user is not in its scope).",
        )
    if GUEST_MESSAGE in message:
        return Refused(Rule.GUEST, "Temporary Access Passes cannot be issued to external guests.")
    if LIFETIME_MESSAGE in message:
        return Refused(Rule.LIFETIME_RANGE, f"Graph refused the lifetime: {message}")
    if status in (401, 403):
        return GraphRejected(
            f"The bot is not allowed to {what} in Microsoft Graph. An administrator should check the app's "
            f"Graph permissions (see the deployment guide). Request id: {request_id or 'unknown'}.",
            request_id,
        )
    if status >= 500:
        return GraphUnavailable(f"Microsoft Graph could not {what} right now. Try again in a minute.", request_id)
    return GraphRejected(f"Microsoft Graph refused to {what}. Request id: {request_id or 'unknown'}.", request_id)


def _unavailable(what: str, error: httpx.HTTPError) -> GraphUnavailable:
    logger.warning(
        "Graph unreachable while trying to %s: %s",
        what,
        type(error).__name__,
        extra=_fields(what, None, transport_error=type(error).__name__),
    )
    return GraphUnavailable(f"Microsoft Graph did not answer when I tried to {what}. Try again in a minute.")


def _request_id(error: ODataError) -> str | None:
    inner = error.error.inner_error if error.error else None
    if inner and inner.request_id:
        return inner.request_id
    headers = error.response_headers or {}
    return headers.get("request-id")


def _retry_after(error: ODataError) -> float:
    headers = {key.lower(): value for key, value in (error.response_headers or {}).items()}
    try:
        return max(0.0, float(headers.get("retry-after", "5")))
    except ValueError:
        return 5.0


def _target(target_type: AuthenticationMethodTargetType | None, target_id: str) -> PolicyTarget:
    kind = TargetType.USER if target_type is AuthenticationMethodTargetType.User else TargetType.GROUP
    return PolicyTarget(kind, target_id)


def _directory_user(user: User) -> DirectoryUser:
    user_type = UserType.GUEST if (user.user_type or "").lower() == "guest" else UserType.MEMBER
    return DirectoryUser(
        object_id=user.id or "",
        user_principal_name=user.user_principal_name or "",
        display_name=user.display_name or user.user_principal_name or "",
        user_type=user_type,
        account_enabled=user.account_enabled is not False,
        employee_hire_date=_utc(user.employee_hire_date),
        mail=user.mail,
    )


def _pass_info(method: TemporaryAccessPassAuthenticationMethod) -> PassInfo:
    created = _utc(method.created_date_time) or datetime.now(UTC)
    start = _utc(method.start_date_time) or created
    try:
        reason = UsabilityReason(method.method_usability_reason or "Unknown")
    except ValueError:
        reason = UsabilityReason.UNKNOWN
    return PassInfo(
        method_id=method.id or "",
        created_at=created,
        start_at=start,
        lifetime_minutes=method.lifetime_in_minutes or 0,
        one_time=bool(method.is_usable_once),
        usable=bool(method.is_usable),
        usability_reason=reason,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
