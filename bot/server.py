"""The app factory: composes store, Graph, domain and the Teams runtime into one aiohttp application."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web
from aiohttp.typedefs import Handler
from microsoft_agents.activity import Activity
from microsoft_agents.hosting.aiohttp import jwt_authorization_decorator, start_agent_process
from yarl import URL

from bot import telemetry
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
from bot.health import ReadinessCache
from bot.logging_setup import (
    CONSOLE_LINE,
    TURN_LOGGER,
    bind_correlation_id,
    correlated,
    correlation_id,
    new_correlation_id,
)
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.sandbox.server import RunningSandbox
from bot.teams.activity import clean_text
from bot.teams.agent import TeamsRuntime, build_runtime, register_handlers
from bot.teams.approval_flow import ApprovalFlow
from bot.teams.audit_export import AuditExportFlow
from bot.teams.bulk_flow import BulkFlow
from bot.teams.delivery import Outbound, PrivateDelivery
from bot.teams.handlers import TapHandlers
from bot.teams.housekeeping import Housekeeping
from bot.teams.pass_delivery import PassDelivery
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor
from bot.teams.trust import token_refusal, unverified_issuer
from cards.passes import with_banner

logger = logging.getLogger(__name__)
turn_logger = logging.getLogger(TURN_LOGGER)  # one line per request to /api/messages

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
    if settings.health_port is None:
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
    else:
        app.cleanup_ctx.append(_health_site)
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
        exports=AuditExportService(operators=service, source=store, audit=store, clock=clock),
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


async def messages(request: web.Request) -> web.StreamResponse:
    components = request.app[COMPONENTS]
    # A token that the channel did not issue is refused before any signing key is fetched for it.
    issuer = unverified_issuer(request.headers.get("Authorization"))
    if not components.settings.anonymous and issuer not in components.runtime.channel_issuers:
        return _refused(401, "Invalid token or authentication failed.")
    return await _authenticated(request)


@jwt_authorization_decorator
async def _authenticated(request: web.Request) -> web.StreamResponse:
    """Runs after the SDK checked the token's signature, lifetime and audience (or found anonymous mode)."""
    components = request.app[COMPONENTS]
    settings = components.settings
    body = await _read_activity(request)
    if isinstance(body, web.Response):
        return body
    bind_correlation_id(new_correlation_id(body.get("id")))
    request[TURN_SUMMARY] = turn_summary(body)
    if not settings.anonymous:
        identity = request.get("claims_identity")
        claims = getattr(identity, "claims", None)
        refusal = await token_refusal(
            claims if isinstance(claims, dict) else {},
            getattr(identity, "security_token", None),
            body,
            app_id=settings.bot_client_id or "",
            issuers=components.runtime.channel_issuers,
        )
        if refusal is not None:
            logger.warning("refused an activity: %s", refusal)
            return _refused(401, "Invalid token or authentication failed.")
    if not components.runtime.connector_hosts.allows(body.get("serviceUrl")):
        logger.warning("refused an activity whose service URL is not an allowed connector host")
        return _refused(401, "The service URL is not an allowed Teams connector address.")
    runtime = components.runtime
    response = await start_agent_process(request, runtime.application, runtime.adapter)
    return response if response is not None else web.Response(status=202)


MAX_JSON_DEPTH = 32
MAX_STRING_LENGTH = 32 * 1024
TURN_SUMMARY = "tapbot_turn_summary"


async def _read_activity(request: web.Request) -> dict[str, Any] | web.Response:
    """The body as an activity, or a 400 saying why not: never an exception on hostile JSON."""
    raw = await request.read()  # within client_max_size; aiohttp keeps the bytes for the SDK's own read
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return _refused(400, "The body is not JSON.")
    if not isinstance(body, dict):
        return _refused(400, "The body must be a JSON object (an activity).")
    problem = _shape_problem(body)
    if problem:
        return _refused(400, problem)
    if not _is_activity(body):
        return _refused(400, "The activity has fields of the wrong type.")
    for name in ("type", "serviceUrl", "channelId"):
        if not isinstance(body.get(name), str):
            return _refused(400, f"The activity has no {name}.")
    return body


def _shape_problem(body: dict[str, Any]) -> str | None:
    """Depth and string sizes, checked without recursion (the SDK and the handlers walk the body again)."""
    stack: list[tuple[object, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"The activity is nested deeper than {MAX_JSON_DEPTH} levels."
        if isinstance(value, dict):
            for key, item in value.items():
                if len(key) > MAX_STRING_LENGTH:
                    return "The activity holds a string that is too long."
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            return "The activity holds a string that is too long."
    return None


def _is_activity(body: dict[str, Any]) -> bool:
    """Whether the SDK's own model takes the body (it parses it again itself). Its validator logs every refusal
    as an error with a traceback; a client's malformed body is not the bot's error, so that log is muted here
    (validation does not await, so no other turn's log falls in between)."""
    sdk_logger = logging.getLogger("microsoft_agents.activity.activity")
    was_disabled = sdk_logger.disabled
    sdk_logger.disabled = True
    try:
        Activity.model_validate(body)
    except Exception:  # pydantic's errors, and the plain Exception the model raises itself
        return False
    finally:
        sdk_logger.disabled = was_disabled
    return True


def _refused(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


def turn_summary(body: dict[str, Any]) -> str:
    """`Adele Vance in personal chat: tap issue …` for the console: who, where, and at most the first two words."""
    sender = body.get("from")
    name = sender.get("name") if isinstance(sender, dict) else None
    conversation = body.get("conversation")
    kind = conversation.get("conversationType") if isinstance(conversation, dict) else None
    where = {"channel": "a channel", "groupChat": "a group chat"}.get(
        kind if isinstance(kind, str) else "", "personal chat"
    )
    kind_of_activity = body.get("type")
    if kind_of_activity == "message":
        words = clean_text(body.get("text") if isinstance(body.get("text"), str) else "").lstrip("/").split()
        what = " ".join(words[:2]) + (" …" if len(words) > 2 else "")
        if not words:
            what = "sent a file" if body.get("attachments") else "(empty message)"
    elif kind_of_activity == "invoke":
        what = f"invoke {body.get('name')}"
    else:
        what = str(kind_of_activity)
    return f"{_printable(name) or 'someone'} in {where}: {_printable(what)}"


def _printable(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else ""
    cleaned = "".join(char if char.isprintable() else " " for char in text[:limit]).strip()
    return cleaned + ("…" if len(text) > limit else "")


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[COMPONENTS].settings
    return web.json_response({"status": "ok", "tenant": "sandbox" if settings.sandbox else "configured"})


async def _health_site(app: web.Application) -> AsyncIterator[None]:
    """/healthz and /readyz on TAPBOT_HEALTH_PORT only: the platform's probes reach that port, the public ingress
    (which forwards PORT) does not."""
    components = app[COMPONENTS]
    health = web.Application()
    health[COMPONENTS] = components
    health.router.add_get("/healthz", healthz)
    health.router.add_get("/readyz", readyz)
    runner = web.AppRunner(health, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, components.settings.host, components.settings.health_port).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the database and Graph answer, else 503 naming what failed (no token needed)."""
    components = request.app[COMPONENTS]
    readiness = await components.readiness.check(components.store, components.graph)  # cached: no Graph per call
    return web.json_response(readiness.document(), status=200 if readiness.ready else 503)


@web.middleware
async def correlation_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gives every request a correlation id that every log line carries: the activity's id for /api/messages, once
    the request is authenticated and its body parsed (the handler rebinds it), else a fresh one. The body is not
    read here: nothing of an unauthenticated request is parsed."""
    with correlated(new_correlation_id(None)):
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
        response.headers["X-Correlation-Id"] = correlation_id() or ""
        return response


def _log_request(request: web.Request, status: int, started: float) -> None:
    if request.path == "/api/messages":
        duration_ms = round((time.monotonic() - started) * 1000)
        summary = request.get(TURN_SUMMARY) or f"{request.method} {request.path}"
        turn_logger.info(
            "handled %s %s: %s",
            request.method,
            request.path,
            status,
            extra={
                "http_status": status,
                "duration_ms": duration_ms,
                CONSOLE_LINE: f"{summary} → {status} ({duration_ms} ms)",
            },
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
