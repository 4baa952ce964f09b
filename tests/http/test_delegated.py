"""Delegated writes' sign-in at the Teams edge (issue 14), through the real /api/messages: the OAuthCard a write
without the technician's token brings, Teams' `signin/*` invokes, the command that waited running after the sign-in
with the technician's own Graph token, `/tap signout`, and no token value anywhere it must not be."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.settings import SANDBOX_BOT_APP_ID
from bot.teams.sign_in import ASKED, NOT_DELEGATED, SIGNED_IN_NOTHING_WAITING, SIGNED_OUT
from bot.teams.turn import SENT_PRIVATELY
from cards import verbs
from tests.harness.bot import ADELE, ALEX, DIEGO, LEE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.connector import Sent
from tests.harness.sign_in import (
    CONNECTION,
    OAUTH_CARD,
    SignInCard,
    delegated_env,
    graph_callers,
    identity,
    invoke,
    oauth_cards,
    sign_in_invoke,
    sign_in_page_code,
    token_exchange,
    verify_state,
)
from tests.http.test_forms import issue_values
from tests.http.test_issue_flow import card_text, sandbox_passes
from tests.http.test_message_action import closing, submit

SSO_RESOURCE = f"api://botid-{SANDBOX_BOT_APP_ID}"


def pass_cards(sent: list[Sent]) -> list[dict[str, Any]]:
    return [card for item in sent if (card := item.card) is not None and '"passValue"' in json.dumps(card)]


def writes(bot: RunningBot) -> int:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    return sandbox.state.counters.writes


async def asked_to_sign_in(bot: RunningBot, person=ADELE) -> SignInCard:
    [card] = oauth_cards(bot.connector.sent)
    assert card.sent.conversation_id == bot.personal_chat_of(person)
    return card


# --- the OAuthCard ------------------------------------------------------------------------------------------------


async def test_first_use_asks_for_sign_in_privately_then_the_exchange_runs_the_command(delegated: RunningBot) -> None:
    bot = delegated
    callers = graph_callers(bot)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h one-time")
    card = await asked_to_sign_in(bot)
    # The card as Teams reads it: the connection, a sign-in button to the token service's link, and the exchange
    # resource naming the bot's App ID URI (the one its manifest's webApplicationInfo names).
    content = card.content
    assert set(content) <= {"text", "connectionName", "buttons", "tokenExchangeResource", "tokenPostResource"}
    assert content["connectionName"] == CONNECTION and content["text"]
    assert content["buttons"] == [{"type": "signin", "title": "Sign in", "value": card.link}]
    assert card.link.startswith(bot.components.sandbox.root_url + "/api/oauth/signin?signin=")  # type: ignore[union-attr]
    assert content["tokenExchangeResource"]["uri"] == SSO_RESOURCE and content["tokenExchangeResource"]["id"]
    # One sentence why, and nothing written: no pass, no write reached Graph.
    assert any(ASKED in sent.text for sent in bot.connector.in_conversation(bot.personal_chat_of(ADELE)))
    assert pass_cards(bot.connector.sent) == []
    assert await sandbox_passes(bot) == [] and writes(bot) == 0

    status, body = await token_exchange(bot, ADELE, card.exchange_id)

    assert status == 200 and body == {"id": card.exchange_id, "connectionName": CONNECTION}
    [pass_card] = pass_cards(bot.connector.in_conversation(bot.personal_chat_of(ADELE)))
    assert MEGAN.name in card_text(pass_card)
    assert len(await sandbox_passes(bot)) == 1
    assert callers == [ADELE.object_id]  # the create carried Adele's own Graph token


async def test_the_second_command_after_sign_in_needs_none(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = await asked_to_sign_in(bot)
    assert (await token_exchange(bot, ADELE, card.exchange_id))[0] == 200
    bot.connector.clear()
    callers = graph_callers(bot)

    await bot.say(ADELE, f"/tap issue {LEE.upn} 1h")
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")

    assert oauth_cards(bot.connector.sent) == []
    assert len(pass_cards(bot.connector.sent)) == 1
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]
    assert callers == [ADELE.object_id, ADELE.object_id]


async def test_in_a_channel_the_thread_only_learns_that_something_was_sent_privately(delegated: RunningBot) -> None:
    bot = delegated
    channel = bot.activity(ADELE, kind="channel")["conversation"]["id"]
    await bot.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} 2h", kind="channel")
    [card] = oauth_cards(bot.connector.sent)
    assert card.sent.conversation_id != channel
    in_thread = bot.connector.in_conversation(channel)
    assert [sent.text.endswith(SENT_PRIVATELY) for sent in in_thread] == [True]
    assert not any(sent.activity.get("attachments") for sent in in_thread)
    # Teams sends the exchange from the 1:1 chat where the card is.
    status, _ = await token_exchange(bot, ADELE, card.exchange_id)
    assert status == 200
    assert len(await sandbox_passes(bot)) == 1
    assert bot.connector.in_conversation(channel) == in_thread  # still nothing more in the thread


async def test_without_a_reachable_personal_chat_the_thread_says_why_and_nothing_waits_silently(
    delegated: RunningBot,
) -> None:
    bot = delegated
    bot.connector.refuse_create_with = 403  # the app is not installed for her
    await bot.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} 2h", kind="channel")
    assert oauth_cards(bot.connector.sent) == []
    [said] = [sent.text for sent in bot.connector.sent if sent.conversation_id.startswith("19:")]
    assert "couldn't send you the sign-in card privately" in said and "install" in said.lower()
    assert await sandbox_passes(bot) == []


async def test_the_replace_button_asks_for_sign_in_and_replaces_after_it(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    first = await asked_to_sign_in(bot)
    assert (await token_exchange(bot, ADELE, first.exchange_id))[0] == 200
    [before] = await sandbox_passes(bot)
    await bot.say(ADELE, "/tap signout")
    bot.connector.clear()
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 3h")
    question = next(card for card in bot.connector.cards() if "actions" in card)
    data = next(action["data"] for action in question["actions"] if action["verb"] == verbs.CONFIRM_REPLACE)

    answer = await bot.press(ADELE, verbs.CONFIRM_REPLACE, data)

    assert "Sign in" in card_text(answer["value"])
    card = await asked_to_sign_in(bot)
    assert await sandbox_passes(bot) == [before]  # nothing replaced yet
    assert (await token_exchange(bot, ADELE, card.exchange_id))[0] == 200
    [after] = await sandbox_passes(bot)
    assert after["id"] != before["id"]


async def test_a_form_submitted_before_sign_in_runs_after_it(delegated: RunningBot) -> None:
    bot = delegated
    answer = await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(MEGAN, reason="INC0012345 lost phone"))
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"  # the form settles; the answer follows
    card = await asked_to_sign_in(bot)
    assert await sandbox_passes(bot) == []
    assert (await token_exchange(bot, ADELE, card.exchange_id))[0] == 200
    [issued] = await sandbox_passes(bot)
    assert issued["user_id"] == MEGAN.object_id
    [row] = [row for row in await bot.components.store.audit_rows() if row.outcome == "succeeded"]
    assert row.reason == "INC0012345 lost phone"  # the canonical command kept the reason


async def test_the_message_action_submitted_before_sign_in_closes_saying_so_and_runs_after_it(
    delegated: RunningBot,
) -> None:
    bot = delegated
    answer = await submit(bot, ADELE, issue_values(MEGAN))
    assert closing(answer).startswith("Sent to you privately")
    [card] = oauth_cards(bot.connector.sent)
    assert card.sent.conversation_id == bot.connector.personal_chats[ADELE.channel_id]
    assert not any(sent.conversation_id.startswith("19:") for sent in bot.connector.sent)
    assert (await token_exchange(bot, ADELE, card.exchange_id))[0] == 200
    assert len(await sandbox_passes(bot)) == 1


# --- the exchange's failures and duplicates --------------------------------------------------------------------


async def test_a_failed_exchange_answers_412_writes_nothing_and_the_button_still_signs_in(
    delegated: RunningBot,
) -> None:
    bot = delegated
    identity(bot).require_consent(ADELE.object_id)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = await asked_to_sign_in(bot)

    status, body = await token_exchange(bot, ADELE, card.exchange_id)

    assert status == 412
    assert body["id"] == card.exchange_id and body["connectionName"] == CONNECTION and body["failureDetail"]
    assert "Consent" not in json.dumps(body)  # the token service's words stay in the bot
    assert await sandbox_passes(bot) == [] and writes(bot) == 0
    assert pass_cards(bot.connector.sent) == []
    # Teams shows the card's button; the page signs her in (consenting) and Teams sends verifyState with its code.
    status, _ = await verify_state(bot, ADELE, sign_in_page_code(bot, card))
    assert status == 200
    assert len(pass_cards(bot.connector.sent)) == 1
    assert len(await sandbox_passes(bot)) == 1


async def test_a_duplicate_exchange_is_answered_without_a_second_exchange(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = await asked_to_sign_in(bot)

    # Teams' desktop and web clients each send one, with the same id.
    answers = await asyncio.gather(
        token_exchange(bot, ADELE, card.exchange_id), token_exchange(bot, ADELE, card.exchange_id)
    )
    later = await token_exchange(bot, ADELE, card.exchange_id)

    assert [status for status, _ in [*answers, later]] == [200, 200, 200]
    assert identity(bot).counters.exchanges == 1
    assert len(pass_cards(bot.connector.sent)) == 1
    assert len(await sandbox_passes(bot)) == 1


async def test_verify_state_with_a_wrong_code_signs_nobody_in(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    await asked_to_sign_in(bot)
    status, _ = await verify_state(bot, ADELE, "000000")
    assert status == 200
    assert "did not finish" in bot.connector.texts()[-1]
    assert await sandbox_passes(bot) == []


async def test_a_code_from_the_sign_in_page_typed_in_the_sandbox_chat_resumes(
    delegated: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = delegated
    caplog.set_level(logging.DEBUG)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = await asked_to_sign_in(bot)
    # The sandbox has no single sign-on: it adds a card opening the same sign-in page.
    link_card = next(card for card in bot.connector.cards() if "then type the 6-digit code here" in card_text(card))
    assert link_card["actions"] == [{"type": "Action.OpenUrl", "title": "Sign in", "url": card.link}]

    code = sign_in_page_code(bot, card)
    await bot.say(ADELE, code)

    assert len(pass_cards(bot.connector.sent)) == 1
    assert len(await sandbox_passes(bot)) == 1
    # The code is nowhere in the logs, the console's one-line turn summaries included.
    assert code not in caplog.text
    assert not any(code in str(value) for record in caplog.records for value in vars(record).values())


async def test_a_wait_expires_after_ten_minutes(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = await asked_to_sign_in(bot)
    bot.clock.offset += timedelta(minutes=10, seconds=1)

    status, _ = await token_exchange(bot, ADELE, card.exchange_id)

    assert status == 200  # she is signed in; what waited is gone
    assert bot.connector.texts()[-1].endswith(SIGNED_IN_NOTHING_WAITING)
    assert await sandbox_passes(bot) == [] and writes(bot) == 0


# --- sign-out ----------------------------------------------------------------------------------------------------


async def test_sign_out_then_a_command_asks_for_sign_in_again(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = await asked_to_sign_in(bot)
    assert (await token_exchange(bot, ADELE, card.exchange_id))[0] == 200
    assert identity(bot).sessions

    await bot.say(ADELE, "/tap signout")

    assert bot.connector.texts()[-1].endswith(SIGNED_OUT)
    assert not identity(bot).sessions  # ended at the token service too
    bot.connector.clear()
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    again = await asked_to_sign_in(bot)
    assert again.exchange_id != card.exchange_id
    assert len(await sandbox_passes(bot)) == 1  # not revoked until she signs in
    assert (await token_exchange(bot, ADELE, again.exchange_id))[0] == 200
    assert await sandbox_passes(bot) == []


# --- who may sign in where ---------------------------------------------------------------------------------------


async def test_a_non_operator_is_refused_by_the_bot_without_being_asked_to_sign_in(delegated: RunningBot) -> None:
    bot = delegated
    await bot.say(DIEGO, f"/tap issue {MEGAN.upn} 2h")
    assert oauth_cards(bot.connector.sent) == []
    assert any("operator" in text for text in bot.connector.texts())
    assert identity(bot).counters.get_token_calls == 0


async def test_sign_in_invokes_from_elsewhere_are_refused_without_asking_the_token_service(
    delegated: RunningBot,
) -> None:
    bot = delegated
    other_tenant = "f00df00d-0000-4000-8000-000000000001"
    refusals = [
        await token_exchange(bot, ADELE, "x1", tenant=other_tenant),
        await token_exchange(bot, ADELE, "x2", connection="someone-elses-connection"),
        await token_exchange(bot, ADELE, "x3", token=identity(bot).teams_sso_token(ALEX.object_id)),
        await token_exchange(bot, ADELE, "x4", token="not-a-jwt"),
        await token_exchange(bot, ADELE, "x5", kind="groupChat"),
    ]
    for status, body in refusals:
        assert status == 400 and body["failureDetail"], body
    assert identity(bot).counters.exchanges == 0
    status, _ = await verify_state(bot, ADELE, "123456", kind="groupChat")
    assert status == 200 and identity(bot).counters.get_token_calls == 0
    assert not identity(bot).sessions


async def test_a_sign_in_failure_gets_a_sentence_and_no_secret_is_logged(
    delegated: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = delegated
    caplog.set_level(logging.INFO)
    value = {"code": "resourcematchfailed", "message": "Resource match failed secret-looking-detail"}
    status, _ = await invoke(bot, sign_in_invoke(bot, ADELE, "signin/failure", value))
    assert status == 200
    assert "resourcematchfailed" in bot.connector.texts()[-1]
    assert "secret-looking-detail" not in caplog.text


# --- no token value anywhere ------------------------------------------------------------------------------------


async def test_no_token_value_reaches_a_log_the_database_or_a_card(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start_bot(sandbox_env(tmp_path, **delegated_env()))
    try:
        minted: list[str] = []
        keys = identity(bot).keys
        mint = keys.mint

        def recording_mint(**claims: Any) -> str:
            token = mint(**claims)
            minted.append(token)
            return token

        keys.mint = recording_mint  # type: ignore[method-assign]
        answers: list[Any] = []
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
        card = await asked_to_sign_in(bot)
        answers.append(await token_exchange(bot, ADELE, card.exchange_id))  # SSO token, then Graph token
        await bot.say(ADELE, "/tap signout")
        await bot.say(ADELE, f"/tap issue {LEE.upn} 1h")
        [_, again] = oauth_cards(bot.connector.sent)
        answers.append(await verify_state(bot, ADELE, sign_in_page_code(bot, again)))  # a Graph token by code
        assert len(pass_cards(bot.connector.sent)) == 2
        assert len(minted) >= 3
    finally:
        await stop_bot(bot)
    database = (tmp_path / "tapbot.db").read_bytes()
    sent = json.dumps([item.activity for item in bot.connector.sent])
    for token in minted:
        assert token not in caplog.text
        assert token.encode() not in database
        assert token not in sent
        assert token not in json.dumps(answers)
        signature = token.rsplit(".", 1)[-1]
        assert signature not in caplog.text and signature.encode() not in database and signature not in sent


# --- application mode -------------------------------------------------------------------------------------------


async def test_application_mode_never_asks_anyone_to_sign_in(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    assert len(pass_cards(bot.connector.sent)) == 1
    status, body = await token_exchange(bot, ADELE, "x")
    assert status == 400 and body["failureDetail"] == NOT_DELEGATED
    await bot.say(ADELE, "/tap signout")
    assert bot.connector.texts()[-1].endswith(NOT_DELEGATED)
    assert not any(
        attachment.get("contentType") == OAUTH_CARD
        for sent in bot.connector.sent
        for attachment in sent.activity.get("attachments") or []
    )
    assert identity(bot).counters.exchanges == 0 and identity(bot).counters.get_token_calls == 0
