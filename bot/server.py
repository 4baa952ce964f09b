"""The app factory: composes store, Graph, domain and the Teams runtime into one aiohttp application."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

import httpx
from aiohttp import web
from aiohttp.typedefs import Handler
from microsoft_agents.hosting.aiohttp import jwt_authorization_decorator, start_agent_process
from yarl import URL

from bot.adapters.clock import SystemClock
from bot.adapters.downloads import FileTransfers
from bot.adapters.graph import GraphGateway, build_graph_client, load_response_models
from bot.adapters.store import SqlStore
from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalRules
from bot.domain.audit_export import AuditExportService
from bot.domain.bulk_service import BulkService
from bot.domain.decisions import DecisionService
from bot.domain.onboarding import OnboardingDefaults, OnboardingService
from bot.domain.ports import Clock
from bot.domain.service import AccessRules, TapService
from bot import telemetry
from bot.health import ReadinessCache
from bot.logging_setup import correlated, new_correlation_id
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.sandbox.server import RunningSandbox
from bot.teams.agent import TeamsRuntime, build_runtime, register_handlers
from bot.teams.approval_flow import ApprovalFlow
from bot.teams.audit_export import AuditExportFlow, StoredAuditRows
from bot.teams.bulk_flow import BulkFlow
from bot.teams.delivery import Outbound, PrivateDelivery
from bot.teams.handlers import TapHandlers
from bot.teams.housekeeping import Housekeeping
from bot.teams.pass_delivery import PassDelivery
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor
from cards.passes import with_banner

logger = logging.getLogger(__name__)

SANDBOX_TEXT_PREFIX = "[SANDBOX] "
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass
class Components:
    """Everything the running app holds, so tests and shutdown can reach it."""

    settings: Settings
    store: SqlStore
    graph: GraphGateway
    service: TapService
    runtime: TeamsRuntime
    housekeeping: Housekeeping
    graph_base_url: str
    sandbox: RunningSandbox | None
    http_client: httpx.AsyncClient
    desk: ApprovalDesk
    decisions: DecisionService
    bulk: BulkFlow
    redaction_task: asyncio.Task[None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    warm_up_task: asyncio.Task[None] | None = None
    readiness: ReadinessCache = field(default_factory=ReadinessCache)


COMPONENTS = web.AppKey("components", Components)


async def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    clock = clock or SystemClock()
    telemetry.configure(settings.telemetry_connection_string)  # before _compose builds the Graph client
    components = await _compose(settings, clock)
    app = web.Application(client_max_size=256 * 1024, middlewares=[telemetry.turns, correlation_ids])
    app[COMPONENTS] = components
    with warnings.catch_warnings():
        # The SDK's JWT check looks its configuration up under this plain string key.
        warnings.simplefilter("ignore")
        app["agent_configuration"] = components.runtime.auth_configuration
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.on_startup.append(_start_background_work)
    app.on_cleanup.append(_close)
    return app


async def _compose(settings: Settings, clock: Clock) -> Components:
    sandbox: RunningSandbox | None = None
    graph_base_url = settings.graph.base_url
    if settings.sandbox:
        from bot.sandbox.server import start_sandbox  # a real deployment never loads the emulator
        from bot.sandbox.tenant import load_tenant

        assert settings.sandbox_tenant_file is not None
        sandbox = await start_sandbox(await asyncio.to_thread(load_tenant, settings.sandbox_tenant_file))
        graph_base_url = sandbox.base_url
    store = SqlStore.from_url(settings.database)
    telemetry.count_audit_events(store)
    await store.create_schema()
    graph_client, http_client = build_graph_client(settings.graph, graph_base_url)
    graph = GraphGateway(graph_client, clock)
    approval_settings = settings.approvals
    desk = ApprovalDesk(
        store=store,
        rules=ApprovalRules(
            onboarding_needs_approval=settings.onboarding.needs_approval,
            lifetime_threshold_minutes=approval_settings.lifetime_threshold_minutes,
            bulk_row_threshold=approval_settings.bulk_row_threshold,
            request_lifetime=timedelta(hours=approval_settings.request_hours),
        ),
        clock=clock,
        audit=store,
    )
    service = TapService(
        directory=graph,
        passes=graph,
        audit=store,
        clock=clock,
        access=AccessRules(
            allowed_tenant_ids=settings.allowed_tenant_ids,
            operator_group_id=settings.operator_group_id,
            protected_group_ids=settings.protected_group_ids,
        ),
        approval_gate=desk,
        locks=store,
    )
    onboarding = OnboardingService(
        tap=service,
        directory=graph,
        desk=desk,
        defaults=OnboardingDefaults(
            lifetime_minutes=settings.onboarding.lifetime_minutes,
            one_time=settings.onboarding.one_time,
            first_day_hour=settings.onboarding.first_day_hour,
            tenant_timezone=settings.onboarding.tenant_timezone,
        ),
        clock=clock,
        audit=store,
    )
    decisions = DecisionService(tap=service, onboarding=onboarding, desk=desk, store=store, clock=clock, audit=store)
    runtime = build_runtime(settings)
    delivery = PrivateDelivery(Outbound(runtime.client_factory, app_id=settings.bot_client_id), store, clock)
    decorate = partial(with_banner) if settings.sandbox else _unchanged
    presentation = Presentation(
        default_timezone=settings.default_timezone,
        default_start_hour=settings.default_start_hour,
        decorate=decorate,
        text_prefix=SANDBOX_TEXT_PREFIX if settings.sandbox else "",
    )
    redactor = CardRedactor(store, delivery, clock, decorate=decorate)
    passes = PassDelivery(
        delivery=delivery, store=store, redactor=redactor, service=service, clock=clock, decorate=decorate
    )
    approvals = ApprovalFlow(
        desk=desk, decisions=decisions, delivery=delivery, passes=passes, presentation=presentation
    )
    transfers = FileTransfers(settings.download_hosts, settings.bulk_max_bytes)
    if sandbox is not None:
        transfers.allow(f"127.0.0.1:{URL(sandbox.root_url).port}")  # the sandbox stands in for SharePoint
    bulk_service = BulkService(
        tap=service, directory=graph, passes=graph, store=store, desk=desk, clock=clock, audit=store
    )
    bulk = BulkFlow(
        bulk=bulk_service,
        transfers=transfers,
        delivery=delivery,
        store=store,
        presentation=presentation,
        clock=clock,
        max_rows=settings.bulk_max_rows,
        announce=approvals.announce,
        replica=settings.replica_id,
        lease=timedelta(seconds=settings.lease_seconds),
        redactor=redactor,
    )
    approvals.on_bulk_approved = bulk.approved
    audit_export = AuditExportFlow(
        exports=AuditExportService(operators=service, source=StoredAuditRows(store), audit=store, clock=clock),
        transfers=transfers,
        delivery=delivery,
        presentation=presentation,
        clock=clock,
    )
    handlers = TapHandlers(
        service=service,
        onboarding=onboarding,
        desk=desk,
        approvals=approvals,
        passes=passes,
        bulk=bulk,
        delivery=delivery,
        redactor=redactor,
        store=store,
        clock=clock,
        presentation=presentation,
        audit_export=audit_export,
    )
    register_handlers(runtime, handlers, approvals, bulk, audit_export)
    housekeeping = Housekeeping(redactor, approvals, bulk)
    return Components(
        settings,
        store,
        graph,
        service,
        runtime,
        housekeeping,
        graph_base_url,
        sandbox,
        http_client,
        desk,
        decisions,
        bulk,
    )


def _unchanged(card: dict) -> dict:
    return card


@jwt_authorization_decorator
async def messages(request: web.Request) -> web.StreamResponse:
    if not await _service_url_matches_token(request):
        return web.json_response({"error": "Invalid token or authentication failed."}, status=401)
    runtime = request.app[COMPONENTS].runtime
    response = await start_agent_process(request, runtime.application, runtime.adapter)
    return response if response is not None else web.Response(status=202)


async def _service_url_matches_token(request: web.Request) -> bool:
    """A Bot Framework token names the service URL it was issued for; the SDK does not compare it with the
    activity's, so a valid token replayed with another serviceUrl would make the bot send replies there."""
    identity = request.get("claims_identity")
    claims = getattr(identity, "claims", None) or {}
    expected = claims.get("serviceurl") if isinstance(claims, dict) else None
    if not expected:
        return True  # anonymous (sandbox) turns carry no claims
    try:
        activity = await request.json()
    except ValueError:
        return False
    actual = activity.get("serviceUrl") if isinstance(activity, dict) else None
    return isinstance(actual, str) and actual.rstrip("/").lower() == str(expected).rstrip("/").lower()


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[COMPONENTS].settings
    return web.json_response({"status": "ok", "tenant": "sandbox" if settings.sandbox else "configured"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the database and Graph answer, else 503 naming what failed (no token needed)."""
    components = request.app[COMPONENTS]
    readiness = await components.readiness.check(components.store, components.graph)  # cached: no Graph per call
    return web.json_response(readiness.document(), status=200 if readiness.ready else 503)


@web.middleware
async def correlation_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives every request a correlation id (the activity's id for /api/messages) that every log line carries."""
    activity_id: object = None
    if request.method == "POST" and request.path == "/api/messages" and request.can_read_body:
        try:
            body = await request.json()  # aiohttp keeps the bytes: the SDK reads them again
        except ValueError:
            body = None
        activity_id = body.get("id") if isinstance(body, dict) else None
    with correlated(new_correlation_id(activity_id)) as correlation_id:
        started = time.monotonic()
        try:
            response = await handler(request)
        except web.HTTPException as answer:  # an answer given by raising (413, 405, …)
            _log_request(request, answer.status, started)
            raise
        except Exception:
            logger.exception("%s %s failed", request.method, request.path)  # here the turn's id is still known
            raise
        _log_request(request, response.status, started)
        response.headers["X-Correlation-Id"] = correlation_id
        return response


def _log_request(request: web.Request, status: int, started: float) -> None:
    if request.path == "/api/messages":
        logger.info(
            "handled %s %s: %s",
            request.method,
            request.path,
            status,
            extra={"http_status": status, "duration_ms": round((time.monotonic() - started) * 1000)},
        )


async def _start_background_work(app: web.Application) -> None:
    components = app[COMPONENTS]
    components.warm_up_task = asyncio.create_task(asyncio.to_thread(load_response_models), name="graph-warm-up")
    components.redaction_task = asyncio.create_task(
        components.housekeeping.run(components.settings.housekeeping_seconds, components.stopping),
        name="housekeeping",
    )
    await components.bulk.adopt()


async def _close(app: web.Application) -> None:
    components = app[COMPONENTS]
    components.stopping.set()
    await components.bulk.stop()
    for task in (components.redaction_task, components.warm_up_task):
        if task is None:
            continue
        try:
            await asyncio.wait_for(task, SHUTDOWN_GRACE_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("background task %s failed", task.get_name())
    await components.http_client.aclose()
    await components.store.close()
    if components.sandbox is not None:
        await components.sandbox.close()
