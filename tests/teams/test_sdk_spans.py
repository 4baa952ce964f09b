"""The Agents SDK's spans: not started while OpenTelemetry has no global provider, started as before once it has one
(bot/teams/sdk_spans.py). Through /api/messages: tests/http/test_turn_fixed_cost.py."""

from __future__ import annotations

import logging

import pytest
from microsoft_agents.hosting.core.telemetry.adapter import spans
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider

from bot.teams.sdk_spans import sdk_spans_recorded, skip_unrecorded_sdk_spans


def test_without_a_global_provider_a_span_is_not_started_and_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    skip_unrecorded_sdk_spans()
    assert not sdk_spans_recorded()
    with caplog.at_level(logging.WARNING), spans.AdapterProcess() as span:
        assert not span.active and span.otel_span is None
    assert caplog.records == []  # the SDK's own exit warns of a span that is not active: not called for these


def test_a_global_meter_provider_alone_has_the_sdks_spans_and_metrics_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    skip_unrecorded_sdk_spans()
    provider = MeterProvider()
    monkeypatch.setattr(metrics_internal, "_METER_PROVIDER", provider)
    try:
        assert sdk_spans_recorded()
        with spans.AdapterProcess() as span:
            assert span.active
        assert not span.active
    finally:
        provider.shutdown()
