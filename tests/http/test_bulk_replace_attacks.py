"""Attacks on the bulk replace rule (issue 13), through /api/messages against the sandbox: a run that acts long after
its check (a second operator's approval) still replaces only passes that existed when the file was checked; a pass
another operator hands over while the job waits is kept, the row skipped and audited, no pass value anywhere."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.domain.bulk import RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns, user_id
from cards import verbs
from tests.harness.bot import ADELE, ALEX, sandbox_env, start_bot, stop_bot
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card, run_to_end
from tests.http.test_bulk_held_passes import advance_graph_clock, pass_ids
from tests.http.test_issue_flow import card_text


async def test_an_approval_delayed_run_keeps_a_pass_handed_over_while_it_waited(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(4)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_APPROVAL_BULK_ROWS="1")
    bot = await start_bot(env)
    try:
        upns = bulk_upns(3)
        older, fresh = user_id(upns[0]), user_id(upns[1])
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(ADELE, f"/tap issue {upns[0]}")  # exists when the file is checked
        bot.clock.offset += timedelta(minutes=1)
        await attach(bot, "users.csv", csv_of(upns))
        job_id = job_id_of(last_card(bot))
        answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "true"})
        assert "waits for approval" in card_text(answer["value"])

        # While the job waits for its approver, another operator hands the second user a pass.
        await advance_graph_clock(bot, timedelta(minutes=30))
        bot.clock.offset += timedelta(minutes=30)
        await bot.say(ALEX, f"/tap issue {upns[1]}")
        before = await pass_ids(bot)

        request = [sent.card for sent in bot.connector.sent if sent.conversation_id == "19:general@thread.tacv2"][-1]
        assert request is not None
        request_id = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)
        decided = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "is running" in card_text(decided["value"])
        await run_to_end(bot, job_id)

        rows = {row.target: row for row in await bot.components.bulk._bulk.rows(job_id)}
        after = await pass_ids(bot)
        assert rows[upns[0]].state is RowState.DELIVERED and after[older] != before[older]
        assert rows[upns[1]].state is RowState.SKIPPED and after[fresh] == before[fresh], "handed over meanwhile"
        assert "at or after the time the file was checked" in rows[upns[1]].reason
        assert rows[upns[2]].state is RowState.DELIVERED

        skipped = [
            row
            for row in await bot.components.store.audit_rows()
            if row.action == "issue" and row.outcome == "nothing_to_do" and row.target_id == fresh
        ]
        assert len(skipped) == 1 and f"bulk job {job_id}" in (skipped[0].detail or "")
    finally:
        await stop_bot(bot)


async def test_replace_these_n_keeps_a_pass_handed_over_after_the_final_card(tmp_path: Path) -> None:
    """The final card lists the passes it skipped (with their creation times); "Replace these N" replaces those,
    not a pass another operator handed over to the same user after the card was shown."""
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(4)), encoding="utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        upns = bulk_upns(2)
        held = user_id(upns[0])
        await bot.say(ADELE, f"/tap issue {upns[0]}")
        bot.clock.offset += timedelta(minutes=1)
        await advance_graph_clock(bot, timedelta(minutes=1))
        await attach(bot, "users.csv", csv_of(upns))
        job_id = job_id_of(last_card(bot))
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 1, RowState.SKIPPED: 1}

        # Ten minutes after the final card, another operator replaces that user's pass and hands the new one over.
        bot.clock.offset += timedelta(minutes=10)
        await advance_graph_clock(bot, timedelta(minutes=10))
        await bot.say(ALEX, f"/tap issue {upns[0]} replace")
        handed_over = (await pass_ids(bot))[held]

        bot.clock.offset += timedelta(minutes=5)
        await advance_graph_clock(bot, timedelta(minutes=5))
        await bot.press(ADELE, verbs.BULK_REPLACE_HELD, {"jobId": job_id})
        again = last_card(bot)
        again_id = job_id_of(again)
        [toggle] = [element for element in again["body"] if element.get("type") == "Input.Toggle"]
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": again_id, "replaceExisting": toggle["value"]})
        await run_to_end(bot, again_id)
        assert (await pass_ids(bot))[held] == handed_over, "a pass the final card never showed was replaced"
        assert await bot.components.bulk._bulk.counts(again_id) == {RowState.SKIPPED: 1}
    finally:
        await stop_bot(bot)
