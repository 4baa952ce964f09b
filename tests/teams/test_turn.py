"""`Turns` without HTTP: one Turn per activity, and refusals answered in one place (privately for messages, as the
presser's one-line answer for buttons)."""

from __future__ import annotations

from typing import Any, cast
from zoneinfo import ZoneInfo

from microsoft_agents.activity import Activity, AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core import TurnContext, TurnState

from bot.domain.errors import Refused, Rule, TapError
from bot.teams.activity import TurnFacts
from bot.teams.delivery import DeliveryFailed, PrivateDelivery
from bot.teams.presentation import Presentation
from bot.teams.turn import SENT_PRIVATELY, Turn, Turns
from cards.buttons import BadButtonData

BERLIN = ZoneInfo("Europe/Berlin")
ADELE = "884f0a7d-eeec-4d58-b136-0634982d6c8f"


class RecordingContext:
    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self.sent: list[Activity] = []

    async def send_activity(self, activity: Activity) -> None:
        self.sent.append(activity)


class RecordingDelivery:
    def __init__(self, *, fails: bool = False) -> None:
        self.fails = fails
        self.sent: list[Activity] = []

    async def send_privately(self, _context: object, _facts: TurnFacts, activity: Activity) -> None:
        if self.fails:
            raise DeliveryFailed("the user has not installed the app")
        self.sent.append(activity)


def _activity(kind: str = "personal") -> Activity:
    return Activity.model_validate(
        {
            "type": "message",
            "id": "1",
            "channelId": "msteams",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "from": {"id": "29:adele", "name": "Adele Vance", "aadObjectId": ADELE.upper()},
            "recipient": {"id": "28:tapbot", "name": "tapbot"},
            "conversation": {"id": "a:1" if kind == "personal" else "19:c@thread.tacv2", "conversationType": kind},
            "channelData": {"tenant": {"id": "tenant-1"}},
            "entities": [{"type": "clientInfo", "timezone": "America/New_York"}],
            "text": "<at>tapbot</at> tap help",
        }
    )


def _turns(delivery: RecordingDelivery) -> Turns:
    presentation = Presentation(
        default_timezone=BERLIN, default_start_hour=8, decorate=lambda card: {**card, "decorated": True}
    )
    return Turns(presentation=presentation, delivery=cast(PrivateDelivery, delivery))


def _context(kind: str = "personal") -> Any:
    return RecordingContext(_activity(kind))


async def test_a_turn_is_built_once_with_the_callers_facts() -> None:
    seen: list[Turn] = []

    async def handler(turn: Turn) -> None:
        seen.append(turn)

    context = _context()
    await _turns(RecordingDelivery()).activity(handler)(cast(TurnContext, context), cast(TurnState, None))
    [turn] = seen
    assert turn.caller.object_id == ADELE, "a canonical lower-case id"
    assert turn.timezone == ZoneInfo("America/New_York")
    assert turn.facts.text == "tap help"
    assert turn.caller.address is not None and turn.caller.address.channel_account_id == "29:adele"
    assert turn.card({"type": "AdaptiveCard"}) == {"type": "AdaptiveCard", "decorated": True}


async def test_a_refusal_in_a_message_handler_is_told_privately() -> None:
    async def refuses(_turn: Turn) -> None:
        raise Refused(Rule.NOT_OPERATOR, "Only IT operators can issue passes.")

    delivery = RecordingDelivery()
    context = _context("channel")
    await _turns(delivery).activity(refuses)(cast(TurnContext, context), cast(TurnState, None))
    assert [activity.text for activity in delivery.sent] == ["Only IT operators can issue passes."]
    assert [activity.text for activity in context.sent] == [SENT_PRIVATELY], "the channel learns only that"


async def test_a_refusal_that_cannot_reach_the_private_chat_says_why_here() -> None:
    async def refuses(_turn: Turn) -> None:
        raise TapError("No.")

    context = _context("channel")
    await _turns(RecordingDelivery(fails=True)).activity(refuses)(cast(TurnContext, context), cast(TurnState, None))
    [said] = [activity.text or "" for activity in context.sent]
    assert said.startswith("I couldn't answer you privately (the user has not installed the app).")
    assert "No." not in said


async def test_a_refusal_in_a_personal_chat_is_answered_there() -> None:
    async def refuses(_turn: Turn) -> None:
        raise TapError("No.")

    delivery = RecordingDelivery()
    context = _context()
    await _turns(delivery).activity(refuses)(cast(TurnContext, context), cast(TurnState, None))
    assert [activity.text for activity in context.sent] == ["No."]
    assert delivery.sent == []


async def test_a_buttons_refusal_or_damaged_data_is_the_pressers_answer() -> None:
    async def refuses(_turn: Turn, _data: object) -> AdaptiveCardInvokeResponse:
        raise TapError("You cannot do that.")

    async def damaged(_turn: Turn, _data: object) -> AdaptiveCardInvokeResponse:
        raise BadButtonData()

    turns = _turns(RecordingDelivery())
    for handler, sentence in ((refuses, "You cannot do that."), (damaged, BadButtonData().sentence)):
        answer = await turns.button(handler)(cast(TurnContext, _context()), cast(TurnState, None), {})
        assert answer.value == sentence


async def test_anything_else_reaches_the_turn_error_handler() -> None:
    async def breaks(_turn: Turn) -> None:
        raise RuntimeError("bug")

    context = _context()
    try:
        await _turns(RecordingDelivery()).activity(breaks)(cast(TurnContext, context), cast(TurnState, None))
    except RuntimeError:
        pass
    else:
        raise AssertionError("a bug must not be answered as a refusal")
    assert context.sent == []
