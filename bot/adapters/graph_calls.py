"""How the Graph gateway sends a request: per-call options, paging, and answers parsed with json.loads."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.request_option import RequestOption
from kiota_abstractions.serialization import ParsableFactory
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from bot.adapters.graph_client import ResponseHeadersInspected
from bot.adapters.graph_errors import _fields, _translate, _unavailable
from bot.adapters.graph_urls import expanded_url
from bot.domain.errors import GraphRejected

logger = logging.getLogger("bot.adapters.graph")  # the logger name the Graph adapter always used

T = TypeVar("T")

# Graph's answer on PIM endpoints in a tenant without Entra ID P2 / ID Governance: no PIM, so no eligibility.
PIM_UNLICENSED_CODE = "AadPremiumLicenseRequired"
# A collection longer than this many pages is refused rather than read half (deny by default).
MAX_PAGES = 50
# Graph's failures become ODataError (status, code, message, request id), as the SDK's own calls do.
ERROR_MAPPING: dict[str, type[ParsableFactory[Any]]] = {"XXX": ODataError}


def client_request_id() -> str:
    """`str(uuid.uuid4())` without the UUID object: 122 random bits from os.urandom, the version nibble 4 and the
    RFC 4122 variant bits, in the same 8-4-4-4-12 lower-case form (a third of the CPU, and one per batch item)."""
    digits = os.urandom(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


@dataclass
class _Call:
    """Options for one Graph request: SDK retry switched off when asked, response headers captured."""

    no_retry: bool = False

    def __post_init__(self) -> None:
        self.headers = ResponseHeadersInspected("request-id")

    def configuration(self, query: Any = None, headers: Mapping[str, str] | None = None) -> RequestConfiguration[Any]:
        options: list[RequestOption] = [self.headers]
        if self.no_retry:
            options.append(RetryHandlerOption(max_retries=0, should_retry=False))
        configuration: RequestConfiguration[Any] = RequestConfiguration(options=options, query_parameters=query)
        configuration.headers.add("client-request-id", client_request_id())
        for name, value in (headers or {}).items():
            configuration.headers.add(name, value)
        return configuration

    @property
    def request_id(self) -> str | None:
        values = self.headers.response_headers.get("request-id")
        return next(iter(values), None) if values else None


class TooManyPages(GraphRejected):
    """A collection longer than the pages a caller allows: refused rather than read half."""


class _Pager(Protocol):
    """A collection request builder: the first page's request, `with_url` for the pages after it."""

    def to_get_request_information(self, request_configuration: Any = None) -> RequestInformation: ...

    def with_url(self, raw_url: str) -> Any: ...


class GraphCalls:
    """The plumbing GraphGateway's calls share: reads, pages and JSON answers, Graph errors translated."""

    _client: GraphServiceClient
    _users: tuple[GraphServiceClient, UsersRequestBuilder]

    def _user(self, reference: str) -> UserItemRequestBuilder:
        # msgraph builds `users` anew (a function-level import, a builder, its parameters copied) on every access;
        # `by_user_id` copies the parameters it hands on, so one builder per client serves every call.
        cached = self.__dict__.get("_users")
        if cached is None or cached[0] is not self._client:
            cached = self._users = (self._client, self._client.users)
        return cached[1].by_user_id(reference)

    async def _read_pages(
        self,
        what: str,
        builder: _Pager,
        query: Any,
        *,
        headers: Mapping[str, str] | None = None,
        pim: bool = False,
        max_pages: int = MAX_PAGES,
    ) -> list[dict[str, Any]]:
        """Every page of a collection, following `@odata.nextLink`. With `pim`, Graph's "this tenant has no PIM
        licence" answer means an empty collection: without PIM nobody can be eligible for anything."""
        pages: list[dict[str, Any]] = []
        next_link: str | None = None
        while len(pages) < max_pages:
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
            raise TooManyPages(f"Microsoft Graph answered too many pages when I tried to {what}; nothing was decided.")
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
