"""A pass nobody could be shown (the requester's 1:1 chat is unreachable) is deleted at once; when that delete fails,
nothing pretends it is gone. Through the real /api/messages against the sandbox, in application mode (Graph 5xx on
the delete, injected with the sandbox's faults) and in delegated mode (the technician's sign-in lapses as the pass is
made): the delete is tried once more where that can help; if it still fails the requester is told in the turn where
they acted that the pass exists, until when, that its value was shown to nobody and how to remove it; an alert is
raised; the audit row says it is live; housekeeping keeps deleting it (with the creator's rights only) until it is
gone, and only then is it recorded revoked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.follow_through import REVOKE_RETRY_AFTER
from tests.harness.bot import ADELE, LEE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.sign_in import delegated_env, oauth_cards, token_exchange
from tests.http.test_delegated_review import lapse_when_created
from tests.http.test_follow_through import advance, housekeeping
from tests.http.test_issue_flow import sandbox_passes
from tests.http.test_resilience import inject_fault

DELETE_PATH = r"temporaryAccessPassMethods/[^/]+$"
CHANNEL = "19:general@thread.tacv2;messageid=1"
STEP = REVOKE_RETRY_AFTER + timedelta(seconds=10)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path))
    try:
        yield running
    finally:
        await stop_bot(running)


@pytest.fixture
async def delegated(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, **delegated_env()))
    try:
        yield running
    finally:
        await stop_bot(running)


def secrets_issued(bot: RunningBot) -> list[str]:
    """Every pass value the sandbox hands out from now on (to prove none appears anywhere)."""
    sandbox = bot.components.sandbox
    assert sandbox is not None
    passes = sandbox.state.passes
    issue = passes.issue
    values: list[str] = []

    def recording(*args: Any, **options: Any) -> Any:
        issued, secret = issue(*args, **options)
        values.append(secret)
        return issued, secret

    passes.issue = recording  # type: ignore[method-assign]
    return values


def in_thread(bot: RunningBot) -> str:
    return " ".join(sent.text for sent in bot.connector.in_conversation(CHANNEL) if sent.text)


async def revoke_rows(bot: RunningBot) -> list[Any]:
    return [row for row in await bot.components.store.audit_rows() if row.action == "revoke"]


async def test_a_transient_failure_of_the_delete_is_retried_and_the_pass_revoked(bot: RunningBot) -> None:
    bot.connector.refuse_create_with = 403  # the app is not installed for Adele: the card cannot go anywhere
    await inject_fault(bot, method="DELETE", path_regex=DELETE_PATH, status=500, count=1)

    await bot.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} 2h", kind="channel")

    assert await sandbox_passes(bot) == []
    assert "revoked it right away and nobody can use it" in in_thread(bot)
    [row] = await revoke_rows(bot)
    assert row.outcome == "succeeded"


async def test_an_undeletable_pass_is_told_alerted_audited_live_and_deleted_by_housekeeping(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    values = secrets_issued(bot)
    bot.connector.refuse_create_with = 403
    # The delete fails twice as the pass is made (the try and the retry), and once more at housekeeping's first round.
    await inject_fault(bot, method="DELETE", path_regex=DELETE_PATH, status=500, count=3)

    await bot.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} 2h", kind="channel")

    [live] = await sandbox_passes(bot)
    told = in_thread(bot)
    assert "nobody can use it" not in told and "revoked" not in told
    assert f"the pass for {MEGAN.name}" in told and "still exists and is valid until" in told
    assert "Its value was not shown to anyone" in told
    assert f"/tap revoke {MEGAN.upn}" in told and "Entra admin center" in told
    [alert] = [row for row in await bot.components.store.audit_rows() if row.rule == "undelivered_pass_live"]
    assert alert.target_id == MEGAN.object_id and f"/tap revoke {MEGAN.upn}" in (alert.detail or "")
    [failed] = await revoke_rows(bot)
    assert failed.outcome == "failed" and (failed.detail or "").startswith("NOT revoked")
    assert failed.pass_method_id == live["id"]

    await advance(bot, STEP)
    await housekeeping(bot)  # the delete fails once more: still live, and not recorded revoked

    assert [p["id"] for p in await sandbox_passes(bot)] == [live["id"]]
    assert [row.outcome for row in await revoke_rows(bot)] == ["failed"]

    await advance(bot, STEP)
    await housekeeping(bot)

    assert await sandbox_passes(bot) == []
    rows = await revoke_rows(bot)
    assert [row.outcome for row in rows] == ["failed", "succeeded"]
    assert rows[-1].pass_method_id == live["id"] and rows[-1].actor_id == "tapbot"

    await advance(bot, STEP)
    await housekeeping(bot)  # gone: nothing more to delete or record
    assert len(await revoke_rows(bot)) == 2

    [value] = values
    rows_text = " ".join(str(vars(row)) for row in await bot.components.store.audit_rows())
    logged = caplog.text + "".join(str(vars(record)) for record in caplog.records)
    for where in (told, rows_text, logged, " ".join(bot.connector.texts())):
        assert value not in where


async def test_with_delegated_writes_housekeeping_deletes_it_only_with_the_technicians_own_rights(
    delegated: RunningBot,
) -> None:
    bot = delegated
    await bot.say(ADELE, f"/tap issue {LEE.upn} 1h")
    cards = oauth_cards(bot.connector.sent)
    assert len(cards) == 1, bot.connector.texts()
    [card] = cards
    assert (await token_exchange(bot, ADELE, card.exchange_id))[0] == 200
    await bot.say(ADELE, f"/tap revoke {LEE.upn}")
    lapse_when_created(bot, ADELE.object_id)  # her sign-in lapses as Megan's pass is made
    bot.connector.refuse_create_with = 403
    bot.connector.refuse_send_with = 403
    bot.connector.clear()

    await bot.say(ADELE, f"<at>tapbot</at> tap issue {MEGAN.upn} 2h", kind="channel")

    [live] = await sandbox_passes(bot)
    told = in_thread(bot)
    assert "your sign-in to tapbot had lapsed" in told and f"/tap revoke {MEGAN.upn}" in told, told
    # The sandbox would take an app-only delete (the app still holds the write permission): none is made.
    await advance(bot, STEP)
    await housekeeping(bot)
    assert [p["id"] for p in await sandbox_passes(bot)] == [live["id"]]
    assert [row.outcome for row in await revoke_rows(bot) if row.pass_method_id == live["id"]] == ["failed"]

    # She signs in again (the next sign-in card she answers): the next round deletes it with her rights.
    sandbox = bot.components.sandbox
    assert sandbox is not None
    del sandbox.state.passes.issue  # her sign-ins no longer lapse
    bot.connector.refuse_create_with = None
    bot.connector.refuse_send_with = None
    await bot.say(ADELE, f"/tap issue {LEE.upn} 1h")
    [again] = oauth_cards(bot.connector.sent)
    assert (await token_exchange(bot, ADELE, again.exchange_id))[0] == 200
    await advance(bot, STEP)
    await housekeeping(bot)

    assert live["id"] not in [p["id"] for p in await sandbox_passes(bot)]
    outcomes = [row.outcome for row in await revoke_rows(bot) if row.pass_method_id == live["id"]]
    assert outcomes == ["failed", "succeeded"]
