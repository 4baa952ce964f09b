"""Typed commands at the Teams edge: a message becomes a command (bot/domain/commands), and `CommandRunner` runs it.

Every command handler has one shape, `async def handler(turn: Turn, command: <its Command type>) -> None`, and is
found through `CommandHandlers`, a table from command type to handler. `CommandRunner.run(turn, command)` runs a
command exactly as if it had been typed: the choice buttons of a name, the form's submit and the message action
call it too. A name is first settled to one person (`SettlesPeople`, bot/teams/people_flow.py); the name never
changes who the caller is, which comes from the activity alone.

A command's whole path: bot/domain/commands/table.py (its row and parser) → bot/teams/handlers.py (its handler) →
bot/domain/service.py (the rules).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from bot.domain.commands import EXAMPLE_ISSUE, Command, CommandError, names_a_person_by_name, parse_command, target_of
from bot.domain.errors import SignInRequired
from bot.domain.ports import Clock, ProcessedActivities
from bot.teams.bulk_flow import BulkFlow, attached_file
from bot.teams.delivery import PrivateDelivery
from bot.teams.mentions import text_with_mentions
from bot.teams.presentation import Presentation
from bot.teams.turn import Turn

logger = logging.getLogger(__name__)

DEDUPE_WINDOW = timedelta(days=1)
NAMES_NOT_RESOLVED = (
    "I can't look people up by name here, so I did nothing for '{name}'. Give their user principal name "
    "(name@domain) or object id. Example: {example}"
)

C = TypeVar("C")
CommandHandler = Callable[[Turn, C], Awaitable[None]]


class CommandHandlers:
    """The table from command type to its handler. `add` keeps each handler typed for its command."""

    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[Turn, Any], Awaitable[None]]] = {}

    def add(self, command_type: type[C], handler: CommandHandler[C]) -> CommandHandlers:
        if command_type in self._handlers:
            raise ValueError(f"{command_type.__name__} has a handler already")
        self._handlers[command_type] = handler
        return self

    def handler_for(self, command: Command) -> Callable[[Turn, Any], Awaitable[None]] | None:
        return self._handlers.get(type(command))

    def handled_types(self) -> frozenset[type]:
        return frozenset(self._handlers)


class SettlesPeople(Protocol):
    """Turns a command naming a person by name into the same command naming their object id, or answers the
    caller (a choice card, or no match) and returns None. See bot/teams/people_flow.py."""

    async def settle(self, turn: Turn, command: Command) -> Command | None: ...


class CommandRunner:
    """Runs a command as if typed; `people` settles names (without it, a name gets a sentence and nothing runs)."""

    def __init__(self, *, handlers: CommandHandlers, people: SettlesPeople | None = None) -> None:
        self._handlers = handlers
        self._people = people

    def handled_types(self) -> frozenset[type]:
        return self._handlers.handled_types()

    async def run(self, turn: Turn, command: Command) -> None:
        if names_a_person_by_name(command):
            if self._people is None:
                await turn.reply_here(NAMES_NOT_RESOLVED.format(name=target_of(command), example=EXAMPLE_ISSUE))
                return
            settled = await self._people.settle(turn, command)
            if settled is None:
                return
            if names_a_person_by_name(settled):
                raise ValueError("a settled command must name one person exactly")
            command = settled
        handler = self._handlers.handler_for(command)
        if handler is None:
            raise LookupError(f"no handler for {type(command).__name__}")  # a test checks every type has one
        try:
            await handler(turn, command)
        except SignInRequired as needed:
            # Delegated writes: nothing was written; the caller gets a sign-in card privately and this command runs
            # again, every rule checked again, once they have signed in (bot/teams/sign_in.py).
            await turn.ask_sign_in(needed, command)


class TakesSignInCodes(Protocol):
    """The sandbox's sign-in by typed code (bot/teams/sign_in.py): True when the message was such a code."""

    async def on_code(self, turn: Turn) -> bool: ...


class TypedCommands:
    """A message: a bulk file, a sign-in code (sandbox), or a typed command parsed and handed to the runner; a
    retried delivery is ignored."""

    def __init__(
        self,
        *,
        runner: CommandRunner,
        bulk: BulkFlow,
        delivery: PrivateDelivery,
        store: ProcessedActivities,
        clock: Clock,
        presentation: Presentation,
        sign_in_codes: TakesSignInCodes | None = None,
    ) -> None:
        self._sign_in_codes = sign_in_codes
        self._runner = runner
        self._bulk = bulk
        self._delivery = delivery
        self._store = store
        self._clock = clock
        self._presentation = presentation

    async def on_message(self, turn: Turn) -> None:
        if not await self._first_delivery(turn):
            logger.info("ignoring a repeated delivery of activity %s", turn.context.activity.id)
            return
        await self._delivery.remember_personal_chat(turn.facts)
        attached = attached_file(turn.context.activity)
        if attached is not None:
            await self._bulk.on_file(turn, attached)
            return
        if self._sign_in_codes is not None and await self._sign_in_codes.on_code(turn):
            return
        try:
            command = parse_command(
                await text_with_mentions(turn),  # a mentioned person is the entity's object id, not the <at> text
                now=self._clock.now(),
                tz=turn.timezone,
                default_start_hour=self._presentation.default_start_hour,
            )
        except CommandError as error:
            await turn.reply_here(f"{error.reason} Example: {error.example}")
            return
        await self._runner.run(turn, command)

    async def _first_delivery(self, turn: Turn) -> bool:
        """Teams retries a delivery it believes failed, with the same activity id: act on it only once."""
        activity = turn.context.activity
        if not activity.id:
            return True
        conversation = activity.conversation.id if activity.conversation else ""
        return await self._store.first_delivery(f"{conversation}|{activity.id}", self._clock.now(), DEDUPE_WINDOW)
