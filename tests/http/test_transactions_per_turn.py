"""How many SQL transactions one typed command costs (issue 13 item 4), counted by a hook on the store's engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.adapters.store.schema import AuditRow, TargetLockRow
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from cards import verbs
from tests.harness.bot import ADELE, ALEX, LEE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_issue_flow import sandbox_passes
from tests.http.test_resilience import inject_fault

# One typed `/tap issue` to a person whose chat is known: the dedupe; the target lock taken with the velocity limit's
# count; the audit row with the lock's release; the pass card saved; then one read of the audit log (whether another
# operator's write may have ended the pass meanwhile; it replaced a Graph read of the pass: no write, and on SQLite no
# transaction is opened for it). Re-reading the person's unchanged 1:1 chat made it 8, the count and the release in
# transactions of their own 7.
ISSUE_TRANSACTIONS = 5
# One typed `/tap revoke` of a pass whose card is in the chat: the dedupe, the audit row, the cards showing the pass,
# the card's redaction with its audit row. Claiming and auditing apart, and reading the claimed card back, made it 6.
REVOKE_TRANSACTIONS = 4


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    by_transaction: list[list[str]] = field(default_factory=list)

    @property
    def transactions(self) -> int:
        return len(self.by_transaction)

    def transaction_of(self, start: str) -> list[str]:
        """The statements of the (first) transaction that ran a statement starting with `start`."""
        found = [group for group in self.by_transaction if any(s.startswith(start) for s in group)]
        assert found, f"no statement starting with {start!r}"
        return found[0]


@contextmanager
def counted(bot: RunningBot) -> Iterator[Counted]:
    engine = bot.components.store.engine.sync_engine
    seen = Counted()

    def on_begin(_connection: Any) -> None:
        seen.by_transaction.append([])

    def on_statement(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.statements.append(statement)
        if seen.by_transaction:
            seen.by_transaction[-1].append(" ".join(statement.split()))

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


async def test_the_lock_is_taken_with_the_velocity_count_and_given_back_with_the_audit_row(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap help")
    with counted(bot) as seen:
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    taking = seen.transaction_of("INSERT INTO target_locks")
    assert any(s.startswith("SELECT count(*)") and "audit_events" in s for s in taking), taking
    releasing = seen.transaction_of("DELETE FROM target_locks")
    assert any(s.startswith("INSERT INTO audit_events") for s in releasing), releasing
    async with bot.components.store.engine.connect() as connection:
        assert (await connection.scalar(select(func.count()).select_from(TargetLockRow))) == 0, "the lock was kept"


async def test_a_typed_revoke_stays_within_its_transactions_and_hides_the_card(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    shown = bot.connector.in_conversation(bot.personal_chat_of(ADELE))
    with counted(bot) as seen:
        response = await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    assert response.status in (200, 202)
    updates = [item for item in bot.connector.sent if item.kind == "update" and item not in shown]
    assert updates and "revoked" in str(updates[-1].card).lower(), "the pass card was not hidden"
    redacting = seen.transaction_of("UPDATE pass_cards SET redacted_at")
    assert any(s.startswith("INSERT INTO audit_events") for s in redacting), "the redaction and its audit row apart"
    assert seen.transactions <= REVOKE_TRANSACTIONS, (
        f"one /tap revoke took {seen.transactions} SQL transactions, at most {REVOKE_TRANSACTIONS} expected"
    )


def failing_issue_rows(bot: RunningBot, monkeypatch: pytest.MonkeyPatch, *, failed_too: bool = False) -> None:
    """The audit row of a pass just made cannot be written (the database failed); every other row can, but with
    `failed_too` the row of the issue's failure cannot either."""
    record = bot.components.store.record
    failing_outcomes = {AuditOutcome.SUCCEEDED, AuditOutcome.FAILED} if failed_too else {AuditOutcome.SUCCEEDED}

    async def failing(audited: AuditEvent) -> None:
        if audited.action is AuditAction.ISSUE and audited.outcome in failing_outcomes:
            raise OSError("disk I/O error")
        await record(audited)

    monkeypatch.setattr(bot.components.store, "record", failing)


async def test_an_audit_row_that_cannot_be_written_still_gives_the_lock_back(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bot.components.store
    failing_issue_rows(bot, monkeypatch)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    monkeypatch.undo()
    async with store.engine.connect() as connection:
        assert (await connection.scalar(select(func.count()).select_from(TargetLockRow))) == 0, "the lock was kept"
        succeeded = select(func.count()).select_from(AuditRow).where(AuditRow.outcome == "succeeded")
        assert (await connection.scalar(succeeded.where(AuditRow.action == "issue"))) == 0
    # The pass Graph made was deleted again (unrecorded, it would be live and invisible to the audit log), and the
    # requester told so; the next issue makes a new one without asking to replace anything.
    told = bot.connector.in_conversation(bot.personal_chat_of(ADELE))[-1].text
    assert "could not write the new pass" in told and "so I deleted it again: no pass was issued" in told
    assert await sandbox_passes(bot) == []
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    replies = bot.connector.in_conversation(bot.personal_chat_of(ADELE))
    assert not any("right now; try again" in item.text for item in replies)
    assert "replace" not in str(replies[-1].activity).lower() and len(await sandbox_passes(bot)) == 1


async def test_with_the_database_down_the_requester_still_reads_what_became_of_the_pass(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_issue_rows(bot, monkeypatch, failed_too=True)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    monkeypatch.undo()
    told = bot.connector.in_conversation(bot.personal_chat_of(ADELE))[-1].text
    assert "so I deleted it again: no pass was issued" in told, told
    assert await sandbox_passes(bot) == []


async def test_an_unrecorded_pass_that_cannot_be_deleted_is_told_and_alerted(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bot.components.store
    failing_issue_rows(bot, monkeypatch)
    await inject_fault(bot, method="DELETE", path_regex=r"temporaryAccessPassMethods/[^/]+$", status=500, count=2)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    monkeypatch.undo()

    [live] = await sandbox_passes(bot)
    told = bot.connector.in_conversation(bot.personal_chat_of(ADELE))[-1].text
    assert "could not delete it either" in told and "nobody was shown it" in told
    assert f"/tap revoke {MEGAN.upn}" in told and "valid until" in told
    [alert] = [row for row in await store.audit_rows() if row.rule == "undelivered_pass_live"]
    assert alert.target_id == MEGAN.object_id and "could not be written to the audit log" in (alert.detail or "")
    assert live["user_id"] == MEGAN.object_id


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


async def test_a_redaction_whose_audit_row_fails_is_not_kept_as_done(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's claim and its audit row are one transaction: a claim without its row would also keep every later
    round (expiry) from hiding the card."""
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    store = bot.components.store
    record = store.record

    async def failing(audited: AuditEvent) -> None:
        if audited.action is AuditAction.REDACT:
            raise OSError("disk I/O error")
        await record(audited)

    monkeypatch.setattr(store, "record", failing)
    await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")
    monkeypatch.undo()
    cards = await store.unredacted_cards_for_user(MEGAN.object_id)
    assert len(cards) == 1, "the card was marked hidden without an audit row"


async def locks_left(bot: RunningBot) -> int:
    async with bot.components.store.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(TargetLockRow)) or 0)


async def test_an_approved_pass_gives_the_lock_back_with_its_audit_row(tmp_path: Path) -> None:
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240"))
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 8h")  # above the threshold: a second operator approves
        posted = [sent.card for sent in bot.connector.sent if sent.kind == "send" and sent.card]
        request_id = next(
            action["data"]["requestId"] for action in posted[-1]["actions"] if action.get("verb") == verbs.APPROVE
        )
        with counted(bot) as seen:
            await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        releasing = seen.transaction_of("DELETE FROM target_locks")
        assert any(s.startswith("INSERT INTO audit_events") for s in releasing), releasing
        assert await locks_left(bot) == 0
        rows = await bot.components.store.audit_rows()
        issued = [row.detail for row in rows if row.action == "issue" and row.outcome == "succeeded"]
        assert len(issued) == 1 and issued[0].startswith("approved by Alex Wilber")
    finally:
        await stop_bot(bot)


async def test_an_onboarding_pass_gives_the_lock_back_with_its_audit_row(tmp_path: Path) -> None:
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_ONBOARDING_NEEDS_APPROVAL="false"))
    try:
        with counted(running) as seen:
            await running.say(MEGAN, f"/tap onboard {LEE.upn}")
        releasing = seen.transaction_of("DELETE FROM target_locks")
        assert any(s.startswith("INSERT INTO audit_events") for s in releasing), releasing
        assert await locks_left(running) == 0
        rows = await running.components.store.audit_rows()
        assert [(row.action, row.target_id) for row in rows if row.outcome == "succeeded"] == [
            ("onboard", LEE.object_id)
        ]
    finally:
        await stop_bot(running)
