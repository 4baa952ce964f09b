"""How many SQL transactions one typed command costs (issue 13 item 4), counted by a hook on the store's engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from tests.harness.bot import ADELE, MEGAN, RunningBot

# One typed `/tap issue` to a person whose chat is known: the dedupe, the target lock taken, the velocity count, the
# audit row, the lock released, the pass card saved. Re-reading the person's unchanged 1:1 chat made it 7.
ISSUE_TRANSACTIONS = 6


@dataclass
class Counted:
    transactions: int = 0
    statements: list[str] = field(default_factory=list)


@contextmanager
def counted(bot: RunningBot) -> Iterator[Counted]:
    engine = bot.components.store.engine.sync_engine
    seen = Counted()

    def on_begin(_connection: Any) -> None:
        seen.transactions += 1

    def on_statement(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.statements.append(statement)

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        yield seen
    finally:
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "before_cursor_execute", on_statement)


def cards_to_adele(bot: RunningBot) -> list[dict[str, Any]]:
    return [card for item in bot.connector.in_conversation(bot.personal_chat_of(ADELE)) if (card := item.card)]


def touching(seen: Counted, table: str) -> list[str]:
    return [statement for statement in seen.statements if table in statement]


async def test_a_typed_issue_stays_within_its_transactions(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    cards_before = len(cards_to_adele(bot))
    with counted(bot) as seen:
        response = await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    assert response.status in (200, 202)
    assert len(cards_to_adele(bot)) == cards_before + 1, "the pass card was not delivered"
    assert seen.transactions <= ISSUE_TRANSACTIONS, (
        f"one /tap issue took {seen.transactions} SQL transactions, at most {ISSUE_TRANSACTIONS} expected"
    )


async def test_an_unchanged_personal_chat_is_not_read_or_saved_again_each_turn(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap help")
    with counted(bot) as seen:
        await bot.say(ADELE, "/tap help")
    assert touching(seen, "personal_conversations") == [], "the same 1:1 chat was read or saved again"


async def test_a_moved_personal_chat_is_still_saved(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap help")
    moved = {"id": f"a:personal-moved-{ADELE.object_id}", "conversationType": "personal"}
    with counted(bot) as seen:
        await bot.say(ADELE, "/tap help", conversation=moved)
    assert any(
        statement.lstrip().upper().startswith("INSERT") for statement in touching(seen, "personal_conversations")
    )
    known = await bot.components.store.personal_conversation(ADELE.object_id)
    assert known is not None and known.conversation_id == moved["id"]
