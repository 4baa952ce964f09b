"""A pass another operator replaces or revokes while its card is on its way: their redaction finds no card yet, so the
delivering turn hides it itself once recorded (a card never shows a pass that no longer works). Graph is asked about
the pass again only when the audit log records such a write; otherwise an issue costs no request after its create."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from bot.domain.records import RedactionReason
from cards import verbs
from tests.harness.bot import ADELE, ALEX, MEGAN, RunningBot
from tests.harness.card_reading import pass_value
from tests.harness.connector import Sent
from tests.http.test_issue_flow import card_text, handed_over_data, sandbox_passes

PASS_LIST = f"GET /v1.0/users/{MEGAN.object_id}/authentication/temporaryAccessPassMethods"
CREATE = f"POST /v1.0/users/{MEGAN.object_id}/authentication/temporaryAccessPassMethods"


def once_on_adeles_pass_card(bot: RunningBot, meanwhile: Callable[[], Awaitable[None]]) -> None:
    """Runs `meanwhile` while Adele's first pass card is being delivered (before Teams answers its POST)."""

    async def hook(sent: Sent) -> None:
        if sent.card is None or sent.conversation_id != bot.personal_chat_of(ADELE):
            return
        if "passValue" not in str(sent.card):
            return
        bot.connector.before_answer = None
        await meanwhile()

    bot.connector.before_answer = hook


def graph_requests(bot: RunningBot) -> list[str]:
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    bot.components.http_client.event_hooks["request"].append(record)
    return sent


def adeles_pass_card(bot: RunningBot) -> Sent:
    return next(
        sent
        for sent in bot.connector.in_conversation(bot.personal_chat_of(ADELE))
        if sent.kind == "reply" and sent.card is not None and "passValue" in str(sent.card)
    )


async def hidden_as(bot: RunningBot, card: Sent, reason: RedactionReason) -> None:
    stored = await bot.components.store.pass_card(handed_over_data(card.card or {})["cardId"])
    assert stored is not None and stored.redaction_reason == reason.value
    updates = [sent for sent in bot.connector.sent if sent.kind == "update" and sent.activity_id == card.activity_id]
    assert updates, "the card was not taken back"
    assert pass_value(card.card or {}) not in str(updates[-1].activity)


async def test_a_pass_replaced_while_its_card_is_delivered_is_hidden(bot: RunningBot) -> None:
    async def alex_replaces_it() -> None:
        await bot.say(ALEX, f"/tap issue {MEGAN.upn} 3h replace")

    once_on_adeles_pass_card(bot, alex_replaces_it)
    sent = graph_requests(bot)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")

    card = adeles_pass_card(bot)
    await hidden_as(bot, card, RedactionReason.REPLACED)
    assert "newer pass replaced" in card_text(
        next(s for s in bot.connector.sent if s.kind == "update" and s.activity_id == card.activity_id).card or {}
    )
    # Alex's pass is the one that works, and his card still shows it.
    passes = await sandbox_passes(bot)
    assert len(passes) == 1
    alexs = [s for s in bot.connector.in_conversation(bot.personal_chat_of(ALEX)) if s.card and s.kind == "reply"]
    assert len(alexs) == 1 and pass_value(alexs[0].card or {}) != pass_value(card.card or {})
    alex_card = await bot.components.store.pass_card(handed_over_data(alexs[0].card or {})["cardId"])
    assert alex_card is not None and alex_card.redacted_at is None
    # Adele's turn asked Graph after her card was recorded, because the audit log showed Alex's write.
    assert sent.count(CREATE) == 2 and sent[-1] == PASS_LIST, sent


async def test_a_pass_revoked_while_its_card_is_delivered_is_hidden(bot: RunningBot) -> None:
    async def alex_revokes_it() -> None:
        await bot.say(ALEX, f"/tap revoke {MEGAN.upn}")

    once_on_adeles_pass_card(bot, alex_revokes_it)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")

    assert await sandbox_passes(bot) == []
    await hidden_as(bot, adeles_pass_card(bot), RedactionReason.REPLACED)


async def test_with_no_write_since_the_create_graph_is_not_asked_again(bot: RunningBot) -> None:
    sent = graph_requests(bot)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")

    card = adeles_pass_card(bot)
    assert sent[-1] == CREATE, sent  # nothing read after the create
    stored = await bot.components.store.pass_card(handed_over_data(card.card or {})["cardId"])
    assert stored is not None and stored.redacted_at is None
    # And the card works as always: handed over, it hides.
    answer = await bot.press(ADELE, verbs.HANDED_OVER, handed_over_data(card.card or {}))
    assert pass_value(card.card or {}) not in card_text(answer["value"])
