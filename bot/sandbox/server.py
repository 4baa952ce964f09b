"""The sandbox tenant as an aiohttp application: Graph under /v1.0, the control plane under /_sandbox."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.sandbox.access_log import PathOnlyAccessLogger
from bot.sandbox.app_keys import GRAPH_ROUTER, REQUEST_IDS, SANDBOX_STATE, RequestIds
from bot.sandbox.batch import serve_batch
from bot.sandbox.control import CONTROL_PREFIX, setup_control_routes
from bot.sandbox.errors import GraphError, default_code_for
from bot.sandbox.graph_handlers import build_graph_router
from bot.sandbox.http_responses import http_error, to_http_response
from bot.sandbox.identity_routes import setup_identity_routes
from bot.sandbox.options import SandboxOptions
from bot.sandbox.routing import MALFORMED_BODY, GraphRequest, serve_graph_request
from bot.sandbox.state import SandboxState
from bot.sandbox.tenant import Tenant
from bot.sandbox.verified_id_routes import SERVICE_PREFIX, setup_verified_id_routes

logger = logging.getLogger(__name__)

GRAPH_PREFIX = "/v1.0"
SHUTDOWN_TIMEOUT_S = 1.0


def create_sandbox_app(tenant: Tenant, options: SandboxOptions | None = None) -> web.Application:
    app = web.Application(middlewares=[graph_envelope_middleware])
    app[SANDBOX_STATE] = SandboxState(tenant, options or SandboxOptions())
    app[GRAPH_ROUTER] = build_graph_router()
    app.router.add_route("*", GRAPH_PREFIX + "/{tail:.*}", graph_endpoint)
    setup_control_routes(app)
    setup_verified_id_routes(app, CONTROL_PREFIX)
    setup_identity_routes(app, CONTROL_PREFIX)
    return app


@web.middleware
async def graph_envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives every answer Graph's request-id headers, and aiohttp's own errors Graph's error envelope."""
    ids = RequestIds(
        request_id=str(uuid.uuid4()),
        client_request_id=request.headers.get("client-request-id") or str(uuid.uuid4()),
    )
    request[REQUEST_IDS] = ids
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status == 404:
            message = (
                f"No sandbox route for '{request.path}'. Graph is served under {GRAPH_PREFIX}, "
                f"the control plane under {CONTROL_PREFIX}."
            )
        else:
            message = error.reason
        response = http_error(request, GraphError(error.status, default_code_for(error.status), message))
    except Exception:
        logger.exception("sandbox failed on %s %s", request.method, request.path)
        response = http_error(request, GraphError(500, "generalException", "The sandbox failed unexpectedly."))
    response.headers["request-id"] = ids.request_id
    response.headers["client-request-id"] = ids.client_request_id
    return response


async def graph_endpoint(request: web.Request) -> web.Response:
    state = request.app[SANDBOX_STATE]
    if state.options.latency_ms:
        await asyncio.sleep(state.options.latency_ms / 1000)
    ids = request[REQUEST_IDS]
    graph_request = GraphRequest(
        method=request.method.upper(),
        path=request.path.removeprefix(GRAPH_PREFIX) or "/",
        query={name: value for name, value in request.query.items()},
        headers=request.headers,
        body=await _read_json_body(request),
        request_id=ids.request_id,
        client_request_id=ids.client_request_id,
        base_url=str(request.url.origin()) + GRAPH_PREFIX,
    )
    if graph_request.path.rstrip("/").lower() == "/$batch":
        response = await serve_batch(state, request.app[GRAPH_ROUTER], graph_request)
    else:
        response = await serve_graph_request(state, request.app[GRAPH_ROUTER], graph_request)
    return to_http_response(response)


async def _read_json_body(request: web.Request) -> object:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return MALFORMED_BODY


class RunningSandbox:
    """A sandbox listening on a real socket; close it (or use ``async with``) when done."""

    def __init__(self, app: web.Application, runner: web.AppRunner, root_url: str) -> None:
        self.app = app
        self._runner = runner
        self.root_url = root_url
        self.base_url = root_url + GRAPH_PREFIX
        self.control_url = root_url + CONTROL_PREFIX
        self.verified_id_url = root_url + SERVICE_PREFIX  # the Verified ID Request Service's root

    @property
    def state(self) -> SandboxState:
        return self.app[SANDBOX_STATE]

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningSandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_sandbox(
    tenant: Tenant,
    options: SandboxOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSandbox:
    """Serves the tenant on host:port (0 picks a free port); ``.base_url`` is the Graph root to use."""
    app = create_sandbox_app(tenant, options)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log_class=PathOnlyAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    url_host = f"[{host}]" if ":" in host else host
    logger.info("sandbox tenant %s serving on %s:%s", tenant.display_name, url_host, bound_port)
    return RunningSandbox(app, runner, f"http://{url_host}:{bound_port}")
