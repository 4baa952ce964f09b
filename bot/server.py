"""The app factory and composition root: settings in, one aiohttp application out.

`create_app` builds every component from the settings, each given its collaborators in its constructor, and
registers the resources that need opening (database schema, Graph's HTTP client, background work, the health
port) as cleanup contexts: opened in order when the app starts, closed in reverse when it stops. The endpoints live
in bot/web/ (messages, health, middleware); the Teams routing table in bot/teams/agent.py.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from yarl import URL

from bot import telemetry
from bot.adapters.clock import SystemClock
from bot.adapters.downloads import FileTransfers
from bot.adapters.graph import GraphGateway, build_graph_client, load_response_models
from bot.adapters.graph_costs import graph_limits
from bot.adapters.store import SqlStore
from bot.adapters.user_tokens import TokenServiceTokens, bot_framework_token
from bot.components import COMPONENTS, Components
from bot.domain.alerts import AlertService, RefusalAlerts, VelocityLimit
from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalRules
from bot.domain.audit_export import AuditExportService
from bot.domain.bulk_row_runner import RunTiming
from bot.domain.bulk_runner import BulkRunner
from bot.domain.bulk_service import BulkService
from bot.domain.commands import AlertsHereCommand, FormCommand, SignOutCommand
from bot.domain.decisions import DecisionService
from bot.domain.follow_through import FollowThrough
from bot.domain.onboarding import OnboardingDefaults, OnboardingService
from bot.domain.pacer import Pacer
from bot.domain.people import PeopleFinder
from bot.domain.ports import Clock
from bot.domain.service import AccessRules, TapService
from bot.domain.verification import VerificationService
from bot.heap import settle_after_start
from bot.settings import Settings
from bot.teams.agent import TeamsRuntime, build_runtime, register_handlers
from bot.teams.alert_channel import ChannelAlertPoster, SecurityChannelCommand
from bot.teams.approval_flow import ApprovalAnnouncer, ApprovalFlow
from bot.teams.audit_export import AuditExportFlow
from bot.teams.bulk_export import BulkExport, ExportVault
from bot.teams.bulk_flow import BulkFlow
from bot.teams.bulk_results import BulkResults
from bot.teams.commands import CommandRunner, TypedCommands
from bot.teams.delivery import Outbound, PrivateDelivery
from bot.teams.follow_through import FollowThroughFlow, RevokeAndHide, zone_of
from bot.teams.forms import FormFlow, FormSubmissions
from bot.teams.handlers import TapHandlers
from bot.teams.housekeeping import Housekeeping
from bot.teams.message_action import MessageAction
from bot.teams.pass_delivery import PassDelivery
from bot.teams.people_flow import PeopleFlow, PersonChoices
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor
from bot.teams.sign_in import SignIns, SignInSettings, sign_out_off
from bot.teams.turn import Turns
from bot.teams.verification_flow import VerificationFlow
from bot.verified_id_setup import build_verified_id
from bot.web.health import add_health_routes, health_site
from bot.web.messages import messages
from bot.web.middleware import correlation_ids
from bot.web.verified_id import add_verified_id_route
from cards.passes import CardJson, with_banner

if TYPE_CHECKING:
    from bot.sandbox.server import RunningSandbox

__all__ = ["COMPONENTS", "Components", "create_app"]

logger = logging.getLogger(__name__)

SANDBOX_TEXT_PREFIX = "[SANDBOX] "
SHUTDOWN_GRACE_SECONDS = 5.0
OWN_PROCESS = web.AppKey("own_process", bool)


async def create_app(settings: Settings, *, clock: Clock | None = None, own_process: bool = False) -> web.Application:
    """The bot's aiohttp app. `own_process`: the process serves this app alone (app.py), so once the app has started
    and warmed up, the garbage collector is set for a long-running server (bot/heap.py)."""
    clock = clock or SystemClock()
    telemetry.configure(settings.telemetry_connection_string)  # before _compose builds the Graph client
    # The sandbox (development and tests only) runs before the app: its address is the Graph URL every component
    # is built with, and the start banner prints it. It stops with the app.
    sandbox = await _start_sandbox(settings)
    app = web.Application(client_max_size=256 * 1024, middlewares=[telemetry.turns, correlation_ids])
    app[COMPONENTS] = components = _compose(settings, clock, sandbox)
    app[OWN_PROCESS] = own_process
    with warnings.catch_warnings():
        # The SDK's JWT check looks its configuration up under this plain string key.
        warnings.simplefilter("ignore")
        app["agent_configuration"] = components.runtime.auth_configuration
    app.router.add_post("/api/messages", messages)
    app.cleanup_ctx.extend([_sandbox, _database, _graph_http_client, _connector_connections])
    if components.verified_id is not None:  # Verified ID's callbacks, when it is a verification method
        add_verified_id_route(app, components.verified_id.endpoint)
        if components.verified_id.local_address is not None:
            app.middlewares.append(components.verified_id.local_address.learn)
        app.cleanup_ctx.append(_verified_id_http_client)
    if settings.health_port is None:
        add_health_routes(app)
    else:
        app.cleanup_ctx.append(health_site)
    app.cleanup_ctx.append(_background_work)
    return app


async def _start_sandbox(settings: Settings) -> RunningSandbox | None:
    if not settings.sandbox:
        return None
    from bot.sandbox.server import start_sandbox  # a real deployment never loads the emulator
    from bot.sandbox.tenant import load_tenant

    assert settings.sandbox_tenant_file is not None
    tenant = await asyncio.to_thread(load_tenant, settings.sandbox_tenant_file)
    if settings.oauth_connection is None:
        return await start_sandbox(tenant)
    from bot.sandbox.options import SandboxOptions

    # Its token service knows the bot's OAuth connection and app id (delegated writes' sign-in, issue 14).
    options = SandboxOptions(bot_app_id=settings.sso_app_id, oauth_connections=(settings.oauth_connection,))
    return await start_sandbox(tenant, options)


def _compose(settings: Settings, clock: Clock, sandbox: RunningSandbox | None) -> Components:
    """Builds every component; nothing is opened or sent here (the cleanup contexts below do that)."""
    graph_base_url = sandbox.base_url if sandbox is not None else settings.graph.base_url
    store = SqlStore.from_url(settings.database)
    recorded = telemetry.CountedAuditLog(store)
    # Security alerts (issue 12 item 3): audit row, log event, and the security channel's card (poster plugged in
    # below, once Teams delivery exists). Every audited refusal for a privileged or protected account raises one.
    alerts = AlertService(audit=recorded, channels=store, clock=clock)
    audit = RefusalAlerts(recorded, alerts)
    # One pacer for every Graph request of this process: interactive commands and bulk work share Graph's limits.
    pacer = Pacer(graph_limits())
    graph_client, http_client = build_graph_client(settings.graph, graph_base_url, pacer=pacer)
    # In the sandbox its own token service stands in for the Bot Framework's (delegated writes' sign-in).
    runtime = build_runtime(settings, token_service_url=sandbox.root_url if sandbox is not None else None)
    # TAPBOT_GRAPH_WRITES=delegated: pass writes carry the acting person's own token (None: the app's, as before).
    tokens = _delegated_tokens(settings, runtime, store, clock)
    graph = GraphGateway(graph_client, clock, delegated=tokens)
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
        audit=audit,
    )
    # Verification of the person before a recovery pass (TAPBOT_VERIFICATION); None when it is off.
    verification = (
        VerificationService(
            rules=settings.verification,
            store=store,
            directory=graph,
            alerts=alerts,
            audit=audit,
            clock=clock,
        )
        if settings.verification.enabled
        else None
    )
    service = TapService(
        directory=graph,
        passes=graph,
        target_reads=graph,
        audit=audit,
        clock=clock,
        access=AccessRules(
            allowed_tenant_ids=settings.allowed_tenant_ids,
            operator_group_id=settings.operator_group_id,
            protected_group_ids=settings.protected_group_ids,
        ),
        approval_gate=desk,
        locks=store,
        cache_window=timedelta(seconds=settings.directory_cache_seconds),
        reasons=settings.reasons,
        pass_reasons=store,
        pass_writes=store,  # a delivered pass is read again only when the audit log shows a write since its create
        verification=verification,
        velocity=VelocityLimit(limit=settings.velocity_limit, counts=store, alerts=alerts, clock=clock),
        # A pass nobody was shown that could not be deleted: kept for housekeeping to delete, and an alert.
        undelivered=store,
        alerts=alerts,
        transactions=store,  # the lock with the velocity count, the audit row with the lock's release
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
        audit=audit,
    )
    decisions = DecisionService(tap=service, onboarding=onboarding, desk=desk, store=store, clock=clock, audit=audit)

    delivery = PrivateDelivery(
        outbound=Outbound(runtime.client_factory, app_id=settings.bot_client_id), conversations=store, clock=clock
    )
    decorate = with_banner if settings.sandbox else _as_is
    presentation = Presentation(
        default_timezone=settings.default_timezone,
        default_start_hour=settings.default_start_hour,
        decorate=decorate,
        text_prefix=SANDBOX_TEXT_PREFIX if settings.sandbox else "",
    )
    sign_ins = _sign_ins(settings, runtime, tokens, store, delivery, presentation, clock)
    turns = Turns(presentation=presentation, delivery=delivery, sign_in=sign_ins)
    alerts.post_with(ChannelAlertPoster(delivery=delivery, presentation=presentation))
    redactor = CardRedactor(
        cards=store, audit=audit, delivery=delivery, clock=clock, decorate=decorate, transactions=store
    )
    passes = PassDelivery(
        delivery=delivery, store=store, redactor=redactor, service=service, clock=clock, decorate=decorate
    )
    follow_through = FollowThroughFlow(
        follow=FollowThrough(
            store=store,
            methods=graph,
            pending_revokes=store,
            passes=graph,
            retirement=RevokeAndHide(service=service, redactor=redactor),
            clock=clock,
            holder=settings.replica_id,
            revoke_multi_use=settings.revoke_after_registration,
            zone_of=zone_of,
        ),
        store=store,
        delivery=delivery,
        presentation=presentation,
        clock=clock,
        holder=settings.replica_id,
    )
    announcer = ApprovalAnnouncer(desk=desk, delivery=delivery, presentation=presentation)
    # The sandbox's file host stands in for SharePoint and OneDrive.
    sandbox_hosts = (f"127.0.0.1:{URL(sandbox.root_url).port}",) if sandbox is not None else ()
    transfers = FileTransfers((*settings.download_hosts, *sandbox_hosts), settings.bulk_max_bytes)
    bulk_service = BulkService(
        tap=service, directory=graph, passes=graph, store=store, desk=desk, clock=clock, audit=audit, alerts=alerts
    )
    export_vault = ExportVault(clock)
    bulk = BulkFlow(
        bulk=bulk_service,
        runner=BulkRunner(
            tap=service,
            directory=graph,
            passes=graph,
            methods=graph,
            store=store,
            clock=clock,
            audit=audit,
            replica=settings.replica_id,
            lease=timedelta(seconds=settings.lease_seconds),
            timing=RunTiming(ready=pacer.ready),
        ),
        results=BulkResults(
            bulk=bulk_service,
            delivery=delivery,
            cards=store,
            presentation=presentation,
            clock=clock,
            redactor=redactor,
            vault=export_vault,
        ),
        export=BulkExport(
            bulk=bulk_service,
            vault=export_vault,
            transfers=transfers,
            audit=audit,
            clock=clock,
        ),
        transfers=transfers,
        presentation=presentation,
        clock=clock,
        max_rows=settings.bulk_max_rows,
        announce=announcer.announce,
    )
    approvals = ApprovalFlow(
        desk=desk,
        decisions=decisions,
        delivery=delivery,
        passes=passes,
        presentation=presentation,
        on_bulk_approved=bulk.approved,
        sign_in=sign_ins,  # delegated writes: an approver's sign-in card, and their approval after it
    )
    verifications = (
        VerificationFlow(
            service=verification,
            tap=service,
            onboarding=onboarding,
            delivery=delivery,
            passes=passes,
            announcer=announcer,
            presentation=presentation,
            clock=clock,
            conversations=store,
            sign_in=sign_ins,  # delegated writes: the technician's sign-in card, and the verified pass after it
        )
        if verification is not None
        else None
    )
    # Verified ID with Face Check, a method of that flow when TAPBOT_VERIFICATION accepts verified_id.
    verified_id = build_verified_id(
        settings, sandbox, flow=verifications, requests=store, directory=graph, audit=audit, clock=clock
    )
    audit_export = AuditExportFlow(
        exports=AuditExportService(operators=service, source=store, audit=audit, clock=clock),
        transfers=transfers,
        clock=clock,
    )
    handlers = TapHandlers(
        service=service,
        onboarding=onboarding,
        desk=desk,
        announcer=announcer,
        passes=passes,
        bulk=bulk,
        delivery=delivery,
        redactor=redactor,
        store=store,
        clock=clock,
        presentation=presentation,
        audit_export=audit_export,
        verifications=verifications,
    )
    finder = PeopleFinder(tap=service, onboarding=onboarding, directory=graph, audit=audit, clock=clock)
    forms = FormFlow(
        service=service,
        people=finder,
        reasons=settings.reasons,
        onboarding_lifetime_minutes=settings.onboarding.lifetime_minutes,
        default_start_hour=settings.default_start_hour,
        clock=clock,
    )
    command_handlers = (
        handlers.command_handlers()
        .add(FormCommand, forms.open)
        .add(AlertsHereCommand, SecurityChannelCommand(alerts=alerts, service=service).on_alerts_here)
        .add(SignOutCommand, sign_ins.on_sign_out if sign_ins is not None else sign_out_off)
    )
    runner = CommandRunner(handlers=command_handlers, people=PeopleFlow(finder=finder))
    if sign_ins is not None:
        sign_ins.run_commands_with(runner)  # a command that waited for its sign-in runs again, as if typed
        bulk.use_sign_in(sign_ins, store)  # a bulk job paused for its requester's sign-in goes on after it
    messages = TypedCommands(
        runner=runner,
        bulk=bulk,
        delivery=delivery,
        store=store,
        clock=clock,
        presentation=presentation,
        sign_in_codes=sign_ins,
    )
    register_handlers(
        runtime,
        turns=turns,
        messages=messages,
        choices=PersonChoices(runner=runner, clock=clock),
        forms=forms,
        form_submissions=FormSubmissions(forms=forms, runner=runner),
        message_action=MessageAction(forms=forms, runner=runner),
        handlers=handlers,
        approvals=approvals,
        bulk=bulk,
        audit_export=audit_export,
        verifications=verifications,
        sign_ins=sign_ins,
    )
    return Components(
        settings=settings,
        store=store,
        graph=graph,
        graph_base_url=graph_base_url,
        http_client=http_client,
        sandbox=sandbox,
        runtime=runtime,
        service=service,
        desk=desk,
        decisions=decisions,
        bulk=bulk,
        commands=runner,
        housekeeping=Housekeeping(
            redactor=redactor,
            approvals=approvals,
            bulk=bulk,
            verifications=verifications,
            verified_id_expiry=verified_id.endpoint.expire_due if verified_id else None,
            follow_through=follow_through.round,
        ),
        verified_id=verified_id,
        pacer=pacer,
        delegated_tokens=tokens,
    )


def _as_is(card: CardJson) -> CardJson:
    return card


def _delegated_tokens(
    settings: Settings, runtime: TeamsRuntime, store: SqlStore, clock: Clock
) -> TokenServiceTokens | None:
    """The technicians' own Graph tokens, from the Bot Framework token service (None in application mode)."""
    if not settings.delegated_writes or settings.oauth_connection is None:
        return None
    return TokenServiceTokens(
        users=store,
        connection=settings.oauth_connection,
        endpoint=runtime.token_service_url,
        app_id=settings.sso_app_id,
        bot_token=bot_framework_token(None if settings.anonymous else runtime.application.connection_manager),
        clock=clock,
    )


def _sign_ins(
    settings: Settings,
    runtime: TeamsRuntime,
    tokens: TokenServiceTokens | None,
    store: SqlStore,
    delivery: PrivateDelivery,
    presentation: Presentation,
    clock: Clock,
) -> SignIns | None:
    """Delegated writes' sign-in at the Teams edge (bot/teams/sign_in.py); None when the bot writes with its own
    permission (TAPBOT_GRAPH_WRITES=application)."""
    if tokens is None or settings.oauth_connection is None:
        return None
    return SignIns(
        settings=SignInSettings(
            connection_name=settings.oauth_connection,
            app_id=settings.sso_app_id,
            allowed_tenant_ids=settings.allowed_tenant_ids,
            typed_codes=settings.sandbox,  # the sandbox has no single sign-on; Teams never needs a typed code
        ),
        clients=runtime.client_factory,
        tokens=tokens,
        waits=store,
        processed=store,
        delivery=delivery,
        presentation=presentation,
        clock=clock,
    )


# --- resources, opened when the app starts and closed in reverse order when it stops ------------------------


async def _sandbox(app: web.Application) -> AsyncIterator[None]:
    yield
    sandbox = app[COMPONENTS].sandbox
    if sandbox is not None:
        await sandbox.close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    store = app[COMPONENTS].store
    await store.create_schema()
    try:
        yield
    finally:
        await store.close()


async def _graph_http_client(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[COMPONENTS].http_client.aclose()


async def _connector_connections(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[COMPONENTS].runtime.client_factory.close()


async def _verified_id_http_client(app: web.Application) -> AsyncIterator[None]:
    yield
    verified_id = app[COMPONENTS].verified_id
    if verified_id is not None:
        await verified_id.http_client.aclose()


async def _warm_up(*, settle_heap: bool) -> None:
    await asyncio.to_thread(load_response_models)
    if settle_heap:
        settle_after_start()


async def _background_work(app: web.Application) -> AsyncIterator[None]:
    """Graph's response models loaded off the event loop, housekeeping rounds, and bulk jobs left without a runner.
    On stop: housekeeping finishes its round, running bulk jobs stop at a row boundary (another replica, or this
    one when it starts again, resumes them)."""
    components = app[COMPONENTS]
    warm_up = asyncio.create_task(_warm_up(settle_heap=app[OWN_PROCESS]), name="graph-warm-up")
    housekeeping = asyncio.create_task(
        components.housekeeping.run(components.settings.housekeeping_seconds, components.stopping),
        name="housekeeping",
    )
    await components.bulk.adopt()
    yield
    components.stopping.set()
    await components.bulk.stop()
    for task in (housekeeping, warm_up):
        try:
            await asyncio.wait_for(task, SHUTDOWN_GRACE_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("background task %s failed", task.get_name())
