"""Reasons and ticket numbers (issue 11 item 4) through the real HTTP endpoint, against the sandbox tenant.

Every path obeys TAPBOT_REASON_REQUIRED and TAPBOT_TICKET_PATTERN in the domain: a typed issue or revoke, an
onboarding request, each bulk row, and an approval carries the request's reason to the pass it issues. A refused
reason is one sentence and nothing is written to Graph. The reason shows on approval cards, in `/tap status`, in
the audit log and in the audit export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.bulk import RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns
from cards import verbs
from tests.harness.bot import ADELE, ALEX, DIEGO, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_audit_export import answer, consent_card, uploaded
from tests.http.test_bulk import attach, job_id_of, last_card, run_to_end
from tests.http.test_issue_flow import card_text, cards_in, sandbox_passes
from tests.http.test_onboarding import LEE, approval_card, register_channel, request_id

TICKET = {"TAPBOT_TICKET_PATTERN": r"INC\d{7}", "TAPBOT_TICKET_EXAMPLE": "INC0012345"}


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path))
    try:
        yield running
    finally:
        await stop_bot(running)


@pytest.fixture
async def ticket_bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    """Reasons must contain an INC ticket number; long passes (over 4 hours) wait for a second operator."""
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240", **TICKET))
    try:
        yield running
    finally:
        await stop_bot(running)


def last_text(bot: RunningBot) -> str:
    """The last sentence the bot sent, without the sandbox's marker."""
    return bot.connector.texts()[-1].removeprefix("[SANDBOX] ")


def last_card_text(bot: RunningBot) -> str:
    return card_text(cards_in(bot.connector.sent)[-1])


async def audit(bot: RunningBot, action: str, outcome: str | None = None) -> list[Any]:
    rows = await bot.components.store.audit_rows()
    return [row for row in rows if row.action == action and (outcome is None or row.outcome == outcome)]


async def test_without_settings_a_reason_is_optional_and_shown_in_status(bot: RunningBot) -> None:
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "INC0012345 lost phone"')
    assert "handed it over" in str(cards_in(bot.connector.sent)[-1])
    [issued] = await audit(bot, "issue", "succeeded")
    assert issued.reason == "INC0012345 lost phone" and issued.target_id == MEGAN.object_id

    await bot.say(ADELE, f"/tap status {MEGAN.upn}")
    status = last_card_text(bot)
    assert "Reason: \nINC0012345 lost phone" in status
    assert "lost phone" not in str(await sandbox_passes(bot)), "the reason is the bot's record, not Graph's"

    # No reason at all is fine without the settings; status says none was given.
    await bot.say(ADELE, f"/tap issue {DIEGO.upn} 2h")
    assert "handed it over" in str(cards_in(bot.connector.sent)[-1])
    await bot.say(ADELE, f"/tap status {DIEGO.upn}")
    assert "Reason: \nNone given" in last_card_text(bot)


async def test_a_required_reason_that_is_missing_writes_nothing(tmp_path: Path) -> None:
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_REASON_REQUIRED="true"))
    try:
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
        assert last_text(bot) == 'Give a reason, for example: reason "INC0012345 lost phone".'
        assert await sandbox_passes(bot) == []
        [refused] = await audit(bot, "issue")
        assert refused.outcome == "failed" and refused.detail.startswith("ReasonRefused")

        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h reason lost phone")
        assert len(await sandbox_passes(bot)) == 1
        [issued] = await audit(bot, "issue", "succeeded")
        assert issued.reason == "lost phone"
    finally:
        await stop_bot(bot)


async def test_the_ticket_pattern_refuses_a_reason_without_a_ticket_number(ticket_bot: RunningBot) -> None:
    bot = ticket_bot
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "lost phone"')
    assert last_text(bot) == (
        'Give a reason with a ticket number like INC0012345; "lost phone" has none. '
        'For example: reason "INC0012345 lost phone".'
    )
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    assert last_text(bot).startswith("Give a reason with a ticket number like INC0012345, for example")
    assert await sandbox_passes(bot) == [], "nothing was written to Graph"
    assert not [card for card in cards_in(bot.connector.sent) if "handed it over" in str(card)]

    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "INC0012345 lost phone"')
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]
    [issued] = await audit(bot, "issue", "succeeded")
    assert issued.reason == "INC0012345 lost phone"


async def test_revoke_obeys_the_rules_and_records_its_reason(ticket_bot: RunningBot) -> None:
    bot = ticket_bot
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "INC0012345 lost phone"')
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    assert "ticket number like INC0012345" in last_text(bot)
    assert len(await sandbox_passes(bot)) == 1, "the pass is still there"

    await bot.say(ADELE, f'/tap revoke {MEGAN.upn} reason "INC0012399 phone found"')
    assert await sandbox_passes(bot) == []
    [revoked] = await audit(bot, "revoke", "succeeded")
    assert revoked.reason == "INC0012399 phone found"


async def test_a_replace_confirmed_by_button_keeps_the_reason(ticket_bot: RunningBot) -> None:
    bot = ticket_bot
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "INC0000001 first"')
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 3h reason "INC0000002 second"')
    question = cards_in(bot.connector.sent)[-1]
    assert "already holds a pass" in card_text(question) and "INC0000002 second" in card_text(question)
    data = next(action["data"] for action in question["actions"] if action["verb"] == verbs.CONFIRM_REPLACE)
    await bot.press(ADELE, verbs.CONFIRM_REPLACE, data)
    issued = await audit(bot, "issue", "succeeded")
    assert [row.reason for row in issued] == ["INC0000001 first", "INC0000002 second"]

    # The button's data is client input: a reason edited into it is checked again like a typed one.
    forged = {**data, "reason": "no ticket here"}
    answer_body = await bot.press(ADELE, verbs.CONFIRM_REPLACE, forged)
    assert "ticket number like INC0012345" in str(answer_body) + "".join(bot.connector.texts())
    assert len(await audit(bot, "issue", "succeeded")) == 2


async def test_an_approval_carries_the_reason_to_the_pass(ticket_bot: RunningBot) -> None:
    bot = ticket_bot
    await register_channel(bot)
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 8h reason "INC0012345 [travel](https://evil.example) **now**"')
    assert "waiting for an operator's approval" in last_text(bot)
    card = approval_card(bot)
    text = card_text(card)
    assert "Requester's reason: \nINC0012345 [travel](https://evil.example) **now**" in text
    runs = [node for node in card["body"] if node.get("type") == "RichTextBlock"]
    assert runs and all(inline["type"] == "TextRun" for node in runs for inline in node["inlines"]), (
        "shown as plain text runs, never as Markdown"
    )
    await bot.say(ALEX, "/tap requests")
    assert "INC0012345 [travel](https://evil.example) **now**" in last_card_text(bot)
    assert await sandbox_passes(bot) == []

    await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]
    [issued] = await audit(bot, "issue", "succeeded")
    assert issued.reason == "INC0012345 [travel](https://evil.example) **now**"
    assert "approved by Alex Wilber" in issued.detail
    [opened] = await audit(bot, "approval", "needs_confirmation")
    assert opened.reason == issued.reason

    await bot.say(ADELE, f"/tap status {MEGAN.upn}")
    assert "INC0012345 [travel](https://evil.example) **now**" in last_card_text(bot)


async def test_onboarding_obeys_the_rules_and_the_approval_carries_the_reason(ticket_bot: RunningBot) -> None:
    bot = ticket_bot
    await register_channel(bot)
    await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
    assert "ticket number like INC0012345" in last_text(bot)
    assert [sent for sent in bot.connector.sent if sent.conversation_id == "19:general@thread.tacv2"] == []

    await bot.say(MEGAN, f'/tap onboard {LEE.upn} reason "INC0077777 new hire Lee"')
    card = approval_card(bot)
    assert "INC0077777 new hire Lee" in card_text(card)
    await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
    [onboarded] = await audit(bot, "onboard", "succeeded")
    assert onboarded.reason == "INC0077777 new hire Lee" and onboarded.target_id == LEE.object_id


async def test_the_audit_export_has_the_reason_with_formulas_neutralised(bot: RunningBot) -> None:
    await bot.say(ADELE, f'/tap issue {MEGAN.upn} 2h reason "=HYPERLINK(1) INC0012345"')
    await bot.say(ADELE, f'/tap issue {DIEGO.upn} 2h reason "+SUM(1) @x -y"')
    await bot.say(ADELE, "/tap audit export")
    consent = consent_card(bot)
    await answer(bot, ADELE, consent["content"]["acceptContext"])
    [data] = uploaded(bot)
    records = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    issued = {
        record["targetUserPrincipalName"]: record["reason"]
        for record in records
        if record["action"] == "issue" and record["outcome"] == "succeeded"
    }
    assert issued[DIEGO.upn] == "'+SUM(1) @x -y"
    assert issued[MEGAN.upn].startswith("'=HYPERLINK(")
    assert all(not record["reason"].startswith(("=", "+", "-", "@")) for record in records)


# --- bulk -------------------------------------------------------------------------------------------------


@pytest.fixture
async def bulk_bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(6)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), **TICKET))
    try:
        yield running
    finally:
        await stop_bot(running)


async def test_bulk_rows_take_their_own_reason_or_the_files(bulk_bot: RunningBot) -> None:
    bot = bulk_bot
    upns = bulk_upns(4)
    rows = [
        f'{upns[0]},"INC0000001 laptop swap"',
        f"{upns[1]},",  # no reason of its own: takes the file's
        f"{upns[2]},no ticket at all",  # refused: its own reason lacks a ticket number
        f"{upns[3]},",
    ]
    data = ("userPrincipalName,reason\r\n" + "\r\n".join(rows) + "\r\n").encode("utf-8-sig")
    await attach(bot, "users.csv", data, text='reason "INC0000099 migration wave 2"')
    preflight = last_card(bot)
    text = card_text(preflight)
    assert "Ready\n3" in text and "Refused\n1" in text
    assert '"no ticket at all" has none' in text
    assert "INC0000099 migration wave 2" in text, "the file's reason is on the preflight card"
    assert await sandbox_passes(bot) == []

    job_id = job_id_of(preflight)
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3, RowState.REFUSED: 1}
    reasons = {row.target_upn: row.reason for row in await audit(bot, "issue", "succeeded") if row.target_id}
    assert reasons == {
        upns[0]: "INC0000001 laptop swap",
        upns[1]: "INC0000099 migration wave 2",
        upns[3]: "INC0000099 migration wave 2",
    }


async def test_a_bulk_file_without_reasons_is_refused_row_by_row(bulk_bot: RunningBot) -> None:
    bot = bulk_bot
    upns = bulk_upns(2)
    await attach(bot, "users.csv", ("userPrincipalName\r\n" + "\r\n".join(upns) + "\r\n").encode())
    text = card_text(last_card(bot))
    assert "Refused\n2" in text and "ticket number like INC0012345" in text
    assert not [action for action in last_card(bot)["actions"] if action["verb"] == verbs.BULK_CONFIRM]
    assert await sandbox_passes(bot) == []


async def test_a_bad_reason_for_the_whole_file_refuses_the_file(bulk_bot: RunningBot) -> None:
    bot = bulk_bot
    upns = bulk_upns(2)
    await attach(bot, "users.csv", ("userPrincipalName\r\n" + "\r\n".join(upns) + "\r\n").encode(), text="reason x")
    assert last_text(bot) == (
        'Give a reason with a ticket number like INC0012345; "x" has none. For example: reason "INC0012345 lost phone".'
    )
    assert await bot.components.bulk._bulk.job(1) is None, "no job was made"
    assert await sandbox_passes(bot) == []


async def test_a_bulk_revoke_file_needs_reasons_too_and_a_reason_never_picks_the_kind(bulk_bot: RunningBot) -> None:
    bot = bulk_bot
    upns = bulk_upns(2)
    data = ("userPrincipalName\r\n" + "\r\n".join(upns) + "\r\n").encode()
    await attach(bot, "users.csv", data, text='reason "INC0000005 revoke these later"')
    assert "Bulk issue from users.csv" in card_text(last_card(bot)), "words inside the reason are not instructions"
    await attach(bot, "users.csv", data, text="revoke")
    text = card_text(last_card(bot))
    assert "Bulk revoke" in text and "Refused\n2" in text


async def test_a_bulk_run_waiting_for_approval_shows_and_keeps_its_reason(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(3)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_APPROVAL_BULK_ROWS="1", **TICKET)
    bot = await start_bot(env)
    try:
        await register_channel(bot)
        upns = bulk_upns(3)
        data = ("userPrincipalName\r\n" + "\r\n".join(upns) + "\r\n").encode()
        await attach(bot, "users.csv", data, text="reason INC0004242 office move")
        job_id = job_id_of(last_card(bot))
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        card = approval_card(bot)
        assert "Bulk run request" in card_text(card) and "INC0004242 office move" in card_text(card)
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
        await run_to_end(bot, job_id)
        reasons = [row.reason for row in await audit(bot, "issue", "succeeded") if row.target_id]
        assert reasons == ["INC0004242 office move"] * 3
    finally:
        await stop_bot(bot)


async def test_revoking_a_whole_job_needs_its_own_reason(bulk_bot: RunningBot) -> None:
    bot = bulk_bot
    upns = bulk_upns(2)
    data = ("userPrincipalName\r\n" + "\r\n".join(upns) + "\r\n").encode()
    await attach(bot, "users.csv", data, text='reason "INC0000010 onboarding wave"')
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    assert len(await sandbox_passes(bot)) == 2

    await bot.say(ADELE, f"/tap revoke job {job_id}")
    assert last_text(bot).startswith("Give a reason with a ticket number like INC0012345")
    await bot.say(ADELE, f'/tap revoke job {job_id} reason "INC0000011 wave cancelled"')
    revoke_card = last_card(bot)
    assert "Ready\n2" in card_text(revoke_card) and "INC0000011 wave cancelled" in card_text(revoke_card)
    revoke_job = job_id_of(revoke_card)
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": revoke_job})
    await run_to_end(bot, revoke_job)
    assert await sandbox_passes(bot) == []
    revoked = [row.reason for row in await audit(bot, "revoke", "succeeded") if row.pass_method_id]
    assert revoked == ["INC0000011 wave cancelled"] * 2
