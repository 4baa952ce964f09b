"""Bulk rows whose user holds a pass, through /api/messages against the sandbox (issue 13, one read per row): the
check reads no row's pass; the run reads it under the user's lock and replaces it only when the operator chose to
replace passes AND the pass existed when the file was checked. Any other live pass skips the row with a sentence
giving its creation time, and the final card offers "Replace these N" (the requester only), a new job checked and
confirmed like any file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.bulk import RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns, user_id
from cards import verbs
from tests.harness.bot import ADELE, ALEX, DIEGO, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card, run_to_end
from tests.http.test_issue_flow import card_text, sandbox_passes
from tests.http.test_transactions_per_turn import counted

MESSAGE = "application/vnd.microsoft.activity.message"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(6)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        yield running
    finally:
        await stop_bot(running)


async def advance_graph_clock(bot: RunningBot, by: timedelta) -> None:
    """Graph's clock (the sandbox's) moves on: passes made from now on are dated later than the bot's check."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/clock", json={"seconds": by.total_seconds()}) as answer,
    ):
        assert answer.status == 200


async def pass_ids(bot: RunningBot) -> dict[str, str]:
    return {item["user_id"]: item["id"] for item in await sandbox_passes(bot)}


def final_card(bot: RunningBot) -> dict[str, Any]:
    return [sent.card for sent in bot.connector.sent if sent.kind == "update" and sent.card][-1]


def replace_button(card: dict[str, Any]) -> dict[str, Any] | None:
    return next((action for action in card.get("actions", []) if action["verb"] == verbs.BULK_REPLACE_HELD), None)


async def test_only_passes_older_than_the_check_are_replaced_and_the_rest_can_be_replaced_after(
    bot: RunningBot,
) -> None:
    upns = bulk_upns(4)
    older, newer = user_id(upns[0]), user_id(upns[1])
    await bot.say(ADELE, f"/tap issue {upns[0]}")  # a pass the operator can see when the file is checked
    bot.clock.offset += timedelta(minutes=1)
    bot.connector.clear()
    await attach(bot, "users.csv", csv_of(upns))
    preflight = last_card(bot)
    assert "Ready\n4" in card_text(preflight), "who holds a pass is not read by the check"
    [toggle] = [element for element in preflight["body"] if element.get("type") == "Input.Toggle"]
    assert toggle["value"] == "false" and "created before this check" in toggle["title"]
    job_id = job_id_of(preflight)

    # After the check, another operator gives the second user a pass (Graph dates it after the check).
    await advance_graph_clock(bot, timedelta(minutes=2))
    await bot.say(ALEX, f"/tap issue {upns[1]}")
    before = await pass_ids(bot)
    # The job runs (and its final card is made) after Alex's pass, on the bot's clock too: Replace these N replaces
    # the passes created before the job ended.
    bot.clock.offset += timedelta(minutes=2)
    bot.connector.clear()

    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "true"})
    await run_to_end(bot, job_id)
    rows = {row.target: row for row in await bot.components.bulk._bulk.rows(job_id)}
    after = await pass_ids(bot)
    assert rows[upns[0]].state is RowState.DELIVERED and after[older] != before[older], "older than the check"
    assert rows[upns[1]].state is RowState.SKIPPED and after[newer] == before[newer], "made after the check: kept"
    assert "at or after the time the file was checked" in rows[upns[1]].reason
    assert "Holds a pass created" in rows[upns[1]].reason
    assert {rows[upn].state for upn in upns[2:]} == {RowState.DELIVERED}

    final = final_card(bot)
    button = replace_button(final)
    assert button is not None and button["title"] == "Replace these 1" and button["data"] == {"jobId": job_id}
    assert "Skipped: they hold a pass" in card_text(final)

    # Someone else pressing it: refused, nothing checked or written.
    for stranger in (ALEX, DIEGO):
        answer = await bot.press(stranger, verbs.BULK_REPLACE_HELD, {"jobId": job_id})
        assert answer["type"] == MESSAGE and "Only the operator who started this bulk job" in answer["value"]
    assert await pass_ids(bot) == after

    # The requester: the skipped row is checked again as a new job, its switch on; confirming replaces Alex's pass,
    # which existed when this new job was checked.
    bot.connector.clear()
    bot.clock.offset += timedelta(minutes=5)
    answer = await bot.press(ADELE, verbs.BULK_REPLACE_HELD, {"jobId": job_id})
    assert "checked the 1 skipped rows again" in str(answer["value"])
    again = last_card(bot)
    assert "Ready\n1" in card_text(again)
    [toggle] = [element for element in again["body"] if element.get("type") == "Input.Toggle"]
    assert toggle["value"] == "true"
    again_id = job_id_of(again)
    assert again_id != job_id
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": again_id, "replaceExisting": toggle["value"]})
    await run_to_end(bot, again_id)
    assert await bot.components.bulk._bulk.counts(again_id) == {RowState.DELIVERED: 1}
    assert (await pass_ids(bot))[newer] != after[newer]


async def test_with_the_switch_off_holders_are_skipped_with_the_passes_creation_time(bot: RunningBot) -> None:
    upns = bulk_upns(3)
    await bot.say(ADELE, f"/tap issue {upns[2]}")
    created = next(item["created"] for item in await sandbox_passes(bot) if item["user_id"] == user_id(upns[2]))
    before = await pass_ids(bot)
    bot.clock.offset += timedelta(minutes=1)
    bot.connector.clear()
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
    await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 2, RowState.SKIPPED: 1}
    [skipped] = await bot.components.bulk._bulk.rows(job_id, (RowState.SKIPPED,))
    minute = created[:16].replace("T", " ")  # 2026-11-29T10:00:... → 2026-11-29 10:00
    assert skipped.reason == (f"Holds a pass created {minute} UTC; you chose not to replace passes users already hold.")
    assert (await pass_ids(bot))[user_id(upns[2])] == before[user_id(upns[2])]
    button = replace_button(final_card(bot))
    assert button is not None and button["title"] == "Replace these 1"


async def test_replace_these_n_is_refused_without_skipped_rows_outside_the_personal_chat_and_with_damaged_data(
    bot: RunningBot,
) -> None:
    upns = bulk_upns(2)
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    assert replace_button(final_card(bot)) is None, "nobody held a pass"
    answer = await bot.press(ADELE, verbs.BULK_REPLACE_HELD, {"jobId": job_id})
    assert answer["type"] == MESSAGE and "nothing to replace" in answer["value"]
    answer = await bot.press(ADELE, verbs.BULK_REPLACE_HELD, {"jobId": job_id}, kind="groupChat")
    assert answer["type"] == MESSAGE and "personal chat" in answer["value"]
    for value in ([1], "x", -1, 2**64, None):
        answer = await bot.press(ADELE, verbs.BULK_REPLACE_HELD, {"jobId": value})
        assert answer["type"] == MESSAGE and "damaged" in answer["value"], value
    answer = await bot.press(ADELE, verbs.BULK_REPLACE_HELD, {"jobId": 404})
    assert answer["type"] == MESSAGE and "I don't know bulk job 404" in answer["value"]
    assert len(await sandbox_passes(bot)) == 2


async def test_a_bulk_row_gives_its_users_lock_back_with_its_audit_row(bot: RunningBot) -> None:
    """As a typed issue does (tests/http/test_transactions_per_turn.py): one SQL transaction fewer per row."""
    upns = bulk_upns(3)
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
    with counted(bot) as seen:
        await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3}
    releasing = [group for group in seen.by_transaction if any(s.startswith("DELETE FROM target_locks") for s in group)]
    assert len(releasing) == 3, releasing
    for group in releasing:
        assert any(s.startswith("INSERT INTO audit_events") for s in group), group


async def test_a_bulk_row_is_journaled_in_its_locks_transactions(bot: RunningBot) -> None:
    """CREATING commits with the lock's take (before any Graph request for the row), CREATED with the audit row and
    the lock's release: two SQL transactions per row, besides the results page's."""
    upns = bulk_upns(3)
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    with counted(bot) as seen:
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
        await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3}
    groups = seen.by_transaction
    taking = [group for group in groups if any(s.startswith("INSERT INTO target_locks") for s in group)]
    releasing = [group for group in groups if any(s.startswith("DELETE FROM target_locks") for s in group)]
    assert len(taking) == 3 and len(releasing) == 3, groups
    for group in taking + releasing:
        assert any(s.startswith("UPDATE bulk_rows") for s in group), group
    for group in releasing:
        assert any(s.startswith("INSERT INTO audit_events") for s in group), group
    journal_alone = [
        group
        for group in groups
        if any(s.startswith("UPDATE bulk_rows") for s in group) and not any("target_locks" in s for s in group)
    ]
    # The confirm's (every row queued, in one) and the page's (the three DELIVERED once shown): none of a row's own.
    assert len(journal_alone) == 2, [[s[:60] for s in group] for group in groups]
