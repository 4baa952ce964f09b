"""Typed commands through the real endpoint after issue 11: one table, one handler shape, reasons in text."""

from __future__ import annotations

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.commands import COMMANDS
from cards import verbs
from tests.harness.bot import ADELE, MEGAN, RunningBot
from tests.http.test_issue_flow import card_text, cards_in, sandbox_passes


async def test_every_command_type_the_table_produces_has_a_handler(bot: RunningBot) -> None:
    produced = {kind for spec in COMMANDS for kind in spec.produces}
    assert produced <= bot.components.commands.handled_types()


async def test_a_quoted_reason_reaches_the_audit_row_of_the_pass(bot: RunningBot) -> None:
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "INC0012345 lost phone" one-time')
    assert len(cards_in(bot.connector.sent)) == 1  # the pass card, privately
    assert len(await sandbox_passes(bot)) == 1
    [row] = [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.ISSUE.value]
    assert row.outcome == AuditOutcome.SUCCEEDED.value
    assert row.reason == "INC0012345 lost phone"


async def test_a_reason_to_the_end_of_the_line_reaches_the_revoke_audit_row(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn} reason INC0012399   she found her phone")
    assert await sandbox_passes(bot) == []
    [row] = [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.REVOKE.value]
    assert row.outcome == AuditOutcome.SUCCEEDED.value
    assert row.reason == "INC0012399 she found her phone"


async def test_a_reason_too_long_is_a_sentence_and_nothing_is_issued(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} reason {'x' * 301}")
    [text] = bot.connector.texts()
    assert "A reason can be at most 300 characters long; yours has 301." in text
    assert await sandbox_passes(bot) == []
    assert [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.ISSUE.value] == []


async def test_quotes_and_reasons_that_cannot_be_read_get_a_sentence(bot: RunningBot) -> None:
    await bot.say(ADELE, '/tap issue "Megan Bowen 2h')
    await bot.say(ADELE, f"/tap status {MEGAN.upn} reason curious")
    texts = bot.connector.texts()
    assert texts[0].startswith("[SANDBOX] A quote is not closed: ")
    assert "'/tap status' takes a user only, no reason." in texts[1]
    assert await sandbox_passes(bot) == []


async def test_issue_alone_answers_with_the_form(bot: RunningBot) -> None:
    for text in ("/tap issue", "/tap", "tap create"):
        bot.connector.sent.clear()
        response = await bot.say(ADELE, text)
        assert response.status in (200, 202)
        [card] = bot.connector.cards()
        assert "\nIssue a Temporary Access Pass\n" in card_text(card), text
        assert [action["verb"] for action in card["actions"]] == [verbs.SUBMIT_FORM]
    await bot.say(ADELE, "/tap onboard")
    assert "\nRequest a first-day pass" in card_text(bot.connector.cards()[-1])
    assert await sandbox_passes(bot) == []


async def test_help_still_gives_the_help_card_from_the_table(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap help")
    [card] = bot.connector.cards()
    for spec in COMMANDS:
        assert spec.usage in str(card)
