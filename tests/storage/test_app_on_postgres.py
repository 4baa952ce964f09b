"""The whole app on PostgreSQL: started on an empty database (its start migrates it), driven over HTTP.

Besides the walk-through below, every test of ``tests/http/test_issue_flow.py`` runs here again with its ``bot`` on
PostgreSQL, and the bulk issue-and-revoke test of ``tests/http/test_bulk.py`` (48 concurrent workers writing their
journal) too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.approvals import ApprovalStatus
from bot.sandbox.generate import bulk_tenant
from cards import verbs
from tests.harness.bot import ADELE, ALEX, LEE, MEGAN, TENANT_ID, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http import test_bulk, test_issue_flow
from tests.http.test_issue_flow import card_text, cards_in, handed_over_data, pass_value, sandbox_passes

CHANNEL = "19:general@thread.tacv2"

# Every test of the issue/revoke/status module, collected here again: they take the `bot` fixture below.
for _name in dir(test_issue_flow):
    if _name.startswith("test_"):
        globals()[f"{_name}_on_postgresql"] = getattr(test_issue_flow, _name)


@pytest.fixture
async def bot(tmp_path: Path, empty_postgres_url: str) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_DATABASE_URL=empty_postgres_url))
    assert running.components.store.engine.dialect.name == "postgresql"
    try:
        yield running
    finally:
        await stop_bot(running)


async def test_issue_hand_over_revoke_and_onboard_with_approval(bot: RunningBot) -> None:
    store = bot.components.store

    # Issue, then hand over: the card is redacted once, and the redaction is stored.
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h one-time")
    card = cards_in(bot.connector.in_conversation(bot.personal_chat_of(ADELE)))[0]
    secret = pass_value(card)
    answer = await bot.press(ADELE, verbs.HANDED_OVER, handed_over_data(card))
    assert secret not in card_text(answer["value"]) and "Hidden after hand-over" in card_text(answer["value"])
    stored = await store.pass_card(handed_over_data(card)["cardId"])
    assert stored is not None and stored.redaction_reason == "handed_over"

    # Revoke.
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    assert "Revoked the Temporary Access Pass of Megan Bowen" in bot.connector.texts()[-1]
    assert await sandbox_passes(bot) == []

    # Onboarding with approval: the manager asks, an operator approves in the channel, the pass goes to the manager.
    await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
    assert await store.approvals_channel(TENANT_ID) is not None
    bot.connector.clear()
    await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
    posted = [sent.card for sent in bot.connector.sent if sent.conversation_id == CHANNEL and sent.card]
    assert posted, bot.connector.texts()
    request_id = next(a["data"]["requestId"] for a in posted[-1]["actions"] if a["verb"] == verbs.APPROVE)
    assert await sandbox_passes(bot) == []
    decided = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id, "note": "welcome"}, kind="channel")
    assert "Approved by Alex Wilber" in card_text(decided["value"])
    again = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id}, kind="channel")
    assert "already closed" in card_text(again["value"])
    request = await store.approval(request_id)
    assert request is not None and request.status is ApprovalStatus.APPROVED and request.decided_by_id == ALEX.object_id
    megans = [sent.card for sent in bot.connector.in_conversation(bot.personal_chat_of(MEGAN)) if sent.card]
    assert any("handed it over" in str(item) for item in megans)
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]

    # Everything was audited in PostgreSQL, in order.
    actions = [(row.action, row.outcome) for row in await store.audit_rows()]
    assert actions[:3] == [("issue", "succeeded"), ("redact", "succeeded"), ("revoke", "succeeded")]
    assert ("onboard", "succeeded") in actions


async def test_a_restart_on_postgresql_keeps_everything(tmp_path: Path, empty_postgres_url: str) -> None:
    first = await start_bot(sandbox_env(tmp_path, TAPBOT_DATABASE_URL=empty_postgres_url))
    try:
        await first.say(ADELE, f"/tap issue {MEGAN.upn}")
        card_id = handed_over_data(cards_in(first.connector.sent)[0])["cardId"]
    finally:
        await stop_bot(first)
    second = await start_bot(sandbox_env(tmp_path, TAPBOT_DATABASE_URL=empty_postgres_url))
    try:
        assert await second.components.store.pass_card(card_id) is not None
        assert [row.action for row in await second.components.store.audit_rows()] == ["issue"]
    finally:
        await stop_bot(second)


async def test_bulk_issue_and_revoke_on_postgresql(tmp_path: Path, empty_postgres_url: str) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(test_bulk.USERS)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_DATABASE_URL=empty_postgres_url)
    running = await start_bot(env)
    try:
        await test_bulk.test_bulk_issue_checks_first_then_runs_and_delivers_privately(running)
    finally:
        await stop_bot(running)
