"""Traces and metrics (OpenTelemetry), exported to Azure Monitor when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set.

Off by default: every hook below then talks to OpenTelemetry's no-op tracer and meter, and neither the SDK nor the
Azure Monitor exporter is imported. With a connection string, ``configure`` builds an SDK tracer and meter provider
that export to Application Insights (traces as requests and dependencies, metrics as custom metrics).

What is recorded, and what never is:

- **Turns** (``tapbot.turn`` spans; ``tapbot.turns`` and ``tapbot.turn.duration``): the HTTP route and status, the
  activity's type, invoke name and conversation type. Never its text, card values or attachments.
- **Graph calls** (``GraphTelemetryTransport``, one span per HTTP attempt, retries included;
  ``tapbot.graph.requests``, ``tapbot.graph.throttled``, ``tapbot.graph.duration``): method, the route with object
  ids and user names replaced by ``{id}`` / ``{user}``, status, ``Retry-After`` and Graph's ``request-id``. Never a
  header value besides those two, a query string or a body (a created pass is in a response body).
- **Audit events** (``tapbot.audit.events``): action, outcome and rule of every audited event: issues, revocations,
  refusals, approvals and decisions, deliveries, bulk rows.
- **Bulk progress** (``tapbot.bulk.rows``): rows finished per job kind and outcome.
- **Alerts** (``tapbot.log.problems``): WARNING and ERROR log records by logger and level (never the message).

The bot's own providers are used, not OpenTelemetry's global ones, so libraries that instrument themselves (kiota
records full URLs) export nothing.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from aiohttp import web
from opentelemetry import metrics, trace
from opentelemetry.environment_variables import OTEL_PYTHON_METER_PROVIDER, OTEL_PYTHON_TRACER_PROVIDER
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter

    from bot.domain.audit import AuditEvent
    from bot.domain.ports import AuditLog

logger = logging.getLogger(__name__)

CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
SERVICE_NAME = "tapbot"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^\d+$")
_KEPT_RESPONSE_HEADERS = ("retry-after", "request-id")
ACCEPTED_ACTIVITY = "tapbot_accepted_activity"  # the request's JSON body, set by /api/messages once it accepts it


@dataclass(frozen=True)
class _Instruments:
    tracer: trace.Tracer
    turns: metrics.Counter
    turn_duration: metrics.Histogram
    graph_requests: metrics.Counter
    graph_throttled: metrics.Counter
    graph_duration: metrics.Histogram
    audit_events: metrics.Counter
    bulk_rows: metrics.Counter
    log_problems: metrics.Counter
    shutdown: Callable[[], None]

    @classmethod
    def from_providers(
        cls, tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider, shutdown: Callable[[], None]
    ) -> _Instruments:
        meter = meter_provider.get_meter(SERVICE_NAME)
        return cls(
            tracer=tracer_provider.get_tracer(SERVICE_NAME),
            turns=meter.create_counter("tapbot.turns", "{turn}", "Requests to /api/messages by activity and status"),
            turn_duration=meter.create_histogram("tapbot.turn.duration", "s", "Time to answer /api/messages"),
            graph_requests=meter.create_counter("tapbot.graph.requests", "{request}", "Graph HTTP attempts"),
            graph_throttled=meter.create_counter("tapbot.graph.throttled", "{request}", "Graph 429 answers"),
            graph_duration=meter.create_histogram("tapbot.graph.duration", "s", "Graph HTTP attempt duration"),
            audit_events=meter.create_counter("tapbot.audit.events", "{event}", "Audited events"),
            bulk_rows=meter.create_counter("tapbot.bulk.rows", "{row}", "Bulk rows finished"),
            log_problems=meter.create_counter("tapbot.log.problems", "{record}", "Warnings and errors logged"),
            shutdown=shutdown,
        )


_OFF = _Instruments.from_providers(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider(), lambda: None)
_active: _Instruments = _OFF
_log_handler: logging.Handler | None = None


# OpenTelemetry loads a global provider named in the environment at its first use.
_TRACER_FROM_ENVIRONMENT = OTEL_PYTHON_TRACER_PROVIDER in os.environ
_METER_FROM_ENVIRONMENT = OTEL_PYTHON_METER_PROVIDER in os.environ


def global_tracer_set() -> bool:
    """Whether OpenTelemetry has a global tracer provider, where the SDKs' own spans (kiota's, the Agents SDK's) go;
    tapbot's telemetry never sets one (it exports through providers of its own). What `trace.get_tracer_provider()`
    tells, without its look-up of the environment at every call."""
    return trace._TRACER_PROVIDER is not None or _TRACER_FROM_ENVIRONMENT  # pyright: ignore[reportPrivateUsage]


def global_meter_set() -> bool:
    """As `global_tracer_set`, for OpenTelemetry's global meter provider."""
    return metrics_internal._METER_PROVIDER is not None or _METER_FROM_ENVIRONMENT  # pyright: ignore[reportPrivateUsage]


def enabled() -> bool:
    return _active is not _OFF


def configure(connection_string: str | None) -> bool:
    """Exports to Azure Monitor when a connection string is given (once per process); True when telemetry is on."""
    if not connection_string or enabled():
        return enabled()
    # Imported only here: a deployment without Application Insights never loads the SDK or the exporter.
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter, AzureMonitorTraceExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    reader = PeriodicExportingMetricReader(
        AzureMonitorMetricExporter.from_connection_string(connection_string), export_interval_millis=60_000
    )
    _install(
        # The exporter reads the service's resource from the provider (else from OpenTelemetry's global one).
        lambda provider: BatchSpanProcessor(
            AzureMonitorTraceExporter.from_connection_string(connection_string, tracer_provider=provider)
        ),
        reader,
    )
    logger.info("telemetry: traces and metrics go to Azure Monitor")
    return True


def install(span_exporter: SpanExporter, metric_reader: MetricReader) -> None:
    """Telemetry to the given exporter and reader, exported as it happens (tests: in-memory ones)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    shutdown()
    _install(lambda _: SimpleSpanProcessor(span_exporter), metric_reader)


def shutdown() -> None:
    """Flushes and stops the providers; every hook is a no-op again."""
    global _active, _log_handler
    previous, _active = _active, _OFF
    if _log_handler is not None:
        logging.getLogger().removeHandler(_log_handler)
        _log_handler = None
    previous.shutdown()


def _install(span_processor: Callable[[Any], Any], metric_reader: MetricReader) -> None:
    global _active, _log_handler
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": SERVICE_NAME})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(span_processor(tracer_provider))
    meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader])

    def stop() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    _active = _Instruments.from_providers(tracer_provider, meter_provider, stop)
    _log_handler = _ProblemCounter()
    logging.getLogger().addHandler(_log_handler)


# --- turns ------------------------------------------------------------------------------------------------------


@web.middleware
def turns(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> Awaitable[web.StreamResponse]:
    """A span and the turn metrics for /api/messages; other paths pass untouched. The activity's type and
    conversation type are read only from a request that was answered below 400 (authenticated and accepted).

    Not a coroutine itself: with telemetry off (or another path) the handler's own is awaited in its place, so
    that this layer is not resumed at every await of every turn."""
    instruments = _active
    if request.path != "/api/messages" or instruments is _OFF:
        return handler(request)
    return _traced_turn(request, handler, instruments)


async def _traced_turn(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    instruments: _Instruments,
) -> web.StreamResponse:
    attributes: dict[str, str | int] = {"http.request.method": request.method, "http.route": "/api/messages"}
    started = time.monotonic()
    with instruments.tracer.start_as_current_span("tapbot.turn", kind=SpanKind.SERVER) as span:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as answer:
            status = answer.status
            raise
        finally:
            if status < 400:  # an authenticated activity the SDK has read: its bytes are parsed, never before
                attributes.update(_activity_attributes(request))
            attributes["http.response.status_code"] = status
            span.set_attributes(attributes)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            instruments.turns.add(1, attributes)
            instruments.turn_duration.record(time.monotonic() - started, attributes)


def _activity_attributes(request: web.Request) -> dict[str, str]:
    """From the body as /api/messages parsed it once it passed its checks (bot/web/messages.py), not parsed again."""
    body = request.get(ACCEPTED_ACTIVITY)
    if not isinstance(body, dict):
        return {}
    attributes: dict[str, str] = {}
    kind = body.get("type")
    if isinstance(kind, str):
        attributes["tapbot.activity.type"] = kind[:40]
    name = body.get("name")
    if isinstance(name, str):
        attributes["tapbot.activity.name"] = name[:60]  # an invoke's name (adaptiveCard/action, fileConsent/invoke)
    conversation = body.get("conversation")
    conversation_type = conversation.get("conversationType") if isinstance(conversation, dict) else None
    attributes["tapbot.conversation.type"] = conversation_type if isinstance(conversation_type, str) else "personal"
    return attributes


# --- Graph calls ------------------------------------------------------------------------------------------------


def route_template(path: str) -> str:
    """``/v1.0/users/AdeleV@contoso.com/authentication/temporaryAccessPassMethods/<guid>`` →
    ``/v1.0/users/{user}/authentication/temporaryAccessPassMethods/{id}``."""
    segments = []
    for segment in path.split("/"):
        if _GUID.match(segment):
            segments.append("{id}")
        elif "@" in segment or "%40" in segment.lower():
            segments.append("{user}")
        elif _NUMBER.match(segment):
            segments.append("{n}")
        else:
            segments.append(segment[:80])
    return "/".join(segments)


class GraphTelemetryTransport(httpx.AsyncBaseTransport):
    """Wraps the transport under kiota's middleware, so every attempt (each retry too) is one span."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        instruments = _active
        if instruments is _OFF:
            return await self._inner.handle_async_request(request)
        route = route_template(request.url.path)
        attributes: dict[str, str | int] = {
            "http.request.method": request.method,
            "url.template": route,
            "server.address": request.url.host,
        }
        started = time.monotonic()
        with instruments.tracer.start_as_current_span(f"{request.method} {route}", kind=SpanKind.CLIENT) as span:
            try:
                response = await self._inner.handle_async_request(request)
            except Exception as error:
                attributes["error.type"] = type(error).__name__
                span.set_attributes(attributes)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                instruments.graph_requests.add(1, attributes)
                instruments.graph_duration.record(time.monotonic() - started, attributes)
                raise
            attributes["http.response.status_code"] = response.status_code
            span.set_attributes(attributes)
            span.set_attributes(_kept_headers(response.headers))
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR))
            instruments.graph_requests.add(1, attributes)
            instruments.graph_duration.record(time.monotonic() - started, attributes)
            if response.status_code == 429:
                instruments.graph_throttled.add(1, {"url.template": route, "http.request.method": request.method})
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name in _KEPT_RESPONSE_HEADERS:
        value = headers.get(name)
        if value and len(value) <= 64:
            kept[f"graph.{name.replace('-', '_')}"] = value
    return kept


# --- audit events, bulk rows, alerts ----------------------------------------------------------------------------


def audited(event: AuditEvent) -> None:
    """Counts one audit event: action, outcome, rule (the rule's name, never the detail text)."""
    instruments = _active
    if instruments is _OFF:
        return
    attributes = {"tapbot.audit.action": event.action.value, "tapbot.audit.outcome": event.outcome.value}
    if event.rule:
        attributes["tapbot.audit.rule"] = event.rule[:60]
    instruments.audit_events.add(1, attributes)


class CountedAuditLog:
    """The audit log every component writes to, counting each event it records (``tapbot.audit.events``)."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def record(self, event: AuditEvent) -> None:
        await self._log.record(event)
        audited(event)


def bulk_rows(kind: str, counts: Mapping[str, int]) -> None:
    """Adds rows finished since the last report, per outcome (``counts``: outcome → rows)."""
    instruments = _active
    if instruments is _OFF:
        return
    for outcome, rows in counts.items():
        if rows > 0:
            instruments.bulk_rows.add(rows, {"tapbot.bulk.kind": kind, "tapbot.bulk.outcome": outcome})


class _ProblemCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        _active.log_problems.add(1, {"log.level": record.levelname, "log.logger": record.name[:80]})
