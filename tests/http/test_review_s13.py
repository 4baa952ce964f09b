"""Review of session 13's CPU shortcuts (since b3bed9e): the holes it found, as tests (they failed until fixed)."""

from __future__ import annotations

import asyncio

import aiohttp

from bot.domain.bulk import RowState
from bot.domain.records import RedactionReason
from cards import verbs
from tests.harness.bot import ADELE, ALEX, MEGAN, Person, RunningBot
from tests.http.test_issue_flow import handed_over_data, sandbox_passes
from tests.http.test_pass_ended_during_delivery import adeles_pass_card, hidden_as, once_on_adeles_pass_card

FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"


async def bulk_revoke(bot: RunningBot, operator: Person, upn: str) -> int:
    """`operator` attaches a one-row CSV with "revoke", confirms the job and waits for its end; returns its id."""
    data = f"userPrincipalName\r\n{upn}\r\n".encode("utf-8-sig")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/files?name=revoke.csv", data=data) as answer,
    ):
        download_url = (await answer.json())["downloadUrl"]
    attachment = {
        "contentType": FILE_DOWNLOAD,
        "name": "revoke.csv",
        "contentUrl": "https://contoso.sharepoint.com/personal/alex/Documents/revoke.csv",
        "content": {"downloadUrl": download_url, "uniqueId": "1", "fileType": "csv"},
    }
    await bot.post(bot.activity(operator, "revoke", attachments=[attachment]))
    preflight = [sent.card for sent in bot.connector.in_conversation(bot.personal_chat_of(operator)) if sent.card]
    job_id = next(action["data"]["jobId"] for action in preflight[-1]["actions"] if action["verb"] == verbs.BULK_CANCEL)
    await bot.press(operator, verbs.BULK_CONFIRM, {"jobId": job_id})
    await asyncio.wait_for(bot.components.bulk.wait(job_id), 60)
    return job_id


async def test_a_pass_revoked_by_a_bulk_job_while_its_card_is_delivered_is_hidden(bot: RunningBot) -> None:
    revoked: list[int] = []

    async def alex_revokes_it_in_bulk() -> None:
        revoked.append(await bulk_revoke(bot, ALEX, MEGAN.upn))

    once_on_adeles_pass_card(bot, alex_revokes_it_in_bulk)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")

    assert revoked and await bot.components.bulk._bulk.counts(revoked[0]) == {RowState.REVOKED: 1}
    assert await sandbox_passes(bot) == [], "the bulk job deleted Adele's new pass"
    # Adele's card must not keep showing a pass that no longer exists.
    await hidden_as(bot, adeles_pass_card(bot), RedactionReason.REPLACED)


async def test_a_pass_replaced_by_one_that_could_not_be_delivered_is_hidden(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = adeles_pass_card(bot)
    bot.connector.refuse_create_with = 403  # Teams refuses Alex's 1:1 chat: his new pass cannot be shown

    await bot.say(ALEX, f"<at>tapbot</at> tap issue {MEGAN.upn} 3h replace", kind="channel")

    assert await sandbox_passes(bot) == [], "Alex's pass replaced Adele's and was revoked, undelivered"
    stored = await bot.components.store.pass_card(handed_over_data(card.card or {})["cardId"])
    assert stored is not None and stored.redacted_at is not None, "Adele's card still shows a pass that is gone"
