"""The fixed work of every turn (issue 13, session 13): what the Agents SDK does for nothing is not done, and what a
user meets through /api/messages stays the same."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from microsoft_agents.hosting.core.telemetry.core._agents_telemetry import agents_telemetry
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.teams.sdk_spans import sdk_spans_recorded
from tests.harness.bot import ADELE, RunningBot


def count_sdk_spans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the SDK's spans started (every one goes through agents_telemetry.start_as_current_span)."""
    started: list[str] = []
    start = agents_telemetry.start_as_current_span

    def counting(span_name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(span_name)
        return start(span_name, *args, **kwargs)

    monkeypatch.setattr(agents_telemetry, "start_as_current_span", counting)
    return started


@pytest.fixture
def global_tracer(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A global tracer provider, as OpenTelemetry's auto-instrumentation would set, for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    # The SDK's tracer is OpenTelemetry's proxy, which keeps the real tracer it finds: forgotten after the test.
    monkeypatch.setattr(agents_telemetry.tracer, "_real_tracer", None)
    yield exporter
    provider.shutdown()


async def test_a_turn_starts_none_of_the_sdks_spans_while_nothing_would_record_them(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tapbot's telemetry has providers of its own: the SDK's spans go to OpenTelemetry's no-op global ones, yet each
    cost ~20 us, a dozen per turn."""
    assert not sdk_spans_recorded()
    await bot.say(ADELE, "/tap help")
    started = count_sdk_spans(monkeypatch)
    bot.connector.clear()
    response = await bot.say(ADELE, "/tap help")
    assert response.status == 202
    assert len(bot.connector.cards()) == 1  # the help card, answered as before
    assert started == []


async def test_with_a_global_tracer_provider_the_sdks_spans_are_recorded_as_before(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, global_tracer: InMemorySpanExporter
) -> None:
    assert sdk_spans_recorded()
    started = count_sdk_spans(monkeypatch)
    response = await bot.say(ADELE, "/tap help")
    assert response.status == 202
    assert len(bot.connector.cards()) == 1
    names = [span.name for span in global_tracer.get_finished_spans()]
    assert "agents.adapter.process" in names and "agents.adapter.send_activities" in names, names
    assert sorted(names) == sorted(started)  # each started span ended, and was exported


async def test_a_turn_loads_and_saves_no_conversation_or_user_state(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK loaded a conversation and a user state from its storage at every turn and saved them after; tapbot
    keeps nothing there. (Its sign-in intercept still looks for a sign-in of its own, which tapbot never starts.)"""
    storage = bot.components.runtime.application._storage  # pyright: ignore[reportPrivateUsage]
    read, written = storage.read, storage.write
    asked: list[str] = []

    async def reading(keys: list[str], *, target_cls: type, **kwargs: Any) -> Any:
        asked.append(target_cls.__name__)
        return await read(keys, target_cls=target_cls, **kwargs)

    async def writing(changes: dict[str, Any]) -> None:
        asked.append("write")
        await written(changes)

    monkeypatch.setattr(storage, "read", reading)
    monkeypatch.setattr(storage, "write", writing)
    response = await bot.say(ADELE, "/tap help")
    assert response.status == 202
    assert len(bot.connector.cards()) == 1
    assert "CachedAgentState" not in asked and "write" not in asked, asked
