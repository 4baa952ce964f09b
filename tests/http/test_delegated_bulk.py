"""Bulk runs and follow-through with delegated writes (issue 14), through the real /api/messages against the sandbox:
every row written with the requester's own Graph token; a run that loses it pauses (its progress card says so, a
sign-in card comes privately) and resumes after the sign-in with no row written twice or lost; Cancel while it
waits; a job nobody resumes ends after the approval request lifetime; follow-through's delete without the
requester's token leaves the pass and tells them once how to revoke it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.bulk import BulkJob, JobStatus, RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns
from bot.teams.sign_in import ASKED
from cards import verbs
from tests.harness.bot import ADELE, ALEX, LEE, MEGAN, Person, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.connector import Sent
from tests.harness.sign_in import (
    CONNECTION,
    SignInCard,
    delegated_env,
    graph_callers,
    identity,
    oauth_cards,
    token_exchange,
)
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card, page_secrets, result_pages
from tests.http.test_buttons import HOSTILE_IDS, MESSAGE
from tests.http.test_follow_through import STEP, advance, housekeeping, notices, register
from tests.http.test_issue_flow import card_text, sandbox_passes

USERS = 30
LAPSE_AFTER = 12
PAUSED = "Your sign-in to tapbot has lapsed; sign in again to continue"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(USERS)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), **delegated_env()))
    try:
        yield running
    finally:
        await stop_bot(running)


def lapse_after(bot: RunningBot, person: Person, creates: int) -> list[str]:
    """The person's sign-in lapses the moment the sandbox has created `creates` passes: a row boundary, whatever
    the timing; every later request with their token gets 401 and the token service has no session to renew."""
    sandbox = bot.components.sandbox
    assert sandbox is not None
    state = sandbox.state
    created: list[str] = []
    issue = state.passes.issue

    def counting(user_id: str, *args: Any, **options: Any) -> Any:
        issued = issue(user_id, *args, **options)
        created.append(user_id)
        if len(created) == creates:
            state.identity.lapse(person.object_id)
        return issued

    state.passes.issue = counting  # type: ignore[method-assign]
    return created


async def settle(bot: RunningBot, job_id: int, *states: JobStatus) -> BulkJob:
    """The job once its background run (started by a confirm or by a sign-in's turn) reached one of `states`."""

    async def reached() -> BulkJob:
        while True:
            await bot.components.bulk.wait(job_id)
            job = await bot.components.bulk._bulk.job(job_id)
            assert job is not None
            if job.status in states:
                return job
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(reached(), 60)


async def confirmed_job(bot: RunningBot, count: int = USERS) -> int:
    await attach(bot, "users.csv", csv_of(bulk_upns(count)))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
    return job_id


def progress_updates(bot: RunningBot) -> list[str]:
    return [card_text(sent.card) for sent in bot.connector.sent if sent.kind == "update" and sent.card is not None]


def sign_in_cards(bot: RunningBot) -> list[SignInCard]:
    cards = oauth_cards(bot.connector.sent)
    assert all(card.sent.conversation_id == bot.personal_chat_of(ADELE) for card in cards)
    return cards


def chat(bot: RunningBot) -> list[Sent]:
    return bot.connector.in_conversation(bot.personal_chat_of(ADELE))


async def counts(bot: RunningBot, job_id: int) -> dict[RowState, int]:
    return await bot.components.bulk._bulk.counts(job_id)


async def test_a_run_whose_sign_in_lapses_pauses_and_resumes_after_sign_in_with_every_pass_once(
    bot: RunningBot,
) -> None:
    writers = graph_callers(bot)
    created = lapse_after(bot, ADELE, LAPSE_AFTER)
    job_id = await confirmed_job(bot)

    # Adele never signed in: the first rows find no token; nothing is written, the job waits for her.
    job = await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    assert await counts(bot, job_id) == {RowState.PENDING: USERS}
    assert await sandbox_passes(bot) == [] and created == []
    [first_card] = sign_in_cards(bot)
    assert any(ASKED in sent.text and f"bulk job {job_id}" in sent.text for sent in chat(bot))
    assert any("paused" in text and f"{PAUSED} — 0 of {USERS} done." in text for text in progress_updates(bot))
    assert job.progress_activity_id is not None

    # She signs in; the job goes on as her, and her sign-in lapses after LAPSE_AFTER passes (mid-run).
    status, _ = await token_exchange(bot, ADELE, first_card.exchange_id)
    assert status == 200
    job = await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    paused_counts = await counts(bot, job_id)
    delivered = paused_counts.get(RowState.DELIVERED, 0)
    assert delivered == len(created) >= LAPSE_AFTER and delivered < USERS
    assert paused_counts == {RowState.DELIVERED: delivered, RowState.PENDING: USERS - delivered}, "none lost"
    secrets: dict[str, str] = {}
    for page in result_pages(bot):
        secrets.update(page_secrets(page))
    assert len(secrets) == delivered, "every pass created before the lapse was shown"
    [_, second_card] = sign_in_cards(bot)
    paused_card = [text for text in progress_updates(bot) if "paused" in text][-1]
    assert f"{PAUSED} — {delivered} of {USERS} done." in paused_card
    assert "Cancel" in json.dumps([sent.card for sent in bot.connector.sent if sent.kind == "update"][-1])

    # Signed in again: the job finishes; every user got exactly one pass, each shown once.
    updates_before = len(progress_updates(bot))
    status, _ = await token_exchange(bot, ADELE, second_card.exchange_id)
    assert status == 200
    assert f"(job {job_id}): running" in progress_updates(bot)[updates_before], "the card is running again at once"
    assert any(f"You're signed in. Bulk job {job_id} goes on from where it stopped" in sent.text for sent in chat(bot))
    job = await settle(bot, job_id, JobStatus.FINISHED)
    assert await counts(bot, job_id) == {RowState.DELIVERED: USERS}
    assert sorted(created) == sorted(set(created)) and len(created) == USERS, "no user's pass created twice"
    passes = await sandbox_passes(bot)
    assert len(passes) == USERS and len({item["user_id"] for item in passes}) == USERS
    shown: list[str] = []
    for page in result_pages(bot):
        shown.extend(page_secrets(page))
    assert len(shown) == USERS == len(set(shown)), "each pass on exactly one results page"
    assert "finished" in progress_updates(bot)[-1]
    assert job.started_at is not None and job.finished_at is not None
    assert set(writers) == {ADELE.object_id} and len(writers) >= USERS, "every write with Adele's own token"

    # /tap revoke job N writes as its requester too.
    del writers[:]
    await bot.say(ADELE, f"/tap revoke job {job_id}")
    revoke_job = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": revoke_job})
    await settle(bot, revoke_job, JobStatus.FINISHED)
    assert await counts(bot, revoke_job) == {RowState.REVOKED: USERS}
    assert await sandbox_passes(bot) == []
    assert writers == [ADELE.object_id] * USERS


async def test_a_run_whose_requesters_token_service_session_is_someone_elses_asks_her_to_sign_in(
    bot: RunningBot,
) -> None:
    writers = graph_callers(bot)
    ids = identity(bot)
    # Alex signed in at a sign-in link of Adele's: the token service keeps his session under her channel account.
    ids.exchange(ADELE.channel_id, CONNECTION, "msteams", ids.teams_sso_token(ALEX.object_id))
    job_id = await confirmed_job(bot, 3)

    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)

    [card] = sign_in_cards(bot)  # not taken for a sign-in of hers: she gets a card, and is told why
    assert any("someone else's" in sent.text and ASKED in sent.text for sent in chat(bot))
    assert not [key for key in ids.sessions if key[0] == ADELE.channel_id], "his session under her account ended"
    assert await sandbox_passes(bot) == [] and writers == []
    status, _ = await token_exchange(bot, ADELE, card.exchange_id)
    assert status == 200
    await settle(bot, job_id, JobStatus.FINISHED)
    assert len(await sandbox_passes(bot)) == 3 and set(writers) == {ADELE.object_id}


async def test_cancel_while_waiting_ends_the_job_and_a_later_sign_in_runs_nothing(bot: RunningBot) -> None:
    job_id = await confirmed_job(bot, 5)
    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    [card] = sign_in_cards(bot)

    answer = await bot.press(ADELE, verbs.BULK_CANCEL, {"jobId": job_id})
    assert "cancelled" in card_text(answer["value"])
    assert await counts(bot, job_id) == {RowState.CANCELLED: 5}
    assert (await settle(bot, job_id, JobStatus.CANCELLED)).status is JobStatus.CANCELLED

    bot.connector.clear()
    status, _ = await token_exchange(bot, ADELE, card.exchange_id)
    assert status == 200
    assert await sandbox_passes(bot) == []
    assert not any("goes on" in sent.text for sent in chat(bot)), "the job's wait went with it"
    resume = await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": job_id})
    assert "is not paused (it is cancelled)" in json.dumps(resume)
    assert await sandbox_passes(bot) == []


async def test_only_the_requester_resumes_or_cancels_a_waiting_job(bot: RunningBot) -> None:
    job_id = await confirmed_job(bot, 3)
    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    for verb in (verbs.BULK_RESUME, verbs.BULK_CANCEL):
        answer = await bot.press(MEGAN, verb, {"jobId": job_id})
        assert "Only the operator who started this bulk job" in json.dumps(answer)
    assert (await bot.components.bulk._bulk.job(job_id)).status is JobStatus.WAITING_SIGN_IN  # type: ignore[union-attr]


async def test_the_resume_button_runs_it_again_after_a_sign_in_made_elsewhere(bot: RunningBot) -> None:
    job_id = await confirmed_job(bot, 4)
    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    # Resumed while still without a token: it pauses again at once, with a new sign-in card.
    answer = await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": job_id})
    assert "goes on from where it stopped" in json.dumps(answer)
    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    assert len(sign_in_cards(bot)) == 2 and await sandbox_passes(bot) == []
    # Signed in through a command's card more than 10 minutes later (the job's wait is gone): Resume finishes it.
    await advance(bot, timedelta(minutes=11))
    await bot.say(ADELE, f"/tap issue {LEE.upn} 2h")
    status, _ = await token_exchange(bot, ADELE, sign_in_cards(bot)[-1].exchange_id)
    assert status == 200 and len(await sandbox_passes(bot)) == 1  # Lee's pass, by the command that waited
    assert (await bot.components.bulk._bulk.job(job_id)).status is JobStatus.WAITING_SIGN_IN  # type: ignore[union-attr]
    await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": job_id})
    await settle(bot, job_id, JobStatus.FINISHED)
    assert await counts(bot, job_id) == {RowState.DELIVERED: 4}
    assert len(await sandbox_passes(bot)) == 5


async def test_a_job_nobody_resumes_is_cancelled_after_the_request_lifetime_and_its_card_says_so(
    bot: RunningBot,
) -> None:
    job_id = await confirmed_job(bot, 6)
    job = await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    await advance(bot, timedelta(hours=23))
    await housekeeping(bot)
    assert (await bot.components.bulk._bulk.job(job_id)).status is JobStatus.WAITING_SIGN_IN  # type: ignore[union-attr]

    await advance(bot, timedelta(hours=1, minutes=1))
    await housekeeping(bot)
    ended = await bot.components.bulk._bulk.job(job_id)
    assert ended is not None and ended.status is JobStatus.CANCELLED
    assert await counts(bot, job_id) == {RowState.CANCELLED: 6}
    note = "Cancelled: you did not sign in again within 24 hours of the pause; 6 rows were not run."
    [final] = [
        sent.card
        for sent in bot.connector.sent
        if sent.kind == "update"
        and sent.activity_id == job.progress_activity_id
        and sent.card
        and note in str(sent.card)
    ]
    assert final is not None and "cancelled" in card_text(final)
    assert any(note in sent.text for sent in chat(bot) if sent.kind == "send")
    await housekeeping(bot)
    assert sum(note in sent.text for sent in chat(bot)) == 1, "told once"

    status, _ = await token_exchange(bot, ADELE, sign_in_cards(bot)[0].exchange_id)
    assert status == 200 and await sandbox_passes(bot) == []


async def test_follow_through_without_the_requesters_token_keeps_the_pass_and_says_how_to_revoke_it(
    bot: RunningBot,
) -> None:
    writers = graph_callers(bot)
    await bot.say(ADELE, f"/tap issue {LEE.upn} 2h")
    status, _ = await token_exchange(bot, ADELE, sign_in_cards(bot)[-1].exchange_id)
    assert status == 200 and len(await sandbox_passes(bot)) == 1
    await advance(bot, timedelta(minutes=3))
    await register(bot, LEE, "microsoftAuthenticator")
    identity(bot).lapse(ADELE.object_id)
    await advance(bot, STEP)
    await housekeeping(bot)

    [notice] = notices(bot)
    assert f"Lee Gu ({LEE.upn}) registered Microsoft Authenticator" in notice
    assert "Their multi-use pass is still valid until" in notice
    assert f"Revoke it with /tap revoke {LEE.upn}" in notice
    assert len(await sandbox_passes(bot)) == 1, "the pass stays"

    await advance(bot, STEP)
    await housekeeping(bot)
    assert len(notices(bot)) == 1, "told once"
    assert len(await sandbox_passes(bot)) == 1

    # Signed in again (a command's card): the next round deletes it, with Adele's own token, and says nothing more.
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    status, _ = await token_exchange(bot, ADELE, sign_in_cards(bot)[-1].exchange_id)
    assert status == 200
    del writers[:]
    await advance(bot, STEP)
    await housekeeping(bot)
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]
    assert writers == [ADELE.object_id]
    assert len(notices(bot)) == 1


async def test_an_approved_run_writes_as_its_requester_and_waits_for_her_sign_in(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(4)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_APPROVAL_BULK_ROWS="3", **delegated_env())
    bot = await start_bot(env)
    try:
        writers = graph_callers(bot)
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        job_id = await confirmed_job(bot, 4)
        request = [sent.card for sent in bot.connector.sent if sent.conversation_id == "19:general@thread.tacv2"][-1]
        assert request is not None
        request_id = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)
        # Alex approves; he writes nothing (the rows are Adele's), so he is not asked to sign in.
        decided = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "is running" in card_text(decided["value"])
        await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
        assert await counts(bot, job_id) == {RowState.PENDING: 4} and await sandbox_passes(bot) == []
        assert [card.sent.conversation_id for card in oauth_cards(bot.connector.sent)] == [bot.personal_chat_of(ADELE)]

        status, _ = await token_exchange(bot, ADELE, sign_in_cards(bot)[0].exchange_id)
        assert status == 200
        await settle(bot, job_id, JobStatus.FINISHED)
        assert await counts(bot, job_id) == {RowState.DELIVERED: 4}
        assert writers == [ADELE.object_id] * 4
    finally:
        await stop_bot(bot)


async def test_the_resume_button_refuses_hostile_data_a_channel_and_jobs_that_do_not_wait(bot: RunningBot) -> None:
    for value in HOSTILE_IDS:
        answer = await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": value})
        assert answer["type"] == MESSAGE and "damaged" in answer["value"], (value, answer)
    answer = await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": 2**31 - 1})
    assert answer["type"] == MESSAGE and "2147483647" in answer["value"]
    job_id = await confirmed_job(bot, 2)
    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    answer = await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": job_id}, kind="channel")
    assert answer["type"] == MESSAGE and "personal chat" in answer["value"]
    assert (await bot.components.bulk._bulk.job(job_id)).status is JobStatus.WAITING_SIGN_IN  # type: ignore[union-attr]
    await attach(bot, "users.csv", csv_of(bulk_upns(2)))
    checked = job_id_of(last_card(bot))
    answer = await bot.press(ADELE, verbs.BULK_RESUME, {"jobId": checked})
    assert "is not paused (it is checked); nothing was changed." in answer["value"]
    assert await sandbox_passes(bot) == []


async def test_cancel_after_a_mid_run_pause_keeps_what_was_delivered_and_its_export(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")  # signs Adele in before the run, through a command's card
    status, _ = await token_exchange(bot, ADELE, sign_in_cards(bot)[-1].exchange_id)
    assert status == 200
    created = lapse_after(bot, ADELE, 3)
    job_id = await confirmed_job(bot, 5)
    await settle(bot, job_id, JobStatus.WAITING_SIGN_IN)
    delivered = (await counts(bot, job_id)).get(RowState.DELIVERED, 0)
    assert delivered == len(created) >= 3 and delivered < 5

    answer = await bot.press(ADELE, verbs.BULK_CANCEL, {"jobId": job_id})
    text = card_text(answer["value"])
    assert "cancelled" in text and f"/tap revoke job {job_id}" in text
    assert "Send the results as an Excel file" in json.dumps(answer["value"])
    assert await counts(bot, job_id) == {RowState.DELIVERED: delivered, RowState.CANCELLED: 5 - delivered}
    assert len(await sandbox_passes(bot)) == delivered + 1
