"""One turn as a handler sees it: who wrote, where, in which time zone, and the ways to answer them.

`Turns` builds a `Turn` once per activity and answers refusals in one place: a `TapError` a message handler raises
is told privately to the person who wrote; one a card button's handler raises becomes the presser's one-line
answer, as does button data that is not what the bot put on the card (`BadButtonData`). Anything else reaches the
turn error handler, which shows only a reference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from microsoft_agents.activity import Activity, AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core import TurnContext, TurnState
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.commands import Command
from bot.domain.errors import SignInRequired, TapError
from bot.domain.model import Caller
from bot.teams.activity import TurnFacts, turn_facts
from bot.teams.delivery import INSTALL_ADVICE, DeliveryFailed, PrivateDelivery, card_message, text_message
from bot.teams.presentation import Presentation
from cards.buttons import BadButtonData
from cards.passes import CardJson

SENT_PRIVATELY = "Sent to you privately: look in your personal chat with me."

ActivityHandler = Callable[["Turn"], Awaitable[None]]
ButtonHandler = Callable[["Turn", object], Awaitable[AdaptiveCardInvokeResponse]]
SdkActivityHandler = Callable[[TurnContext, TurnState], Awaitable[None]]
SdkButtonHandler = Callable[[TurnContext, TurnState, object], Awaitable[AdaptiveCardInvokeResponse]]


class AsksSignIn(Protocol):
    """Delegated writes (bot/teams/sign_in.py): sends the caller a sign-in card privately, and keeps `command` (if
    any) to run again once they have signed in; returns one sentence for where they acted."""

    async def ask(self, turn: Turn, needed: SignInRequired, command: Command | None = None) -> str: ...


@dataclass(frozen=True)
class Turn:
    context: TurnContext
    facts: TurnFacts
    presentation: Presentation
    delivery: PrivateDelivery
    sign_in: AsksSignIn | None = None

    @property
    def caller(self) -> Caller:
        """The caller, with the address to reach them privately later (approvals, bulk results)."""
        return self.facts.caller_with_address

    @property
    def timezone(self) -> ZoneInfo:
        return self.facts.timezone

    @property
    def is_personal(self) -> bool:
        return self.facts.is_personal

    async def ask_sign_in(self, needed: SignInRequired, command: Command | None = None) -> str:
        """The caller's own write needs their sign-in: the sign-in card goes to them privately. Anything else (no
        sign-in flow, or someone else's sign-in) stays the refusal it is."""
        if self.sign_in is None or needed.user_id.lower() != self.caller.object_id.lower() or not needed.user_id:
            raise needed
        return await self.sign_in.ask(self, needed, command)

    def card(self, card: CardJson) -> CardJson:
        """The card as this bot shows it (in the sandbox, with its banner)."""
        return self.presentation.decorate(card)

    def text(self, text: str) -> Activity:
        return text_message(self.presentation.text_prefix + text)

    def card_answer(self, card: CardJson) -> AdaptiveCardInvokeResponse:
        """A button's answer that replaces the card it was on."""
        return factory.adaptive_card(self.card(card))  # type: ignore[arg-type]

    async def reply_here(self, text: str | None = None, *, card: CardJson | None = None) -> None:
        if card is not None:
            await self.context.send_activity(card_message(self.card(card)))
        if text is not None:
            await self.context.send_activity(self.text(text))

    async def reply_privately(self, text: str | None = None, *, card: CardJson | None = None) -> None:
        """Answers in the 1:1 chat; a channel or group chat only learns that an answer was sent privately."""
        if self.is_personal:
            await self.reply_here(text, card=card)
            return
        activity = card_message(self.card(card)) if card is not None else self.text(text or "")
        await self.send_privately(activity)

    async def send_privately(self, *activities: Activity) -> bool:
        """Sends the activities to the 1:1 chat (here, when this is it). Where this is not the 1:1 chat, says here
        that they were sent, or why they could not be: False then."""
        if self.is_personal:
            for activity in activities:
                await self.context.send_activity(activity)
            return True
        try:
            for activity in activities:
                await self.delivery.send_privately(self.context, self.facts, activity)
        except DeliveryFailed as failure:
            await self.reply_here(f"I couldn't answer you privately ({failure}). {INSTALL_ADVICE}")
            return False
        await self.reply_here(SENT_PRIVATELY)
        return True


class Turns:
    """Makes each activity's `Turn`, and wraps handlers so that refusals are answered here."""

    def __init__(
        self, *, presentation: Presentation, delivery: PrivateDelivery, sign_in: AsksSignIn | None = None
    ) -> None:
        self._presentation = presentation
        self._delivery = delivery
        self._sign_in = sign_in

    def of(self, context: TurnContext) -> Turn:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        return Turn(context, facts, self._presentation, self._delivery, self._sign_in)

    def activity(self, handler: ActivityHandler) -> SdkActivityHandler:
        """A message (or other activity) handler: a refusal is told privately to the person who wrote."""

        async def on_activity(context: TurnContext, _state: TurnState) -> None:
            turn = self.of(context)
            try:
                await handler(turn)
            except SignInRequired as needed:
                await _sign_in_or_refusal(turn, needed)
            except TapError as refusal:
                await turn.reply_privately(refusal.user_message)

        return on_activity

    def button(self, handler: ButtonHandler) -> SdkButtonHandler:
        """A card button's handler: a refusal, or damaged button data, is the presser's one-line answer."""

        async def on_action(context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
            turn = self.of(context)
            try:
                return await handler(turn, data)
            except BadButtonData as bad:
                return factory.message(bad.sentence)
            except SignInRequired as needed:
                try:
                    return factory.message(await turn.ask_sign_in(needed))
                except TapError as refusal:  # not theirs to sign in for, a token that would not do, no sign-in service
                    return factory.message(refusal.user_message)
            except TapError as refusal:
                return factory.message(refusal.user_message)

        return on_action


async def _sign_in_or_refusal(turn: Turn, needed: SignInRequired) -> None:
    """A write of the caller's own that needs their sign-in (no command known here, so nothing resumes by itself)."""
    try:
        await turn.ask_sign_in(needed)
    except TapError as refusal:  # not theirs to sign in for, a token that would not do, or no sign-in service
        await turn.reply_privately(refusal.user_message)
