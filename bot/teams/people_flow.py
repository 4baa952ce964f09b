"""A person typed by name, settled before the command runs: one match goes on with the object id, several get a
private "Which Megan?" card, none get a sentence with the closest people.

A name only ever selects the *target*. Who is asking comes from the activity, and the chosen command runs again
from the start for whoever presses a choice button (its text is re-parsed and every rule checked anew).
"""

from __future__ import annotations

from typing import Protocol

from microsoft_agents.activity import AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.commands import (
    Command,
    CommandError,
    IssueCommand,
    OnboardCommand,
    RevokeCommand,
    StatusCommand,
    command_text,
    is_user_reference,
    names_a_person_by_name,
    parse_command,
    target_of,
    with_target,
)
from bot.domain.people import NoPerson, OnePerson, PeopleFinder, Purpose, SeveralPeople
from bot.domain.ports import Clock
from bot.teams.turn import Turn
from cards.buttons import BadButtonData, ChoosePersonButton
from cards.people import chosen_card, no_person_sentence, people_choice_card

NOT_YOURS = "This choice was offered to someone else, so I did nothing. Type the command yourself."


class RunsCommands(Protocol):
    """The command runner (bot/teams/handlers.py): runs a command exactly as if it had been typed."""

    async def run(self, turn: Turn, command: Command) -> None: ...


def purpose_of(command: Command) -> Purpose | None:
    match command:
        case IssueCommand():
            return "issue"
        case OnboardCommand():
            return "onboard"
        case RevokeCommand():
            return "revoke"
        case StatusCommand():
            return "status"
        case _:
            return None


class PeopleFlow:
    """`settle`: the command with the person's object id, or None when the caller was asked or told instead."""

    def __init__(self, *, finder: PeopleFinder) -> None:
        self._finder = finder

    async def settle(self, turn: Turn, command: Command) -> Command | None:
        purpose = purpose_of(command)
        typed = target_of(command)
        if purpose is None or typed is None or not names_a_person_by_name(command):
            return command
        # A refusal (not an operator, not a manager) propagates: Turns tells the caller privately.
        found = await self._finder.resolve(turn.caller, typed, purpose=purpose)
        if isinstance(found, OnePerson):
            return with_target(command, found.user.object_id)
        if isinstance(found, SeveralPeople):
            commands = [command_text(with_target(command, user.object_id)) for user in found.candidates]
            card = people_choice_card(
                typed, found.candidates, commands, more=found.more, offered_to=turn.caller.object_id.lower()
            )
            await turn.reply_privately(card=card)
            return None
        assert isinstance(found, NoPerson)
        await turn.reply_privately(no_person_sentence(typed, found))
        return None


class PersonChoices:
    """The buttons of a "Which Megan?" card: the command they carry runs as if the presser had typed it."""

    def __init__(self, *, runner: RunsCommands, clock: Clock) -> None:
        self._runner = runner
        self._clock = clock

    async def on_choose_person(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = ChoosePersonButton.parse(data)
        if button.offered_to != turn.caller.object_id.lower():
            return factory.message(NOT_YOURS)
        try:
            command = parse_command(
                button.command,
                now=self._clock.now(),
                tz=turn.timezone,
                default_start_hour=turn.presentation.default_start_hour,
            )
        except CommandError:
            raise BadButtonData() from None
        target = target_of(command)
        # Only a command about one person named exactly: anything else is not what this card put on the button.
        if purpose_of(command) is None or target is None or not is_user_reference(target):
            raise BadButtonData()
        await self._runner.run(turn, command)  # every rule checked again for the presser; a refusal is their answer
        return turn.card_answer(chosen_card(button.label))
