"""`CommandRunner` without HTTP: a name is settled to one person before the handler runs, and only then."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot.domain.commands import (
    Command,
    HelpCommand,
    IssueCommand,
    PolicyCommand,
    RevokeCommand,
    StatusCommand,
    with_target,
)
from bot.domain.model import PassRequest
from bot.teams.commands import CommandHandlers, CommandRunner
from bot.teams.turn import Turn

MEGAN_ID = "3f2b9c1e-0000-4000-8000-00000000abcd"


class FakeTurn:
    def __init__(self) -> None:
        self.said: list[str] = []

    async def reply_here(self, text: str | None = None, *, card: Any = None) -> None:
        self.said.append(text or "")


class FakePeople:
    """Settles to `answer` (a function of the command) and records what it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[Command] = []

    async def settle(self, turn: Turn, command: Command) -> Command | None:
        self.asked.append(command)
        return self.answer(command)


class Handled:
    def __init__(self) -> None:
        self.commands: list[Command] = []

    async def __call__(self, turn: Turn, command: Any) -> None:
        self.commands.append(command)

    def table(self) -> CommandHandlers:
        return (
            CommandHandlers()
            .add(IssueCommand, self)
            .add(RevokeCommand, self)
            .add(StatusCommand, self)
            .add(HelpCommand, self)
        )


def issue(target: str) -> IssueCommand:
    return IssueCommand(PassRequest(target=target, lifetime_minutes=60, reason="INC1"))


async def run(runner: CommandRunner, command: Command) -> FakeTurn:
    turn = FakeTurn()
    await runner.run(cast(Turn, turn), command)
    return turn


async def test_a_name_is_settled_first_and_the_handler_gets_the_person_found() -> None:
    handled = Handled()
    people = FakePeople(lambda command: with_target(command, MEGAN_ID))
    await run(CommandRunner(handlers=handled.table(), people=people), issue("Megan Bowen"))
    assert people.asked == [issue("Megan Bowen")]
    assert handled.commands == [issue(MEGAN_ID)]


async def test_when_the_caller_is_asked_or_told_instead_nothing_runs() -> None:
    handled = Handled()
    people = FakePeople(lambda _command: None)
    await run(CommandRunner(handlers=handled.table(), people=people), RevokeCommand("Megan", "gone"))
    assert len(people.asked) == 1 and handled.commands == []


async def test_exact_references_and_commands_about_nobody_go_straight_to_their_handler() -> None:
    handled = Handled()
    people = FakePeople(lambda _command: pytest.fail("nothing to settle"))
    runner = CommandRunner(handlers=handled.table(), people=people)
    for command in (issue(MEGAN_ID), StatusCommand("megan@contoso.com"), HelpCommand()):
        await run(runner, command)
    assert people.asked == [] and len(handled.commands) == 3


async def test_without_people_search_a_name_gets_a_sentence_and_nothing_runs() -> None:
    handled = Handled()
    turn = await run(CommandRunner(handlers=handled.table()), StatusCommand("Megan Bowen"))
    assert handled.commands == []
    assert turn.said and "I can't look people up by name here, so I did nothing for 'Megan Bowen'" in turn.said[0]


async def test_a_settled_command_must_name_one_person_exactly() -> None:
    handled = Handled()
    people = FakePeople(lambda command: command)  # a broken settler handing the name back
    with pytest.raises(ValueError, match="name one person exactly"):
        await run(CommandRunner(handlers=handled.table(), people=people), issue("Megan"))
    assert handled.commands == []


async def test_the_table_takes_one_handler_per_type() -> None:
    handled, other = Handled(), Handled()
    table = handled.table()
    with pytest.raises(ValueError, match="has a handler already"):
        table.add(IssueCommand, other)
    await run(CommandRunner(handlers=table), issue(MEGAN_ID))
    assert other.commands == [] and handled.commands == [issue(MEGAN_ID)]
    with pytest.raises(LookupError, match="no handler for PolicyCommand"):
        await run(CommandRunner(handlers=table), PolicyCommand())
