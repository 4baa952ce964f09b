"""Manager onboarding and approvals through the real HTTP endpoint, against the sandbox tenant."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import (
    ADELE,
    ALEX,
    DIEGO,
    LEE,
    MEGAN,
    Person,
    RunningBot,
    ShiftableClock,
    sandbox_env,
    start_bot,
    stop_bot,
)
from tests.http.test_issue_flow import card_text, cards_in, pass_value, sandbox_passes

CHANNEL = "19:general@thread.tacv2"
LIDIA = Person("5faea182-6306-4ff7-a2a2-0135cd5ba444", "LidiaH@contoso.onmicrosoft.com", "Lidia Holloway")
LYNNE = Person("41a3d674-7ed6-42bc-a472-7908b573fff3", "LynneR@contoso.onmicrosoft.com", "Lynne Robbins")
JANE_UPN = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com"


def tenant_with_changes(tmp_path: Path) -> Path:
    """The demo tenant where Megan also manages a guest and a new hire who holds a directory role."""
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    for user in tenant["users"]:
        if user["userPrincipalName"] == JANE_UPN:
            user["managerId"] = MEGAN.object_id
    tenant["roleAssignments"].append(
        {"principalId": LIDIA.object_id, "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1"}
    )
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant), encoding="utf-8")
    return path


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    env = sandbox_env(
        tmp_path,
        TAPBOT_SANDBOX_TENANT=str(tenant_with_changes(tmp_path)),
        TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240",
    )
    running = await start_bot(env)
    try:
        yield running
    finally:
        await stop_bot(running)


async def register_channel(bot: RunningBot) -> None:
    await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
    assert "now receives approval requests" in bot.connector.texts()[-1]
    bot.connector.clear()


def approval_card(bot: RunningBot) -> dict[str, Any]:
    posted = [sent for sent in bot.connector.sent if sent.conversation_id == CHANNEL and sent.kind == "send"]
    assert posted, "no approval card was posted to the channel"
    card = posted[-1].card
    assert card is not None
    return card


def request_id(card: dict[str, Any]) -> str:
    return next(action["data"]["requestId"] for action in card["actions"] if action["verb"] == verbs.APPROVE)


def megans_chat(bot: RunningBot) -> list[Any]:
    return bot.connector.in_conversation(bot.personal_chat_of(MEGAN))


async def test_manager_request_approved_delivers_first_day_pass(bot: RunningBot) -> None:
    await register_channel(bot)
    await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
    assert "waiting for an operator's approval" in megans_chat(bot)[-1].text
    card = approval_card(bot)
    text = card_text(card)
    assert "Onboarding pass request" in text and "Megan Bowen" in text and "Lee Gu" in text
    assert "Mon 11 Jan 2027, 08:00 (Europe/Berlin)" in text  # the morning of the hire date
    assert await sandbox_passes(bot) == [], "nothing is issued before the approval"

    answer = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id(card), "note": "welcome!"}, kind="channel")
    decided = card_text(answer["value"])
    assert "Approved by Alex Wilber" in decided and "sent privately to the requester" in decided
    assert "Approve" not in [action.get("title") for action in answer["value"].get("actions", [])]
    updates = [sent for sent in bot.connector.sent if sent.kind == "update" and sent.conversation_id == CHANNEL]
    assert len(updates) == 1 and "Approved by Alex Wilber" in card_text(updates[0].card or {})

    pass_cards = [sent.card for sent in megans_chat(bot) if sent.card and "handed it over" in str(sent.card)]
    assert len(pass_cards) == 1
    secret = pass_value(pass_cards[0])
    assert "Valid from\nMon 11 Jan 2027, 08:00 (Europe/Berlin)" in card_text(pass_cards[0])
    assert all(secret not in str(sent.activity) for sent in bot.connector.sent if sent.conversation_id == CHANNEL)
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]
    assert "welcome!" in megans_chat(bot)[-1].text

    # A second click, or a replayed invoke, never issues twice.
    again = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
    assert "already closed" in card_text(again["value"])
    assert len(await sandbox_passes(bot)) == 1
    rows = await bot.components.store.audit_rows()
    assert [(row.action, row.outcome) for row in rows if row.action == "onboard" and row.outcome == "succeeded"] == [
        ("onboard", "succeeded")
    ]


async def test_manager_request_denied(bot: RunningBot) -> None:
    await register_channel(bot)
    await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
    card = approval_card(bot)
    answer = await bot.press(
        ALEX, verbs.DENY, {"requestId": request_id(card), "note": "Start date moved"}, kind="channel"
    )
    assert "Denied by Alex Wilber" in card_text(answer["value"])
    assert "denied your request for Lee Gu" in megans_chat(bot)[-1].text
    assert "Start date moved" in megans_chat(bot)[-1].text
    assert await sandbox_passes(bot) == []


@pytest.mark.parametrize(
    ("person", "target", "expected"),
    [
        (MEGAN, LYNNE.upn, "does not report to you"),  # a manager, of someone else
        (DIEGO, LEE.upn, "does not report to you"),  # not Lee's manager at all
        (DIEGO, LYNNE.upn, "has already set up"),  # Lynne reports to Diego but has Authenticator and a phone
        (MEGAN, JANE_UPN, "external guest"),
        (MEGAN, LIDIA.upn, "holds the directory role"),
    ],
)
async def test_onboarding_refusals(bot: RunningBot, person: Person, target: str, expected: str) -> None:
    await register_channel(bot)
    await bot.say(person, f"/tap onboard {target}")
    assert expected in bot.connector.texts()[-1]
    assert [sent for sent in bot.connector.sent if sent.conversation_id == CHANNEL] == []
    assert await sandbox_passes(bot) == []
    rows = await bot.components.store.audit_rows()
    alerts = [row.rule for row in rows if row.action == "alert"]  # a role holder refused raises a security alert
    assert alerts == (["privileged_target_refused"] if "directory role" in expected else [])
    rows = [row for row in rows if row.action != "alert"]
    assert rows[-1].action == "onboard" and rows[-1].outcome == "refused"


async def test_no_approvals_channel_means_a_clear_refusal(bot: RunningBot) -> None:
    await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
    assert "no approvals channel is set up" in bot.connector.texts()[-1]


async def test_approvals_here_needs_an_operator_in_a_channel(bot: RunningBot) -> None:
    await bot.say(MEGAN, "<at>tapbot</at> tap approvals here", kind="channel")
    assert "Sent to you privately" in bot.connector.texts()[-1]
    assert "Only TAP operators" in bot.connector.texts()[-2]
    await bot.say(ADELE, "/tap approvals here")
    assert "in a team channel" in bot.connector.texts()[-1]


async def test_requester_cannot_approve_and_strangers_cannot_either(bot: RunningBot) -> None:
    await register_channel(bot)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 8h")  # above the 4-hour threshold: needs a second operator
    assert "waiting for an operator's approval" in bot.connector.texts()[-1]
    card = approval_card(bot)
    assert "Long pass request" in card_text(card)
    for person, expected in ((ADELE, "another operator has to"), (DIEGO, "You cannot decide this request")):
        answer = await bot.press(person, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
        assert answer["type"] == "application/vnd.microsoft.activity.message"
        assert expected in answer["value"]
    assert not [sent for sent in bot.connector.sent if sent.kind == "update"], "the card did not change"
    assert await sandbox_passes(bot) == []

    await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
    adele = [sent for sent in bot.connector.in_conversation(bot.personal_chat_of(ADELE)) if sent.card]
    assert "8 hours" in card_text(adele[-1].card or {}) and "handed it over" in str(adele[-1].card)


async def test_requests_lists(bot: RunningBot) -> None:
    await register_channel(bot)
    await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
    await bot.say(ADELE, "/tap requests")
    assert "Pending requests" in card_text(cards_in(bot.connector.sent)[-1])
    assert "Lee Gu" in card_text(cards_in(bot.connector.sent)[-1])
    await bot.say(MEGAN, "/tap requests")
    mine = card_text(cards_in(bot.connector.sent)[-1])
    assert "Your requests" in mine and "Waiting for an operator" in mine


async def test_expired_request_cannot_be_approved(tmp_path: Path) -> None:
    clock = ShiftableClock()
    running = await start_bot(sandbox_env(tmp_path), clock=clock)
    try:
        await register_channel(running)
        await running.say(MEGAN, f"/tap onboard {LEE.upn}")
        card = approval_card(running)
        clock.offset = timedelta(hours=25)
        await running.components.housekeeping.round()
        updates = [sent for sent in running.connector.sent if sent.kind == "update"]
        assert "Expired" in card_text(updates[-1].card or {})
        assert "expired: no operator decided in time" in megans_chat(running)[-1].text
        answer = await running.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
        assert "already closed" in card_text(answer["value"])
        assert await sandbox_passes(running) == []
    finally:
        await stop_bot(running)


async def test_restart_between_request_and_approval(tmp_path: Path) -> None:
    first = await start_bot(sandbox_env(tmp_path))
    connector = first.connector
    try:
        await register_channel(first)
        await first.say(MEGAN, f"/tap onboard {LEE.upn}")
        card = approval_card(first)
    finally:
        await first.session.close()
        await first.runner.cleanup()
    second = await start_bot(sandbox_env(tmp_path))
    try:
        second.connector, spare = connector, second.connector
        await spare.stop()
        await second.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
        assert [item["user_id"] for item in await sandbox_passes(second)] == [LEE.object_id]
        assert any("handed it over" in str(sent.card) for sent in megans_chat(second) if sent.card)
    finally:
        await stop_bot(second)
