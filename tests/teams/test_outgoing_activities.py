"""The activities the bot sends, as the Agents SDK handles them: TurnContext.send_activities deep-copies each one
before it fills in the conversation (a shallow copy for the bot's own, bot/teams/delivery.py), and the connector
client sends `model_dump(mode="json")` of the copy."""

from __future__ import annotations

import copy
import json
from typing import Any

from microsoft_agents.activity import ChannelId, ConversationReference
from microsoft_agents.activity.channel_account import ChannelAccount
from microsoft_agents.activity.conversation_account import ConversationAccount
from microsoft_agents.hosting.core import TurnContext

from bot.teams.delivery import ADAPTIVE_CARD, card_message, text_message


def a_card() -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Temporary Access Pass", "wrap": True}],
        "actions": [{"type": "Action.Execute", "title": "I have handed it over", "verb": "tap.handedOver"}],
    }


def wire(activity: Any) -> str:
    return json.dumps(activity.model_dump(by_alias=True, exclude_unset=True, mode="json"), sort_keys=True)


def a_reference() -> ConversationReference:
    return ConversationReference(
        conversation=ConversationAccount(id="a:chat"),
        user=ChannelAccount(id="29:user"),
        agent=ChannelAccount(id="28:bot"),
        channel_id=ChannelId("msteams"),
        service_url="https://smba.trafficmanager.net/emea/",
        activity_id="1:incoming",
    )


def test_the_sdks_copy_of_a_card_message_shares_the_card_and_copies_the_rest() -> None:
    card = a_card()
    sent = card_message(card)
    before = wire(sent)
    copied = copy.deepcopy(sent)
    assert copied is not sent
    assert copied.attachments is sent.attachments  # a shallow copy: nothing but top-level fields is changed on it
    assert copied.attachments is not None and sent.attachments is not None
    assert copied.attachments[0].content is sent.attachments[0].content  # not copied: nothing changes it
    # What the SDK then does to its copy (TurnContext.send_activities, the adapter) leaves the bot's activity as it was.
    TurnContext.apply_conversation_reference(copied, a_reference())
    copied.id = None
    copied.input_hint = "acceptingInput"
    assert copied.conversation is not None and copied.conversation.id == "a:chat"
    assert copied.reply_to_id == "1:incoming" and copied.recipient is not None
    assert sent.conversation is None and sent.service_url is None and sent.reply_to_id is None
    assert sent.recipient is None and sent.input_hint is None
    assert wire(sent) == before


def test_the_sdks_copy_of_a_text_message_leaves_the_bots_as_it_was() -> None:
    sent = text_message("Sent to you privately.")
    copied = copy.deepcopy(sent)
    TurnContext.apply_conversation_reference(copied, a_reference())
    copied.input_hint = "acceptingInput"
    assert wire(sent) == json.dumps({"type": "message", "text": "Sent to you privately."}, sort_keys=True)
    assert json.loads(wire(copied))["conversation"] == {"id": "a:chat"}


def test_a_card_message_goes_out_as_the_card_it_was_given() -> None:
    card = a_card()
    sent = card_message(card)
    assert sent.attachments is not None and sent.attachments[0].content_type == ADAPTIVE_CARD
    assert sent.attachments[0].content == card
    expected = {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}
    assert wire(copy.deepcopy(sent)) == json.dumps(expected, sort_keys=True)
