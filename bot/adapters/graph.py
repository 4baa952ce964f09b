"""Microsoft Graph, through msgraph-sdk: the only module that imports msgraph or azure-identity.

One class, one method per Graph call the bot makes, Graph errors translated into domain errors here.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

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
from msgraph.generated.models.authentication_method_collection_response import AuthenticationMethodCollectionResponse
from msgraph.generated.models.authentication_method_configuration import AuthenticationMethodConfiguration
from msgraph.generated.models.authentication_method_target_type import AuthenticationMethodTargetType
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
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
from msgraph.generated.models.user import User
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_response import (
    CheckMemberGroupsPostResponse,
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


def load_response_models() -> None:
    """Parses one sample of every Graph answer the bot reads, so their model modules are imported.

    msgraph-sdk imports hundreds of model modules the first time it parses a user: about a second that would
    otherwise land on the first operator's command. Run it in a thread at start-up.
    """
    samples: list[tuple[ParsableFactory[Parsable], dict[str, Any]]] = [
        (User, {"id": "warm-up", "userPrincipalName": "warm-up@example.invalid"}),
        (TemporaryAccessPassAuthenticationMethodCollectionResponse, {"value": [{"id": "m", "lifetimeInMinutes": 60}]}),
        (UnifiedRoleAssignmentCollectionResponse, {"value": [{"id": "r", "roleDefinition": {"id": "d"}}]}),
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
    http_client = httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_seconds))
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

    def configuration(self, query: Any = None) -> RequestConfiguration[Any]:
        options: list[RequestOption] = [self.headers]
        if self.no_retry:
            options.append(RetryHandlerOption(max_retries=0, should_retry=False))
        configuration: RequestConfiguration[Any] = RequestConfiguration(options=options, query_parameters=query)
        configuration.headers.add("client-request-id", str(uuid.uuid4()))
        return configuration

    @property
    def request_id(self) -> str | None:
        values = self.headers.response_headers.get("request-id")
        return next(iter(values), None) if values else None


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
        escaped = user_id.replace("'", "''")
        query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"principalId eq '{escaped}'", expand=["roleDefinition"]
        )
        response = await self._read(
            "read directory roles",
            lambda call: self._client.role_management.directory.role_assignments.get(call),
            query,
        )
        names = []
        for assignment in (response.value or []) if response else []:
            definition = assignment.role_definition
            names.append(definition.display_name if definition and definition.display_name else "a directory role")
        return tuple(sorted(set(names)))

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
