"""Microsoft Graph, through msgraph-sdk: the only module that imports msgraph or azure-identity.

One class, one method per Graph call the bot makes, Graph errors translated into domain errors here.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
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
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_eligibility_schedule_instances.role_eligibility_schedule_instances_request_builder import (  # noqa: E501
    RoleEligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
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
TAP_CONFIGURATION_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
# Graph's failures become ODataError (status, code, message, request id), as the SDK's own calls do.
ERROR_MAPPING: dict[str, type[ParsableFactory[Any]]] = {"XXX": ODataError}


# httpcore imports the optional `sniffio` package each time a pooled connection is handed out; when it is not
# installed (anyio 4 no longer needs it) every attempt searches sys.path on disk, dozens of times per command.
# Recording it as absent once turns each attempt into a dictionary look-up; httpcore then assumes asyncio, as before.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


def load_response_models() -> None:
    """Parses one sample of every Graph answer the bot reads, so their model modules are imported.

    msgraph-sdk imports hundreds of model modules the first time it parses a user: about a second that would
    otherwise land on the first operator's command. Run it in a thread at start-up.
    """
    # The hot calls (user, policy, passes, group checks, role reads, create) are parsed with json.loads and
    # need no models; these are the answers still parsed by msgraph's models.
    samples: list[tuple[ParsableFactory[Parsable], dict[str, Any]]] = [
        (DirectoryObject, {"@odata.type": "#microsoft.graph.user", "id": "m"}),
        (Group, {"id": "g", "displayName": "G"}),
        (
            AuthenticationMethodCollectionResponse,
            {"value": [{"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "p"}]},
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


class _Pager(Protocol):
    """A collection request builder: the first page's request, `with_url` for the pages after it."""

    def to_get_request_information(self, request_configuration: Any = None) -> RequestInformation: ...

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
            user = await self._json(self._user(reference).to_get_request_information(call.configuration(query)))
        except ODataError as error:
            if error.response_status_code == 404:
                return None
            if error.response_status_code == 400:
                return None  # Graph answers 400 for a malformed id or UPN: no such user either way.
            raise _translate(error, "look up the user") from None
        except httpx.HTTPError as error:
            raise _unavailable("look up the user", error) from None
        return _directory_user(user) if user is not None else None

    async def member_groups(self, user_id: str, group_ids: Iterable[str]) -> frozenset[str]:
        wanted = sorted(set(group_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), CHECK_MEMBER_GROUPS_LIMIT):
            chunk = wanted[start : start + CHECK_MEMBER_GROUPS_LIMIT]
            post = partial(
                self._user(user_id).check_member_groups.to_post_request_information,
                CheckMemberGroupsPostRequestBody(group_ids=chunk),
            )
            response = await self._read_json("check group membership", post)
            found.update(str(group_id) for group_id in _values(response))
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
        item = configurations.by_authentication_method_configuration_id("TemporaryAccessPass")
        config = await self._read_json(
            "read the Temporary Access Pass policy", lambda call: item.to_get_request_information(call)
        )
        if config is None or config.get("@odata.type") != TAP_CONFIGURATION_TYPE:
            raise GraphRejected("Graph did not return a Temporary Access Pass policy for this tenant.")
        return TapPolicy(
            enabled=str(config.get("state") or "").lower() == "enabled",
            default_lifetime_minutes=_int(config.get("defaultLifetimeInMinutes")) or 60,
            minimum_lifetime_minutes=_int(config.get("minimumLifetimeInMinutes")) or 60,
            maximum_lifetime_minutes=_int(config.get("maximumLifetimeInMinutes")) or 480,
            default_length=_int(config.get("defaultLength")) or 8,
            one_time_forced=config.get("isUsableOnce") is True,
            include_targets=_targets(config.get("includeTargets")),
            exclude_targets=_targets(config.get("excludeTargets")),
        )

    # --- PassMethods --------------------------------------------------------------------------------------

    async def current_pass(self, user_id: str) -> PassInfo | None:
        builder = self._user(user_id).authentication.temporary_access_pass_methods
        response = await self._read_json("read the user's pass", lambda call: builder.to_get_request_information(call))
        methods = _values(response)
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
                created = await self._json(methods.to_post_request_information(body, call.configuration()))
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
                secret = created.get("temporaryAccessPass") if created is not None else None
                if created is None or not isinstance(secret, str) or not secret:
                    raise GraphRejected("Graph created no pass value; nothing was issued.", call.request_id)
                logger.info(
                    "Graph created a pass",
                    extra=_fields("create the pass", call.request_id, status=201, target_id=user.object_id),
                )
                return IssuedPass(
                    user=user,
                    info=_pass_info(created),
                    secret=PassSecret(secret),
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
    ) -> list[dict[str, Any]]:
        """Every page of a collection, following `@odata.nextLink`. With `pim`, Graph's "this tenant has no PIM
        licence" answer means an empty collection: without PIM nobody can be eligible for anything."""
        pages: list[dict[str, Any]] = []
        next_link: str | None = None
        while len(pages) < MAX_PAGES:
            call = _Call()
            request = builder if next_link is None else builder.with_url(next_link)
            try:
                page = await self._json(request.to_get_request_information(call.configuration(query, headers)))
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
            link = page.get("@odata.nextLink")
            next_link = link if isinstance(link, str) and link else None
            if not next_link:
                return pages
        if next_link:
            raise GraphRejected(f"Microsoft Graph answered too many pages when I tried to {what}; nothing was decided.")
        return pages

    async def _json(self, request: RequestInformation) -> dict[str, Any] | None:
        """Sends a request the SDK built (authentication, middleware, retries, ODataError on failure) and parses
        the answer with `json.loads` instead of msgraph's generated models: several times less CPU per call."""
        adapter = self._client.request_adapter
        # The request shares its path parameters with the builder that made it, and setting `url` clears them:
        # a copy keeps a builder used again (a create's next attempt) intact.
        request.path_parameters = {**request.path_parameters, "baseurl": adapter.base_url}
        fast = expanded_url(request)
        if fast is not None:
            request.url = fast
        body = await adapter.send_primitive_async(request, "bytes", ERROR_MAPPING)
        if not body:
            return None
        parsed = json.loads(cast(bytes, body))
        if not isinstance(parsed, dict):
            raise GraphRejected("Microsoft Graph answered something that is not a JSON object; nothing was decided.")
        return cast(dict[str, Any], parsed)

    async def _read_json(
        self, what: str, request: Callable[[RequestConfiguration[Any]], RequestInformation], query: Any = None
    ) -> dict[str, Any] | None:
        call = _Call()
        try:
            answer = await self._json(request(call.configuration(query)))
        except ODataError as error:
            raise _translate(error, what) from None
        except httpx.HTTPError as error:
            raise _unavailable(what, error) from None
        except ValueError:
            raise GraphRejected(f"Microsoft Graph answered unreadable JSON when I tried to {what}.") from None
        logger.debug("Graph answered: %s", what, extra=_fields(what, call.request_id))
        return answer

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


def _role_name(definition: object) -> str:
    name = definition.get("displayName") if isinstance(definition, dict) else None
    return str(name) if name else "a directory role"


def _values(collection: Mapping[str, Any] | None) -> list[Any]:
    """The `value` array of a Graph answer; objects in it are dicts (or strings, for checkMemberGroups)."""
    values = collection.get("value") if collection else None
    return list(cast(list[Any], values)) if isinstance(values, list) else []


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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


def _targets(raw: object) -> tuple[PolicyTarget, ...]:
    targets: list[PolicyTarget] = []
    for entry in cast(list[Any], raw) if isinstance(raw, list) else []:
        if isinstance(entry, dict) and entry.get("id"):
            kind = TargetType.USER if str(entry.get("targetType") or "").lower() == "user" else TargetType.GROUP
            targets.append(PolicyTarget(kind, str(entry["id"])))
    return tuple(targets)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _directory_user(user: Mapping[str, Any]) -> DirectoryUser:
    upn = _text(user.get("userPrincipalName")) or ""
    user_type = UserType.GUEST if (_text(user.get("userType")) or "").lower() == "guest" else UserType.MEMBER
    return DirectoryUser(
        object_id=_text(user.get("id")) or "",
        user_principal_name=upn,
        display_name=_text(user.get("displayName")) or upn,
        user_type=user_type,
        account_enabled=user.get("accountEnabled") is not False,
        employee_hire_date=_utc(_datetime(user.get("employeeHireDate"))),
        mail=_text(user.get("mail")),
    )


def _pass_info(method: Mapping[str, Any]) -> PassInfo:
    created = _utc(_datetime(method.get("createdDateTime"))) or datetime.now(UTC)
    start = _utc(_datetime(method.get("startDateTime"))) or created
    try:
        reason = UsabilityReason(_text(method.get("methodUsabilityReason")) or "Unknown")
    except ValueError:
        reason = UsabilityReason.UNKNOWN
    return PassInfo(
        method_id=_text(method.get("id")) or "",
        created_at=created,
        start_at=start,
        lifetime_minutes=_int(method.get("lifetimeInMinutes")) or 0,
        one_time=method.get("isUsableOnce") is True,
        usable=method.get("isUsable") is True,
        usability_reason=reason,
    )


def _datetime(value: object) -> datetime | None:
    """An ISO 8601 date-time from Graph (`2026-11-02T09:00:00Z`, up to 7 fractional digits); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- URL expansion --------------------------------------------------------------------------------------------
# kiota expands each request's URI template (RFC 6570) with a character-by-character pure-Python expander: about a
# sixth of the bot's CPU per command. The templates msgraph generates use three forms only: `{+baseurl}`, `{name}`
# and `{?a,b}`. Those are compiled once per template here and expanded with `urllib.parse.quote`; anything else
# (or a value of another type) returns None and the SDK expands it as before. Tests compare both expansions.
_EXPRESSION = re.compile(r"\{([+?]?)([^{}]*)\}")
_RESERVED_SAFE = ":/?#[]@!$&'()*+,;="
_PERCENT_TRIPLET = re.compile(r"%[0-9A-Fa-f]{2}")


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> tuple[tuple[str, str, tuple[str, ...]], ...] | None:
    parts: list[tuple[str, str, tuple[str, ...]]] = []
    position = 0
    for found in _EXPRESSION.finditer(template):
        parts.append(("", template[position : found.start()], ()))
        operator, names = found.group(1), tuple(found.group(2).split(","))
        if any(not name or name.endswith("*") or ":" in name for name in names) or (operator == "+" and len(names) > 1):
            return None  # explode and prefix modifiers, or several reserved variables: leave to the SDK
        parts.append((operator or "=", "", names))
        position = found.end()
    tail = template[position:]
    if "{" in tail or "}" in tail:
        return None
    parts.append(("", tail, ()))
    return tuple(parts)


def _rendered(value: object, *, reserved: bool) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if reserved:
            if "%" in _PERCENT_TRIPLET.sub("", value):
                return None  # a lone '%' in a reserved expansion: the SDK decides
            return quote(value, safe=_RESERVED_SAFE + "%")
        return quote(value, safe="")
    if isinstance(value, list) and not reserved:
        items = [_rendered(item, reserved=False) for item in cast(list[object], value)]
        if any(item is None for item in items):
            return None
        return ",".join(cast(list[str], items))
    return None


def expanded_url(request: RequestInformation) -> str | None:
    """The request's URL as kiota would expand it, or None to let kiota do it (a raw URL, an unusual template)."""
    path_parameters = request.path_parameters
    if path_parameters.get(RequestInformation.RAW_URL_KEY) or not request.url_template:
        return None
    compiled = _compiled(request.url_template)
    if compiled is None:
        return None
    sanitize = request._get_sanitized_value
    values = {key: sanitize(value) for key, value in request.query_parameters.items()}
    values.update({key: sanitize(value) for key, value in path_parameters.items()})
    out: list[str] = []
    for operator, literal, names in compiled:
        if not operator:
            out.append(literal)
            continue
        separator = "?"
        for name in names:
            value = values.get(name)
            if value is None or value == []:
                continue  # undefined: RFC 6570 leaves it out
            rendered = _rendered(value, reserved=operator == "+")
            if rendered is None:
                return None
            if operator == "?":
                out.append(f"{separator}{name}={rendered}")
                separator = "&"
            else:
                out.append(rendered)
    return "".join(out)
