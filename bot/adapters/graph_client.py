"""The Graph client: azure-identity credential, kiota request adapter and HTTP transport, and model warm-up."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.authentication import AnonymousAuthenticationProvider, AuthenticationProvider
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.request_option import RequestOption
from kiota_abstractions.serialization import Parsable, ParsableFactory
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.authentication_method_collection_response import AuthenticationMethodCollectionResponse
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler

from bot.adapters.graph_costs import graph_limits
from bot.adapters.graph_pacing import PacedTransport
from bot.adapters.graph_transport import AiohttpTransport
from bot.domain.pacer import Pacer
from bot.settings import GraphMode, GraphSettings
from bot.telemetry import GraphTelemetryTransport

# httpcore imports the optional `sniffio` package each time a pooled connection is handed out; when it is not
# installed (anyio 4 no longer needs it) every attempt searches sys.path on disk, dozens of times per command.
# Recording it as absent once turns each attempt into a dictionary look-up; httpcore then assumes asyncio, as before.
# kiota's RetryHandler retries 429, 503 and 504; the 429s are the pacer's (graph_pacing.py).
SDK_RETRY_STATUS_CODES = {503, 504}

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


class GraphHttpClient(httpx.AsyncClient):
    """The Graph HTTP client, whose `aclose` also closes its connections: msgraph's middleware transport, which
    replaces the client's own (GraphClientFactory), does not pass `aclose` on to the transport under it."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        super().__init__(transport=transport, timeout=timeout)
        self._connections = transport

    async def aclose(self) -> None:
        await super().aclose()
        await self._connections.aclose()


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
    middleware = KiotaClientFactory.get_default_middleware(read_retries)
    for handler in middleware:
        if isinstance(handler, RetryHandler):
            handler.retry_on_status_codes = SDK_RETRY_STATUS_CODES
    middleware.append(GraphTelemetryHandler())
    http_client = GraphClientFactory.create_with_custom_middleware(middleware, client=http_client)
    adapter = GraphRequestAdapter(WritesAsTheirOwner(auth_provider), client=http_client)
    # Without an explicit base URL, httpx's own base_url (with a trailing slash) would produce '//users'.
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), http_client
