"""Non-negotiables, proven through the real endpoint: authentication, and no pass value outside its card."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.logging_setup import LogFormat, build_handler
from tests.harness.bot import ADELE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.tokens import (
    APP_ID,
    FOREIGN_KEY,
    install_test_keys,
    registered_env,
    signed_payload,
    token,
)
from tests.harness.tokens import (
    CHANNEL_ISSUER as BOT_FRAMEWORK_ISSUER,
)
from tests.http.test_issue_flow import cards_in, pass_value


@pytest.fixture
def local_signing_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    install_test_keys(monkeypatch)
    yield


@pytest.fixture
async def registered_bot(tmp_path: Path, local_signing_keys: None) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, **registered_env()))
    try:
        yield running
    finally:
        await stop_bot(running)


async def test_requests_without_a_valid_token_get_401_and_change_nothing(registered_bot: RunningBot) -> None:
    activity = registered_bot.activity(ADELE, f"/tap issue {MEGAN.upn}")
    service_url = registered_bot.connector.url
    rejected = {
        "missing": None,
        "not a jwt": "Bearer not-a-token",
        "wrong scheme": f"Basic {token()}",
        "forged signature": f"Bearer {token(key=FOREIGN_KEY)}",
        "wrong audience": f"Bearer {token(audience='some-other-bot')}",
        "foreign issuer": f"Bearer {token(issuer='https://evil.example.com/')}",
        "issuer is a list": "Bearer "
        + signed_payload({"aud": APP_ID, "iss": [BOT_FRAMEWORK_ISSUER], "exp": int(time.time()) + 600}),
        "payload is not JSON": "Bearer eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
        "expired": f"Bearer {token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)}",
        "issued for another service URL": f"Bearer {token(serviceurl='https://smba.evil.example.com/')}",
    }
    for case, header in rejected.items():
        response = await registered_bot.post(activity, headers={"Authorization": header} if header else {})
        assert response.status == 401, case
    assert registered_bot.connector.sent == []
    assert await registered_bot.components.store.audit_rows() == []

    accepted = await registered_bot.post(activity, headers={"Authorization": f"Bearer {token(serviceurl=service_url)}"})
    assert accepted.status in (200, 202)
    assert len(cards_in(registered_bot.connector.sent)) == 1


async def test_health_needs_no_token(registered_bot: RunningBot) -> None:
    async with registered_bot.session.get(f"{registered_bot.url}/healthz") as response:
        assert response.status == 200


async def test_no_pass_value_outside_the_private_card(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_LOG_LEVEL="DEBUG"))
    secrets: list[str] = []
    try:
        await running.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
        await running.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} replace", kind="channel")
        await running.say(ADELE, "/tap issue LynneR@contoso.onmicrosoft.com one-time", kind="groupChat")
        await running.say(ADELE, f"/tap status {MEGAN.upn}")
        for sent in running.connector.sent:
            card = sent.card
            if card is not None and "I have handed it over" in str(card):
                secrets.append(pass_value(card))
        assert len(secrets) == 3
        private_chats = {sent.conversation_id for sent in running.connector.sent if sent.kind == "create"}
        private_chats.add(running.personal_chat_of(ADELE))
        for sent in running.connector.sent:
            if sent.conversation_id not in private_chats:
                assert not any(secret in str(sent.activity) for secret in secrets), "pass in a shared chat"
        rows = await running.components.store.audit_rows()
        assert rows, "the issues were audited"
        audit_text = "\n".join(str(vars(row)) for row in rows)
    finally:
        await stop_bot(running)
    database_bytes = b"".join(path.read_bytes() for path in tmp_path.glob("tapbot.db*"))
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in audit_text
        assert secret.encode() not in database_bytes
    assert "Temporary Access Pass" in audit_text or "issue" in audit_text


async def test_no_pass_value_in_json_logs_and_turns_are_correlated(tmp_path: Path) -> None:
    """The production log format: JSON lines, each turn's lines (Graph's request ids included) share an id."""
    stream = io.StringIO()
    handler = build_handler(LogFormat.JSON, stream)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_LOG_LEVEL="DEBUG", TAPBOT_LOG_FORMAT="json"))
    secrets: list[str] = []
    try:
        issue = running.activity(ADELE, f"/tap issue {MEGAN.upn} 2h")
        await running.post(issue)
        # An uncertain create: Graph creates the pass but answers 503; the bot finds it, deletes it, retries.
        async with running.session.post(
            f"{running.sandbox_control}/faults",
            json={"method": "POST", "path_regex": "temporaryAccessPassMethods$", "status": 503, "after_effect": True},
        ) as answer:
            assert answer.status == 201
        await running.say(ADELE, "/tap issue LynneR@contoso.onmicrosoft.com one-time")
        await running.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} replace", kind="channel")
        await running.say(ADELE, f"/tap status {MEGAN.upn}")
        for sent in running.connector.sent:
            if sent.card is not None and "I have handed it over" in str(sent.card):
                secrets.append(pass_value(sent.card))
    finally:
        await stop_bot(running)
        root.removeHandler(handler)
        root.setLevel(previous_level)
    output = stream.getvalue()
    assert len(secrets) == 3
    for secret in secrets:
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert all({"time", "level", "logger", "message", "correlation_id"} <= line.keys() for line in lines)
    first_turn = [line for line in lines if line["correlation_id"] == issue["id"]]
    assert any(line["message"] == "Graph created a pass" and line["graph_request_id"] for line in first_turn)
    assert any(line["message"].startswith("handled POST /api/messages") for line in first_turn)
    turn_lines = [line for line in lines if line["logger"] == "tapbot.turn"]
    assert turn_lines and not any("Adele" in json.dumps(line) for line in turn_lines), "no console line in JSON"
    uncertain = [line for line in lines if line["message"].startswith("pass creation answered 503")]
    assert uncertain and uncertain[0]["graph_request_id"] and uncertain[0]["correlation_id"]
