"""The fixed work of every turn (issue 13, session 13): what the Agents SDK does for nothing is not done, and what a
user meets through /api/messages stays the same."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core.telemetry.core._agents_telemetry import agents_telemetry
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.teams.sdk_spans import sdk_spans_recorded
from tests.harness.bot import ADELE, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.tokens import (
    CHANNEL_ISSUER,
    FOREIGN_KEY,
    UNENDORSED_CHANNEL_KEY,
    bearer,
    install_test_keys,
    registered_env,
)


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


@pytest.fixture
async def key_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return install_test_keys(monkeypatch)


@pytest.fixture
async def registered_bot(tmp_path: Path, key_lookups: list[str]) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, **registered_env()))
    try:
        yield running
    finally:
        await stop_bot(running)


def count_token_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time PyJWT reads a token (its _load: every segment checked character by character)."""
    reads: list[int] = []
    load = jwt.api_jws.PyJWS._load

    def counting(self: jwt.api_jws.PyJWS, token: str | bytes) -> Any:
        reads.append(1)
        return load(self, token)

    monkeypatch.setattr(jwt.api_jws.PyJWS, "_load", counting)
    return reads


async def test_an_authenticated_turn_reads_its_token_with_pyjwt_only_where_the_sdk_does(
    registered_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyJWT's read of a token costs ~0.1 ms (a Python loop over its characters). The SDK reads it three times
    (header, unverified claims, verified claims); tapbot's issuer pre-check and its look-up of the signing key's
    endorsements read it without PyJWT (the second after the SDK verified the signature)."""
    own_url = registered_bot.connector.url
    reads = count_token_reads(monkeypatch)
    response = await registered_bot.post(
        registered_bot.activity(ADELE, "/tap help"), headers=bearer(serviceurl=own_url)
    )
    assert response.status == 202
    assert len(registered_bot.connector.cards()) == 1
    assert len(reads) == 3


def as_segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_a_malformed_or_foreign_bearer_token_is_refused_before_any_key_is_fetched(
    registered_bot: RunningBot, key_lookups: list[str]
) -> None:
    payload = as_segment(b'{"iss": "https://api.botframework.com"}')
    header = as_segment(b'{"alg": "RS256", "kid": "channel-key"}')
    tokens = {
        "two segments": f"{header}.{payload}",
        "payload not base64": f"{header}.!!!.AAAA",
        "payload not JSON": f"{header}.{as_segment(b'not json')}.AAAA",
        "payload a JSON list": f"{header}.{as_segment(b'[1, 2]')}.AAAA",
        "payload not UTF-8": f"{header}.{as_segment(bytes([255, 254]))}.AAAA",
        "payload nested deep": f"{header}.{as_segment(b'[' * 5000)}.AAAA",
        "issuer not a string": f"{header}.{as_segment(json.dumps({'iss': [1]}).encode())}.AAAA",
        "the channel's issuer, header not JSON": f"{as_segment(b'nope')}.{payload}.AAAA",
        "the channel's issuer, no signature": f"{header}.{payload}.",
        "foreign key": jwt.encode({"iss": CHANNEL_ISSUER, "aud": "x"}, FOREIGN_KEY, algorithm="RS256"),
    }
    fetched: dict[str, int] = {}
    for case, token in tokens.items():
        before = len(key_lookups)
        response = await registered_bot.post(
            registered_bot.activity(ADELE, "/tap help"), headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 401, case
        fetched[case] = len(key_lookups) - before
    assert registered_bot.connector.sent == []
    # Only a token that is well formed and names the channel as its issuer gets as far as a key look-up.
    assert {case for case, count in fetched.items() if count} == {"the channel's issuer, no signature", "foreign key"}


async def test_a_signing_keys_endorsements_are_looked_up_once_not_at_every_turn(
    registered_bot: RunningBot, key_lookups: list[str]
) -> None:
    """The SDK looks the key up for every token (a trip to a worker thread); tapbot's look-up of the same key's
    endorsements was a second trip at every turn, and is now one per key while the channel's key set is kept."""
    own_url = registered_bot.connector.url
    for _ in range(3):
        response = await registered_bot.post(
            registered_bot.activity(ADELE, "/tap help"), headers=bearer(serviceurl=own_url)
        )
        assert response.status == 202
    assert len(registered_bot.connector.cards()) == 3
    assert len(key_lookups) == 3 + 1  # the SDK's, one a turn, and the endorsements' once


async def test_a_key_not_endorsed_for_teams_is_refused_at_every_turn(
    registered_bot: RunningBot, key_lookups: list[str]
) -> None:
    own_url = registered_bot.connector.url
    for _ in range(3):
        response = await registered_bot.post(
            registered_bot.activity(ADELE, "/tap help"), headers=bearer(key=UNENDORSED_CHANNEL_KEY, serviceurl=own_url)
        )
        assert response.status == 401
    assert registered_bot.connector.sent == []
    assert len(key_lookups) == 3 + 1


async def test_the_bots_outbound_token_is_asked_of_msal_once_for_several_turns(
    registered_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each turn's connector client needs the bot's token; MSAL was asked for it at every turn (a worker thread's
    trip and a search of its cache), for the same token until it renews it."""
    asked: list[str] = []
    stub = MsalAuth.get_access_token  # install_test_keys' stand-in for MSAL

    async def counting(self: MsalAuth, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        asked.append(resource_url)
        return await stub(self, resource_url, scopes, force_refresh)

    monkeypatch.setattr(MsalAuth, "get_access_token", counting)
    own_url = registered_bot.connector.url
    for _ in range(3):
        response = await registered_bot.post(
            registered_bot.activity(ADELE, "/tap help"), headers=bearer(serviceurl=own_url)
        )
        assert response.status == 202
    assert len(registered_bot.connector.cards()) == 3
    assert len(asked) == 1
