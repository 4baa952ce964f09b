"""Microsoft Graph, through msgraph-sdk: with its graph_* sibling modules, the only code that imports msgraph or
azure-identity.

One class, one method per Graph call the bot makes, Graph errors translated into domain errors (graph_errors.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import httpx
from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.item.direct_reports.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from bot.adapters.graph_batch import BATCH_LIMIT, BatchItem, SendAlone, post_without_body, send_batch, single_page
from bot.adapters.graph_calls import _Call
from bot.adapters.graph_client import DelegatedAuthorization
from bot.adapters.graph_client import build_credential as build_credential
from bot.adapters.graph_client import build_graph_client as build_graph_client
from bot.adapters.graph_client import load_response_models as load_response_models
from bot.adapters.graph_errors import _fields, _request_id, _retry_after, _translate, _unavailable
from bot.adapters.graph_json import (
    _datetime,
    _directory_user,
    _int,
    _pass_info,
    _targets,
    _utc,
    _values,
    user_search_clauses,
)
from bot.adapters.graph_roles import RefusalReads, grants, group_eligibilities, group_names
from bot.domain.entra_rights import PassWrite, refusal_sentence, unexplained_refusal
from bot.domain.errors import (
    EntraRefused,
    GraphRejected,
    GraphUnavailable,
    Refused,
    SignInRequired,
    TapError,
    Throttled,
)
from bot.domain.follow_through import RegisteredMethod, UserMethods
from bot.domain.model import Caller, DirectoryUser, IssuedPass, PassInfo, PassSecret, TapPolicy
from bot.domain.ports import Clock, DelegatedToken, DelegatedTokens, TargetReading

logger = logging.getLogger(__name__)

USER_FIELDS = [
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "userType",
    "accountEnabled",
    "employeeHireDate",
    "department",
    "jobTitle",
]
# A search asks for at most this many users (Graph's own $top limit on /users is 999).
MAX_SEARCH_RESULTS = 999
CHECK_MEMBER_GROUPS_LIMIT = 20
# How far Graph's clock may trail ours when deciding whether a pass found after an uncertain failure is ours.
CLOCK_SKEW = timedelta(minutes=2)
CREATE_ATTEMPTS = 3
ORPHAN_LEFT_LIVE = (
    "Microsoft Graph did not answer the creation of this user's pass, but made one, and I could not delete it with "
    "your rights (your sign-in has lapsed or Entra refused). Nobody has seen its value, yet it works until {until}: "
    "sign in and revoke it (/tap revoke), or ask an administrator to."
)
# Graph answers `$search` on directory objects only as an advanced query (concepts/aad-advanced-queries.md).
EVENTUAL_CONSISTENCY = {"ConsistencyLevel": "eventual"}
TAP_CONFIGURATION_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration"
TAP_METHOD_TYPE = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
METHODS_READ = "read the user's sign-in methods"


class GraphGateway(RefusalReads):
    """Implements the domain's Directory and PassMethods ports over msgraph-sdk.

    `delegated` (TAPBOT_GRAPH_WRITES=delegated): pass writes are sent with the acting person's own token instead of
    the app's credential; reads stay app-only. None: every request is the app's, as before.
    """

    def __init__(
        self,
        client: GraphServiceClient,
        clock: Clock,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        delegated: DelegatedTokens | None = None,
    ) -> None:
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._delegated = delegated

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

    async def search_users(self, text: str, *, limit: int) -> list[DirectoryUser]:
        """Users whose display name has words starting with the text's words, or whose given name, surname, mail
        or user principal name starts with it: one `GET /users?$search=...` (graph_json.user_search_clauses says
        how it is written). Graph serves `$search` on users only as an advanced query, so the request carries
        `ConsistencyLevel: eventual` (without it Graph answers 400 Request_UnsupportedQuery); `$count` is not
        needed for `$search`. One page of at most `limit` (≤ 999, Graph's `$top` limit) users."""
        search = user_search_clauses(text)
        if search is None or limit < 1:
            return []
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            search=search, top=min(limit, MAX_SEARCH_RESULTS), select=USER_FIELDS
        )
        call = _Call()
        what = "search the directory for users"
        try:
            page = await self._json(
                self._client.users.to_get_request_information(call.configuration(query, EVENTUAL_CONSISTENCY))
            )
        except ODataError as error:
            raise _translate(error, what) from None
        except httpx.HTTPError as error:
            raise _unavailable(what, error) from None
        return [_directory_user(user) for user in _values(page) if isinstance(user, dict)][:limit]

    async def direct_reports(self, manager_id: str) -> list[DirectoryUser]:
        """The users who report to the manager (`/users/{id}/directReports/microsoft.graph.user`, every page)."""
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=USER_FIELDS, top=999)
        pages = await self._read_pages(
            "read the manager's direct reports", self._user(manager_id).direct_reports.graph_user, query
        )
        return [_directory_user(user) for page in pages for user in _values(page) if isinstance(user, dict)]

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

    async def target_reading(
        self, user_id: str, group_ids: Iterable[str], *, with_methods: bool = False
    ) -> TargetReading:
        """The target's roles (`directory_roles`' first round), its group check and its current pass as one `$batch`:
        one round trip instead of seven, Graph and the pacer counting each item on its own. An item Graph did not
        answer with a single page (an error, a 429, more pages) is sent again as the single request, so its errors,
        retries and paging are exactly that request's; a group-held role's second round follows (one more batch).

        `with_methods`: the pass is read from the user's sign-in methods list instead (`/authentication/methods`,
        which holds it), and the list's method types are returned too: a verification's requirement needs them, and
        reading them here saves it a request of its own."""
        wanted = sorted(set(group_ids))
        chunks = [
            wanted[start : start + CHECK_MEMBER_GROUPS_LIMIT]
            for start in range(0, len(wanted), CHECK_MEMBER_GROUPS_LIMIT)
        ]
        reads = self.first_round_reads(user_id)
        if len(reads) + 1 + len(chunks) > BATCH_LIMIT:
            role_names, (existing, methods), member_groups = await asyncio.gather(
                self.directory_roles(user_id),
                self._pass_and_methods(user_id, with_methods),
                self.member_groups(user_id, wanted),
            )
            return TargetReading(role_names, member_groups, existing, methods)
        items = [BatchItem(name, read.first_request()) for name, read in reads.items()]
        pass_read = self._user(user_id).authentication.methods if with_methods else self._current_pass_builder(user_id)
        items.append(BatchItem("pass", pass_read.to_get_request_information(_Call().configuration())))
        for index, chunk in enumerate(chunks):
            post = post_without_body(self._user(user_id).check_member_groups, _Call().configuration())
            items.append(BatchItem(f"groups{index}", post, {"groupIds": chunk}))
        answers = await send_batch(self, "read the user's roles, groups and pass", items)

        def pages(name: str) -> Awaitable[list[dict[str, Any]]]:
            return reads[name].answered(self, answers.get(name))

        async def current() -> tuple[PassInfo | None, tuple[str, ...] | None]:
            if with_methods:
                try:
                    listed = single_page(answers.get("pass"), METHODS_READ)
                except SendAlone:
                    return await self._pass_and_methods(user_id, with_methods)
                return await self._pass_from_methods(user_id, listed)
            try:
                methods = _whole_list(single_page(answers.get("pass"), "read the user's pass"), "read the user's pass")
            except SendAlone:
                return await self.current_pass(user_id), None
            return (_pass_info(methods[0]) if methods else None), None

        async def member_of(index: int, chunk: list[str]) -> set[str]:
            try:
                page = single_page(answers.get(f"groups{index}"), "check group membership")
            except SendAlone:
                return set(await self.member_groups(user_id, chunk))
            return {str(group_id) for group_id in _values(page)}

        (
            (member_pages, owned_pages, active_pages, eligible_pages, group_pages),
            (existing, methods),
            found,
        ) = await asyncio.gather(
            asyncio.gather(*(pages(name) for name in ("memberOf", "owned", "active", "eligible", "groupEligible"))),
            current(),
            asyncio.gather(*(member_of(index, chunk) for index, chunk in enumerate(chunks))),
        )
        role_names = await self.roles_through_groups(
            group_names(member_pages),
            group_names(owned_pages),
            [*grants(active_pages, eligible=False), *grants(eligible_pages, eligible=True)],
            group_eligibilities(group_pages),
        )
        return TargetReading(role_names, frozenset(group for groups in found for group in groups), existing, methods)

    async def _pass_and_methods(
        self, user_id: str, with_methods: bool
    ) -> tuple[PassInfo | None, tuple[str, ...] | None]:
        """The single reads `target_reading` stands for: the pass, or with `with_methods` the methods list."""
        if not with_methods:
            return await self.current_pass(user_id), None
        builder = self._user(user_id).authentication.methods
        listed = await self._read_json(METHODS_READ, lambda call: builder.to_get_request_information(call))
        return await self._pass_from_methods(user_id, listed)

    async def _pass_from_methods(
        self, user_id: str, listed: dict[str, Any] | None
    ) -> tuple[PassInfo | None, tuple[str, ...]]:
        """The pass and the method types (as `sign_in_methods` gives them) from the user's methods list. Graph lists
        every method registered to the user, a pass among them, so no pass listed is no pass; a listed pass is
        trusted only with its methodUsabilityReason (as `methods_and_pass` does), else the pass is read itself."""
        types: list[str] = []
        current: PassInfo | None = None
        unsure = False
        for method in _whole_list(listed, METHODS_READ):
            if not isinstance(method, dict):
                continue
            odata_type = str(method.get("@odata.type") or "")
            types.append(odata_type)
            if odata_type == TAP_METHOD_TYPE:
                if "methodUsabilityReason" in method:
                    current = _pass_info(method)
                else:
                    unsure = True
        if unsure:
            current = await self.current_pass(user_id)
        return current, tuple(types)

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
        if response is None or response.value is None or response.odata_next_link:
            raise _incomplete("read the user's sign-in methods")
        return tuple(method.odata_type or "" for method in response.value)

    async def methods_and_pass(self, user_id: str, *, confirm_missing_pass: bool = True) -> UserMethods:
        """Follow-through's one read per check: the user's methods with their createdDateTime, and the pass, which
        the list holds as a temporaryAccessPassAuthenticationMethod; read on its own when the list lacks its
        methodUsabilityReason, or lacks it altogether unless `confirm_missing_pass` is False (a bulk row: Graph lists
        every method registered to the user, a pass among them, so no pass listed is no pass)."""
        builder = self._user(user_id).authentication.methods
        answer = await self._read_json(
            "read the user's sign-in methods", lambda call: builder.to_get_request_information(call)
        )
        methods: list[RegisteredMethod] = []
        current: PassInfo | None = None
        for method in _whole_list(answer, "read the user's sign-in methods"):
            if not isinstance(method, dict):
                continue
            odata_type = str(method.get("@odata.type") or "")
            if odata_type == TAP_METHOD_TYPE:
                # Trusted only with its usability: whether a one-time pass was used is what the check needs.
                if "methodUsabilityReason" in method:
                    current = _pass_info(method)
                else:
                    confirm_missing_pass = True
                continue
            created = _utc(_datetime(method.get("createdDateTime")))
            methods.append(RegisteredMethod(str(method.get("id") or ""), odata_type, created))
        if current is None and confirm_missing_pass:
            current = await self.current_pass(user_id)
        return UserMethods(tuple(methods), current)

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

    def _current_pass_builder(self, user_id: str) -> Any:
        return self._user(user_id).authentication.temporary_access_pass_methods

    async def current_pass(self, user_id: str) -> PassInfo | None:
        builder = self._current_pass_builder(user_id)
        response = await self._read_json("read the user's pass", lambda call: builder.to_get_request_information(call))
        methods = _whole_list(response, "read the user's pass")
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
        acting_as: Caller | None = None,
    ) -> IssuedPass:
        """Creates the pass with the SDK's automatic retry off, and decides retries itself.

        Graph replaces a user's pass on every create, so a blind retry after an answer that never came could
        leave a pass nobody has seen. After an uncertain failure the user's pass is read back: one created
        since this attempt began is ours, with its value lost, and is deleted before trying again.
        """
        del max_throttle_wait  # how long a throttled create may wait is the pacer's lane's (graph_pacing.py)
        token = await self._token_for(acting_as)  # before anything is sent: SignInRequired leaves nothing behind
        body = TemporaryAccessPassAuthenticationMethod(
            lifetime_in_minutes=lifetime_minutes, is_usable_once=one_time, start_date_time=start_at
        )
        methods = self._user(user.object_id).authentication.temporary_access_pass_methods
        last_request_id: str | None = None
        attempt = 0
        refreshed = False
        while attempt < CREATE_ATTEMPTS:
            attempt += 1
            attempt_started = self._clock.now()
            call = _Call(no_retry=True)
            try:
                created = await self._json(methods.to_post_request_information(body, _as(token, call.configuration())))
            except ODataError as error:
                status = error.response_status_code or 0
                last_request_id = _request_id(error)
                if token is not None and status in (401, 403):
                    # Refused before anything was written: a 401 is retried once with a fresh token.
                    token = await self._after_refusal(error, token, acting_as, user, PassWrite.ISSUE, retried=refreshed)
                    refreshed = True
                    attempt -= 1
                    continue
                if status == 429:
                    # The pacer has already waited out Retry-After and sent it again as long as this lane may wait:
                    # another wait here would send requests the pacer did not plan.
                    raise Throttled(_retry_after(error), last_request_id) from None
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
            await self._remove_orphan(user.object_id, attempt_started, replacing, acting_as)
            await self._sleep(0.5 * attempt)
        raise GraphUnavailable(
            "Microsoft Graph did not confirm the new pass, so none was issued (nothing is left behind). "
            "Try again in a minute.",
            last_request_id,
        )

    async def _remove_orphan(
        self, user_id: str, attempt_started: datetime, replacing: PassInfo | None, acting_as: Caller | None
    ) -> None:
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
            try:
                await self.delete_pass(user_id, current.method_id, acting_as=acting_as)
            except (SignInRequired, EntraRefused) as error:
                # Raised on, either would read as "nothing was written" while the pass is live and nobody saw it.
                logger.error(
                    "could not delete the pass an uncertain create left for %s (%s); it stays live",
                    user_id,
                    type(error).__name__,
                    extra=_fields("create the pass", None, target_id=user_id),
                )
                until = current.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
                raise GraphRejected(ORPHAN_LEFT_LIVE.format(until=until)) from None

    async def delete_pass(self, user_id: str, method_id: str, *, acting_as: Caller | None = None) -> str | None:
        token = await self._token_for(acting_as)
        item = self._user(
            user_id
        ).authentication.temporary_access_pass_methods.by_temporary_access_pass_authentication_method_id(method_id)
        call = _Call()
        try:
            try:
                await item.delete(_as(token, call.configuration()))
            except ODataError as error:
                if token is None or error.response_status_code not in (401, 403):
                    raise
                target = DirectoryUser(object_id=user_id, user_principal_name=user_id, display_name="")
                token = await self._after_refusal(error, token, acting_as, target, PassWrite.REVOKE)
                call = _Call()
                await item.delete(_as(token, call.configuration()))
        except ODataError as error:
            if error.response_status_code == 404:
                return _request_id(error)
            if token is not None and error.response_status_code in (401, 403):
                target = DirectoryUser(object_id=user_id, user_principal_name=user_id, display_name="")
                await self._after_refusal(error, token, acting_as, target, PassWrite.REVOKE, retried=True)
            raise _translate(error, "delete the pass") from None
        except httpx.HTTPError as error:
            raise _unavailable("delete the pass", error) from None
        logger.info("Graph deleted a pass", extra=_fields("delete the pass", call.request_id, target_id=user_id))
        return call.request_id

    # --- Delegated writes (TAPBOT_GRAPH_WRITES=delegated) -------------------------------------------------------

    async def _token_for(self, acting_as: Caller | None) -> DelegatedToken | None:
        """The acting person's token for a write; None in application mode. Raises SignInRequired, sending nothing."""
        if self._delegated is None:
            return None
        if acting_as is None:  # a write with nobody's rights: refused rather than made with the app's
            logger.error("a pass write in delegated mode named nobody to act as; nothing was sent")
            raise GraphRejected("This write has no person whose Entra rights to use, so nothing was changed.")
        return await self._delegated.token_for(acting_as)

    async def _after_refusal(
        self,
        error: ODataError,
        token: DelegatedToken,
        acting_as: Caller | None,
        target: DirectoryUser,
        write: PassWrite,
        *,
        retried: bool = False,
    ) -> DelegatedToken:
        """Graph refused a delegated write before writing. 401: the token is dropped and a fresh one returned for one
        more try (a second 401 means a sign-in is needed). 403: EntraRefused with the sentence naming what the person
        lacks, unless Graph's answer is one of the bot's own refusals (policy scope, guest, lifetime)."""
        assert self._delegated is not None and acting_as is not None
        status = error.response_status_code or 0
        if status == 401:
            self._delegated.forget(acting_as.object_id)
            if retried:
                raise SignInRequired(acting_as.object_id) from None
            fresh = await self._delegated.token_for(acting_as)
            if fresh.value == token.value:  # the token service still holds the token Graph refused
                self._delegated.forget(acting_as.object_id)
                raise SignInRequired(acting_as.object_id) from None
            return fresh
        translated = _translate(error, "create the pass" if write is PassWrite.ISSUE else "delete the pass")
        if isinstance(translated, Refused):
            raise translated from None
        raise EntraRefused(await self._refusal_sentence(error, acting_as, target, write), _request_id(error)) from None

    async def _refusal_sentence(
        self, error: ODataError, acting_as: Caller, target: DirectoryUser, write: PassWrite
    ) -> str:
        code = (error.error.code if error.error else None) or None
        request_id = _request_id(error)
        try:
            if not target.display_name:
                target = await self.find_user(target.object_id) or target
            facts = await self.refusal_facts(acting_as.object_id, target, write)
        except TapError:  # the reads failed: Entra's refusal is still said, with its code
            return unexplained_refusal(code, request_id)
        return refusal_sentence(replace(facts, graph_code=code, request_id=request_id))


def _as(token: DelegatedToken | None, configuration: Any) -> Any:
    """The request's configuration, carrying the person's token when the write is delegated."""
    if token is not None:
        configuration.options.append(DelegatedAuthorization(token.value))
    return configuration


def _whole_list(answer: Mapping[str, Any] | None, what: str) -> list[Any]:
    """A user's pass or methods list, which must be whole: read as "none" when its `value` is missing or more pages
    follow, it would let a live pass be replaced unseen, or a recovery pass pass for a first one."""
    values = answer.get("value") if answer is not None else None
    if not isinstance(values, list) or (answer is not None and answer.get("@odata.nextLink")):
        raise _incomplete(what)
    return list(cast(list[Any], values))


def _incomplete(what: str) -> GraphRejected:
    return GraphRejected(f"Microsoft Graph gave an incomplete answer when I tried to {what}; try again in a minute.")
