"""The Graph client: azure-identity credential, kiota request adapter and HTTP transport, and model warm-up."""

from __future__ import annotations

import importlib.util
import sys
from http.cookiejar import CookieJar
from typing import Any

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.request_option import RequestOption
from kiota_abstractions.serialization import Parsable, ParsableFactory
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import (
    BaseMiddleware,
    BodyInspectionHandler,
    HeadersInspectionHandler,
    ParametersNameDecodingHandler,
    RedirectHandler,
    RetryHandler,
    UrlReplaceHandler,
    UserAgentHandler,
)
from kiota_http.middleware.options import HeadersInspectionHandlerOption, RetryHandlerOption, UserAgentHandlerOption
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.authentication_method_collection_response import AuthenticationMethodCollectionResponse
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core._enums import FeatureUsageFlag
from msgraph_core.middleware import GraphRequestContext, GraphTelemetryHandler

from bot.adapters.graph_adapter import GraphAdapter, Redirects, Retries
from bot.adapters.graph_costs import graph_limits
from bot.adapters.graph_httpx import OnePassClient
from bot.adapters.graph_pacing import PacedTransport
from bot.adapters.graph_transport import AiohttpTransport
from bot.adapters.graph_urls import ParameterNamesDecoded
from bot.domain.pacer import Pacer
from bot.settings import GraphMode, GraphSettings
from bot.telemetry import GraphTelemetryTransport

# httpcore imports the optional `sniffio` package each time a pooled connection is handed out; when it is not
# installed (anyio 4 no longer needs it) every attempt searches sys.path on disk, dozens of times per command.
# Recording it as absent once turns each attempt into a dictionary look-up; httpcore then assumes asyncio, as before.
# kiota's RetryHandler retries 429, 503 and 504; the 429s are the pacer's (graph_pacing.py).
SDK_RETRY_STATUS_CODES = {503, 504}
# kiota's default handlers that change nothing in tapbot's requests, each opening a span per request:
# UrlReplaceHandler turns `/users/TokenToReplace` into `/me` (a URL tapbot never sends) and re-parses every URL to do
# so; BodyInspectionHandler keeps bodies only for a request that asks it to (none does); UserAgentHandler appends the
# same `kiota-python/<version>` to every request's User-Agent, which the client's own User-Agent now carries.
LEFT_OUT_HANDLERS = (UrlReplaceHandler, BodyInspectionHandler, UserAgentHandler)

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


class DelegatedAuthorization(RequestOption):
    """A request option carrying the acting person's delegated Graph token for this one request (a pass write when
    TAPBOT_GRAPH_WRITES=delegated). `repr` never shows it. It stays on the request, so a re-authentication (kiota's
    claims-challenge retry) sends the same token again, never the app's."""

    KEY = "tapbot.delegated_authorization"

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "DelegatedAuthorization(<token hidden>)"

    @staticmethod
    def get_key() -> str:
        return DelegatedAuthorization.KEY

    @property
    def header(self) -> str:
        return f"Bearer {self._token}"


class WritesAsTheirOwner(AuthenticationProvider):
    """The app's own authentication for every request, except one carrying `DelegatedAuthorization`: that one is sent
    with the person's token alone and never reaches the app's provider (whose bearer provider would keep an existing
    Authorization header, but drops it and adds the app's token on a claims challenge)."""

    def __init__(self, app: AuthenticationProvider) -> None:
        self._app = app

    async def authenticate_request(
        self, request: RequestInformation, additional_authentication_context: dict[str, Any] | None = None
    ) -> None:
        option = request.request_options.get(DelegatedAuthorization.KEY)
        if isinstance(option, DelegatedAuthorization):
            request.headers.remove("Authorization")
            request.headers.add("Authorization", option.header)
            return
        await self._app.authenticate_request(request, additional_authentication_context or {})


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


class AnswerCookies(httpx.Cookies):
    """The client's cookies, read from an answer only when it sets one: httpx builds a urllib request and response
    for every answer to look for Set-Cookie headers, and Graph sets no cookie (a cookie set is still kept)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class GraphHttpClient(OnePassClient):
    """The Graph HTTP client (httpx's, building and sending kiota's requests in one pass: graph_httpx.py), whose
    `aclose` also closes its connections whatever middleware transport replaced the client's own (msgraph's did not
    pass `aclose` on; closing twice is harmless), and whose cookies are `AnswerCookies`."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        super().__init__(transport=transport, timeout=timeout)
        self._connections = transport
        self._answer_cookies = AnswerCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._answer_cookies

    @cookies.setter
    def cookies(self, cookies: httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]] | None) -> None:
        self._answer_cookies = AnswerCookies(cookies)

    async def aclose(self) -> None:
        await super().aclose()
        await self._connections.aclose()


class ResponseHeadersInspected(HeadersInspectionHandlerOption):
    """kiota's HeadersInspectionHandlerOption for the answer's headers of these names only (Graph's `request-id`,
    graph_calls._Call), rather than all of them copied into its collection on every answer."""

    def __init__(self, *names: str) -> None:
        super().__init__(inspect_request_headers=False, inspect_response_headers=True)
        self.names = tuple(name.lower() for name in names)


class HeadersInspected(HeadersInspectionHandler):
    """kiota's HeadersInspectionHandler (a request's response headers, for Graph's `request-id`: graph_calls._Call),
    without a span per request, and reading the headers once: kiota's looks each name up again in the whole list.
    A `ResponseHeadersInspected` option gets the headers it names only."""

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        options = self._get_current_options(request)  # cleared for this request, as kiota's does
        if options.inspect_request_headers:
            self._capture_headers(request.headers, options.request_headers)
        response = await BaseMiddleware.send(self, request, transport)
        if options.inspect_response_headers:
            if isinstance(options, ResponseHeadersInspected):
                self._capture_named(response.headers, options.response_headers, options.names)
            else:
                self._capture_headers(response.headers, options.response_headers)
        return response

    def _capture_headers(self, source_headers: httpx.Headers, target_collection: HeadersCollection) -> None:
        """As kiota's: each name once, the values of a single-value header joined, the others kept apart."""
        values_by_name: dict[str, list[str]] = {}
        for name, value in source_headers.multi_items():  # names lower-cased, as iterating the headers gives them
            values_by_name.setdefault(name, []).append(value)
        for name, values in values_by_name.items():
            self._add(target_collection, name, values)

    def _capture_named(
        self, source_headers: httpx.Headers, target_collection: HeadersCollection, names: tuple[str, ...]
    ) -> None:
        for name in names:
            values = source_headers.get_list(name)
            if values:
                self._add(target_collection, name, values)

    @staticmethod
    def _add(target_collection: HeadersCollection, name: str, values: list[str]) -> None:
        if name in HeadersCollection.SINGLE_VALUE_HEADERS:
            target_collection.add(name, ", ".join(values))
        else:
            target_collection.add(name, values)


def kiota_user_agent(client_user_agent: str) -> str:
    """The User-Agent kiota's UserAgentHandler sends: the client's, then `kiota-python/<version>`."""
    option = UserAgentHandlerOption()
    value = f"{option.product_name}/{option.product_version}"
    return client_user_agent if value in client_user_agent else f"{client_user_agent} {value}".strip()


def graph_sdk_headers(base_url: str) -> dict[str, str]:
    """The headers msgraph's GraphTelemetryHandler adds to a request to a Graph cloud (SdkVersion, HostOs,
    RuntimeEnvironment: how Graph tells the SDK and its versions apart), worked out once by that handler itself: they
    are the same on every request. None for another host (the sandbox), as the handler does. The handler also sets
    `client-request-id` when a request has none; tapbot's requests carry their own (graph_calls._Call)."""
    handler = GraphTelemetryHandler()
    probe = httpx.Request("GET", base_url)
    if not handler.is_graph_url(probe.url):
        return {}
    context = GraphRequestContext({}, probe.headers)
    # What msgraph's transport records for a pipeline holding kiota's redirect and retry handlers.
    context.feature_usage = FeatureUsageFlag.REDIRECT_HANDLER_ENABLED
    context.feature_usage = FeatureUsageFlag.RETRY_HANDLER_ENABLED
    probe.context = context  # type: ignore[attr-defined]
    before = set(probe.headers.keys())
    handler._append_sdk_version_header(probe, handler.options)
    handler._add_host_os_header(probe)
    handler._add_runtime_environment_header(probe)
    added = [(name.decode(), value.decode()) for name, value in probe.headers.raw]
    return {name: value for name, value in added if name.lower() not in before}


def graph_middleware(read_retries: dict[str, RequestOption]) -> list[BaseMiddleware]:
    """kiota's default handlers that do something for tapbot's requests: redirects, 503/504 retries of reads (both
    opening their spans only when traced: graph_adapter.py), parameter names decoded (ParameterNamesDecoded), response
    headers inspected (HeadersInspected)."""
    middleware: list[BaseMiddleware] = []
    for handler in KiotaClientFactory.get_default_middleware(read_retries):
        if isinstance(handler, LEFT_OUT_HANDLERS):
            continue
        if isinstance(handler, ParametersNameDecodingHandler):
            handler = ParameterNamesDecoded(handler.options)
        elif isinstance(handler, HeadersInspectionHandler):
            handler = HeadersInspected(handler.options)
        elif isinstance(handler, RedirectHandler):
            handler = Redirects(handler.options)
        elif isinstance(handler, RetryHandler):
            handler = Retries(handler.options)
            handler.retry_on_status_codes = SDK_RETRY_STATUS_CODES
        middleware.append(handler)
    return middleware


def build_graph_client(
    settings: GraphSettings,
    base_url: str,
    *,
    credential: AsyncTokenCredential | None = None,
    pacer: Pacer | None = None,
) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """A Graph client pointed at `base_url` (a national cloud, or the sandbox), and the HTTP client to close.

    `credential` replaces the one the settings describe (the doctor passes the one it has just tested). Every request
    goes through `pacer` (a fresh one with Graph's published limits when none is given; see graph_pacing.py).
    """
    auth_provider: AuthenticationProvider
    if settings.mode in (GraphMode.SANDBOX, GraphMode.ANONYMOUS):
        auth_provider = AnonymousAuthenticationProvider()
    else:
        host = httpx.URL(base_url).host
        auth_provider = AzureIdentityAuthenticationProvider(
            credential or build_credential(settings), scopes=[settings.scope], allowed_hosts=[host]
        )
    # Under kiota's middleware: every attempt, retries included, is admitted by the pacer, then one span with its
    # status (bot/telemetry.py).
    # At the bottom, aiohttp's connections instead of httpcore's (graph_transport.py).
    paced = PacedTransport(pacer or Pacer(graph_limits()), GraphTelemetryTransport(AiohttpTransport()))
    http_client = GraphHttpClient(timeout=httpx.Timeout(settings.timeout_seconds), transport=paced)
    # Reads may be retried by the SDK after a 503 or 504 (they are idempotent), but never for long inside a chat turn.
    # A 429 is the pacer's to retry: the SDK retrying it too would send the requests the pacer plans several times.
    read_retries: dict[str, RequestOption] = {RetryHandlerOption.get_key(): RetryHandlerOption(delay=1, max_retries=2)}
    # The headers kiota's UserAgentHandler and msgraph's GraphTelemetryHandler would add to every request, set once.
    http_client.headers["User-Agent"] = kiota_user_agent(http_client.headers.get("User-Agent", ""))
    http_client.headers.update(graph_sdk_headers(base_url))
    http_client = KiotaClientFactory.create_with_custom_middleware(graph_middleware(read_retries), client=http_client)
    adapter = GraphAdapter(WritesAsTheirOwner(auth_provider), client=http_client)
    # Without an explicit base URL, httpx's own base_url (with a trailing slash) would produce '//users'.
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), http_client
