"""Faults and restarts: uncertain Graph failures, throttling, expiry redaction that survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import aiohttp

from tests.harness.bot import ADELE, MEGAN, RunningBot, ShiftableClock, sandbox_env, start_bot, stop_bot
from tests.harness.connector import RecordingConnector
from tests.http.test_issue_flow import card_text, cards_in, pass_value, sandbox_passes

CREATE_PATH = "temporaryAccessPassMethods$"


async def inject_fault(bot: RunningBot, **rule: object) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{bot.sandbox_control}/faults", json=rule) as answer:
        assert answer.status in (200, 201), await answer.text()


async def test_uncertain_create_failure_leaves_exactly_one_delivered_pass(bot: RunningBot) -> None:
    # Graph creates the pass but the answer is lost (503): the value never reached the bot.
    await inject_fault(bot, method="POST", path_regex=CREATE_PATH, status=503, after_effect=True, count=1)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    cards = cards_in(bot.connector.sent)
    assert len(cards) == 1
    passes = await sandbox_passes(bot)
    assert len(passes) == 1
    stored = await bot.components.store.audit_rows()
    issued = [row for row in stored if row.action == "issue" and row.outcome == "succeeded"]
    assert [row.pass_method_id for row in issued] == [passes[0]["id"]], "the delivered pass is the live one"


async def test_graph_down_tells_the_user_and_leaves_nothing_behind(bot: RunningBot) -> None:
    await inject_fault(bot, method="POST", path_regex=CREATE_PATH, status=503, after_effect=True, count=None)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert await sandbox_passes(bot) == []
    assert "none was issued" in bot.connector.texts()[-1]
    assert cards_in(bot.connector.sent) == []


async def test_long_throttle_is_reported_with_the_wait(bot: RunningBot) -> None:
    await inject_fault(bot, method="POST", path_regex=CREATE_PATH, status=429, retry_after_s=30, count=1)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert "Try again in about 30 seconds" in bot.connector.texts()[-1]
    assert await sandbox_passes(bot) == []


async def test_short_throttle_is_waited_out(bot: RunningBot) -> None:
    await inject_fault(bot, method="POST", path_regex=CREATE_PATH, status=429, retry_after_s=1, count=1)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert len(cards_in(bot.connector.sent)) == 1


async def test_expiry_redaction_survives_a_restart(tmp_path: Path) -> None:
    clock = ShiftableClock()
    first = await start_bot(sandbox_env(tmp_path), clock=clock)
    connector: RecordingConnector = first.connector
    try:
        await first.say(ADELE, f"/tap issue {MEGAN.upn} 1h")
        card = cards_in(connector.sent)[0]
        secret = pass_value(card)
        message_id = connector.sent[-1].activity_id
    finally:
        await first.session.close()
        await first.runner.cleanup()  # the bot stops; Teams (the connector) stays

    clock.offset = timedelta(hours=1, minutes=1)
    second = await start_bot(sandbox_env(tmp_path), clock=clock)  # its redaction loop starts at once
    try:
        await wait_for_update(connector)
        updates = [sent for sent in connector.sent if sent.kind == "update"]
        assert len(updates) == 1 and updates[0].activity_id == message_id
        assert secret not in str(updates[0].activity)
        assert "the pass has expired" in card_text(updates[0].card or {})
        assert await second.components.housekeeping.redactor.redact_due() == 0
    finally:
        await stop_bot(second)
        await connector.stop()


async def wait_for_update(connector: RecordingConnector, rounds: int = 100) -> None:
    for _ in range(rounds):
        if any(sent.kind == "update" for sent in connector.sent):
            return
        connector.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connector.changed.wait(), 0.1)
    raise AssertionError("no card was updated")


async def test_redaction_loop_redacts_while_running(tmp_path: Path) -> None:
    clock = ShiftableClock()
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_HOUSEKEEPING_SECONDS="0.05"), clock=clock)
    try:
        await running.say(ADELE, f"/tap issue {MEGAN.upn} 1h")
        await asyncio.sleep(0.2)
        assert not any(sent.kind == "update" for sent in running.connector.sent), "nothing is due yet"
        clock.offset = timedelta(hours=2)
        await wait_for_update(running.connector)
        assert await running.components.housekeeping.redactor.redact_due() == 0
    finally:
        await stop_bot(running)


async def test_unexpected_error_shows_a_reference_not_the_exception(bot: RunningBot) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("internal detail that must not reach users")

    bot.components.service.issue = broken  # type: ignore[method-assign]
    response = await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert response.status in (200, 202, 500)
    texts = bot.connector.texts()
    assert len(texts) == 1 and "nothing was changed" in texts[0] and "reference" in texts[0]
    assert "internal detail" not in texts[0]
    await bot.say(ADELE, "/tap help")  # the process carries on
    assert "/tap issue USER" in str(bot.connector.cards()[-1])
