"""The message action "Issue a Temporary Access Pass" (issue 11 item 5) through the real HTTP endpoint: Teams'
`composeExtension/fetchTask` opens the issue form in a dialog prefilled from the message (a mentioned person, else
the author; the text as the reason), `composeExtension/submitAction` runs it as the typed command, and the pass
only ever reaches the technician's 1:1 chat."""

from __future__ import annotations

from typing import Any

from bot.domain.reasons import MAX_REASON_LENGTH
from bot.teams.message_action import COMMAND_ID
from tests.harness.bot import ADELE, DIEGO, MEGAN, TENANT_ID, Person, RunningBot
from tests.harness.card_reading import pass_value
from tests.harness.card_schema import assert_valid_card
from tests.http.test_forms import error_under, inputs, issue_values, pass_cards
from tests.http.test_issue_flow import card_text, sandbox_passes

CHANNEL = "19:general@thread.tacv2;messageid=1"
SENT_PRIVATELY = "[SANDBOX] Sent to you privately: look in your personal chat with me."


def aad_user(person: Person, *, teams_id: str | None = None) -> dict[str, Any]:
    return {"user": {"id": teams_id or person.object_id, "displayName": person.name, "userIdentityType": "aadUser"}}


def payload(
    author: dict[str, Any], html: str, mentions: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    """A message payload as Teams sends it with the action (learn.microsoft.com: action command, message context)."""
    return {
        "id": "1795900805505",
        "createdDateTime": "2026-11-28T09:00:00.000Z",
        "importance": "normal",
        "locale": "en-us",
        "from": author,
        "body": {"contentType": "html", "content": html},
        "attachments": [],
        "mentions": mentions or [],
        "reactions": [],
        **extra,
    }


async def invoke(
    bot: RunningBot, person: Person, name: str, value: dict[str, Any], *, kind: str = "channel"
) -> dict[str, Any]:
    activity = bot.activity(person, kind=kind)
    activity.update({"type": "invoke", "name": name, "value": {"commandId": COMMAND_ID, **value}})
    activity["channelData"]["source"] = {"name": "compose"}
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def fetch(bot: RunningBot, person: Person, message: dict[str, Any], **options: Any) -> dict[str, Any]:
    value = {"commandContext": "message", "context": {"theme": "default"}, "messagePayload": message}
    return await invoke(bot, person, "composeExtension/fetchTask", value, **options)


async def submit(bot: RunningBot, person: Person, data: dict[str, Any], **options: Any) -> dict[str, Any]:
    value = {"commandContext": "message", "context": {"theme": "default"}, "data": data}
    return await invoke(bot, person, "composeExtension/submitAction", value, **options)


def dialog_card(answer: dict[str, Any]) -> dict[str, Any]:
    task = answer["task"]
    assert task["type"] == "continue", answer
    assert task["value"]["title"] == "Issue a Temporary Access Pass"
    attachment = task["value"]["card"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert_valid_card(card)
    return card


def closing(answer: dict[str, Any]) -> str:
    task = answer["task"]
    assert task["type"] == "message", answer
    return task["value"]


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return list(card.get("actions") or [])


# --- the dialog and its prefill ------------------------------------------------------------------------------


async def test_the_dialog_is_the_issue_form_prefilled_with_the_mentioned_person_and_the_text(bot: RunningBot) -> None:
    message = payload(
        aad_user(DIEGO),
        '<div><p>INC0012345: <at id="0">Megan Bowen</at> lost her phone &amp; needs&nbsp;access</p></div>',
        [{"id": 0, "mentionText": "Megan Bowen", "mentioned": aad_user(MEGAN)}],
    )
    card = dialog_card(await fetch(bot, ADELE, message))
    fields = inputs(card)
    assert list(fields) == ["person", "lifetime", "oneTime", "startDate", "startTime", "reason"]
    assert fields["person"]["value"] == MEGAN.object_id
    choices = fields["person"]["choices"]
    assert any(choice["value"] == MEGAN.object_id and MEGAN.upn in choice["title"] for choice in choices)
    assert fields["reason"]["value"] == "INC0012345: Megan Bowen lost her phone & needs access"
    # A dialog submits with Action.Submit; its data names the form like the card's own button.
    assert [(action["type"], action["data"]) for action in actions(card)] == [("Action.Submit", {"form": "issue"})]
    assert bot.connector.sent == [], "opening the dialog posts nothing anywhere"


async def test_without_a_mention_the_author_is_the_person_and_a_teams_id_is_looked_up(bot: RunningBot) -> None:
    teams_id = bot.connector.add_member(MEGAN.object_id, MEGAN.name, MEGAN.upn, TENANT_ID)
    long_text = "INC0099999 " + "the phone was lost on the train " * 20
    card = dialog_card(await fetch(bot, ADELE, payload(aad_user(MEGAN, teams_id=teams_id), long_text)))
    fields = inputs(card)
    assert fields["person"]["value"] == MEGAN.object_id
    reason = fields["reason"]["value"]
    assert len(reason) <= MAX_REASON_LENGTH < len(long_text)
    assert reason.startswith("INC0099999 the phone") and reason.endswith("…")
    assert bot.connector.member_lookups == [(CHANNEL, teams_id)]


async def test_the_caller_and_a_bot_are_never_proposed(bot: RunningBot) -> None:
    bot_author = {"application": {"id": "28:itsm-bot", "displayName": "ITSM", "applicationIdentityType": "bot"}}
    for author in (aad_user(ADELE), bot_author):
        card = dialog_card(await fetch(bot, ADELE, payload(author, "Ticket INC0012345 opened")))
        assert not inputs(card)["person"].get("value"), author


async def test_an_unknown_teams_id_proposes_nobody(bot: RunningBot) -> None:
    card = dialog_card(await fetch(bot, ADELE, payload(aad_user(MEGAN, teams_id="29:1nobody-here"), "hello")))
    assert not inputs(card)["person"].get("value")


async def test_a_payload_full_of_mentions_costs_a_few_lookups_at_most(bot: RunningBot) -> None:
    unknown = [{"id": n, "mentioned": aad_user(MEGAN, teams_id=f"29:1unknown-{n}")} for n in range(200)]
    card = dialog_card(await fetch(bot, ADELE, payload(aad_user(ADELE), "hello", unknown)))
    assert not inputs(card)["person"].get("value")
    assert 0 < len(bot.connector.member_lookups) <= 10


async def test_a_non_operator_gets_the_typed_commands_refusal_and_nobody_is_looked_up(bot: RunningBot) -> None:
    await bot.say(DIEGO, "/tap issue")
    typed_refusal = bot.connector.texts()[-1].removeprefix("[SANDBOX] ")
    bot.connector.clear()
    teams_id = bot.connector.add_member(MEGAN.object_id, MEGAN.name, MEGAN.upn, TENANT_ID)
    answer = await fetch(bot, DIEGO, payload(aad_user(MEGAN, teams_id=teams_id), "INC1 Megan lost her phone"))
    assert closing(answer) == typed_refusal and "Only TAP operators" in typed_refusal
    answer = await submit(bot, DIEGO, issue_values(MEGAN, reason="INC1"))
    assert closing(answer) == typed_refusal
    assert await sandbox_passes(bot) == []
    assert bot.connector.sent == []


# --- submitting the dialog -----------------------------------------------------------------------------------


async def test_a_valid_submit_issues_the_pass_to_the_1_1_chat_only_and_closes_the_dialog(bot: RunningBot) -> None:
    answer = await submit(bot, ADELE, issue_values(MEGAN, lifetime="120", reason="INC0012345 lost phone"))
    assert closing(answer) == "Sent to you privately: look in your personal chat with me."
    [(conversation, card)] = pass_cards(bot)
    assert conversation.startswith("a:personal") and "Temporary Access Pass for Megan Bowen" in card_text(card)
    created = [sent for sent in bot.connector.sent if sent.kind == "create"]
    assert [sent.activity["members"] for sent in created] == [[{"id": ADELE.channel_id}]]
    assert bot.connector.in_conversation(CHANNEL) == [], "nothing is posted where the message was"
    assert pass_value(card) not in str(answer)
    [issued] = await sandbox_passes(bot)
    assert issued["user_id"] == MEGAN.object_id and issued["lifetime_in_minutes"] == 120
    [row] = [row for row in await bot.components.store.audit_rows() if row.action == "issue"]
    assert row.actor_id == ADELE.object_id and row.reason == "INC0012345 lost phone"


async def test_a_submit_from_a_chat_between_people_still_answers_only_in_the_1_1_chat(bot: RunningBot) -> None:
    """A message action in someone else's 1:1 chat arrives as `personal`: that chat is not the bot's, so nothing is
    sent into it."""
    activity_chat = "a:chat-between-adele-and-megan"
    activity = bot.activity(ADELE)
    activity["conversation"] = {"id": activity_chat, "conversationType": "personal"}
    activity.update(
        {
            "type": "invoke",
            "name": "composeExtension/submitAction",
            "value": {"commandId": COMMAND_ID, "commandContext": "message", "data": issue_values(MEGAN)},
        }
    )
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        answer = await response.json()
    assert closing(answer).startswith("Sent to you privately")
    assert bot.connector.in_conversation(activity_chat) == []
    [(conversation, _card)] = pass_cards(bot)
    assert conversation == bot.connector.personal_chats[ADELE.channel_id]


async def test_invalid_fields_come_back_in_the_dialog_next_to_their_fields(bot: RunningBot) -> None:
    data = issue_values(MEGAN, lifetime="forever", reason="x" * 301)
    card = dialog_card(await submit(bot, ADELE, data))
    assert "not a lifetime" in (error_under(card, "lifetime") or "")
    assert "300 characters" in (error_under(card, "reason") or "")
    assert inputs(card)["person"]["value"] == MEGAN.object_id
    assert [action["type"] for action in actions(card)] == ["Action.Submit"]
    assert await sandbox_passes(bot) == []
    assert bot.connector.sent == []


async def test_a_refusal_about_the_person_comes_back_under_the_person(bot: RunningBot) -> None:
    card = dialog_card(await submit(bot, ADELE, issue_values(ADELE)))  # for herself
    assert "yourself" in (error_under(card, "person") or "").lower()
    assert await sandbox_passes(bot) == []


async def test_damaged_data_and_another_command_get_a_sentence(bot: RunningBot) -> None:
    answer = await submit(bot, ADELE, {"form": "delete-everything"})
    assert "button" in closing(answer).lower() or "card" in closing(answer).lower()
    activity = bot.activity(ADELE)
    activity.update({"type": "invoke", "name": "composeExtension/fetchTask", "value": {"commandId": "other"}})
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        assert response.status == 200
        assert "don't know that action" in closing(await response.json())
    assert await sandbox_passes(bot) == []
