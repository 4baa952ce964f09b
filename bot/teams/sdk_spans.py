"""The Agents SDK's own OpenTelemetry spans, skipped while nothing can record them.

The SDK wraps each step of a turn in a span (the adapter's process, the application's turn, before and after turn,
file downloads, the route's handler, each send, each connector call, each storage read and write: a dozen per
turn), and ends each by recording metrics and computing its attributes. It does so through OpenTelemetry's global
tracer and meter, which tapbot never sets: its own telemetry has providers of its own (bot/telemetry.py), so the
SDK's spans and metrics go to OpenTelemetry's no-op ones. Each still cost about 20 us of context managers,
attribute dictionaries and no-op calls, some 0.3 ms of every turn. While no global tracer or meter provider is set,
a span of the SDK is not started at all; once one is (OpenTelemetry's auto-instrumentation, say), they run as the
SDK wrote them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from microsoft_agents.hosting.core.telemetry.core.base_span_wrapper import BaseSpanWrapper

from bot.telemetry import global_meter_set, global_tracer_set

_SDK_ENTER = BaseSpanWrapper.__enter__
_SDK_EXIT = BaseSpanWrapper.__exit__


def sdk_spans_recorded() -> bool:
    """Whether OpenTelemetry has a global tracer or meter provider, where the SDK's spans and metrics would go."""
    return global_tracer_set() or global_meter_set()


def _enter(span: BaseSpanWrapper) -> Any:
    if sdk_spans_recorded():
        return _SDK_ENTER(span)
    return span  # not started: inactive, no OpenTelemetry span (the SDK checks otel_span for None where it reads it)


def _exit(
    span: BaseSpanWrapper,
    exc_type: type[BaseException] | None,
    exc_val: BaseException | None,
    exc_tb: TracebackType | None,
) -> None:
    if span.active:  # started, by _enter with a provider set
        _SDK_EXIT(span, exc_type, exc_val, exc_tb)


def skip_unrecorded_sdk_spans() -> None:
    """Installs the above on the SDK's span wrapper (every span of the SDK goes through it); idempotent."""
    BaseSpanWrapper.__enter__ = _enter  # type: ignore[method-assign]
    BaseSpanWrapper.__exit__ = _exit  # type: ignore[method-assign]
