"""Issue 9, items 3, 4, 7, 9 and 10 (typed numbers), through the real HTTP endpoint against the sandbox tenant:
bulk rows obey the four-eyes rules, decisions and runs re-check the world when they act, one check-and-create per
user at a time, no pass is created that nobody is shown, and over-large typed numbers get a sentence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.bulk import JobStatus, RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns, user_id
from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import ADELE, ALEX, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card, result_pages, run_to_end
from tests.http.test_issue_flow import card_text, cards_in, pass_value, sandbox_passes
from tests.http.test_onboarding import CHANNEL, approval_card, register_channel, request_id

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
OPERATOR_GROUP = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"


def pass_cards(bot: RunningBot, person: Any = ADELE) -> list[dict[str, Any]]:
    """Pass cards sent (not updated) into the person's personal chat."""
    sent = [item for item in bot.connector.in_conversation(bot.personal_chat_of(person)) if item.kind != "update"]
    return [card for card in cards_in(sent) if shows_a_pass(card)]


def shows_a_pass(card: dict[str, Any]) -> bool:
    try:
        return bool(pass_value(card))
    except (AssertionError, KeyError):
        return False


async def change_tenant(bot: RunningBot, tenant_file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edits the sandbox's tenant file and makes the running sandbox re-read it (docs/sandbox.md, control plane)."""
    tenant = json.loads(tenant_file.read_text(encoding="utf-8"))
    change(tenant)
    tenant_file.write_text(json.dumps(tenant), encoding="utf-8")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/reset", json={"reread_file": True}) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def audit_outcomes(bot: RunningBot, action: str) -> list[str]:
    return [row.outcome for row in await bot.components.store.audit_rows() if row.action == action]


# --- item 10: over-large typed numbers, item 9: starts Graph or a card cannot hold ------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/tap revoke job 99999999999999999999", "is not a job number"),
        ("/tap revoke job ²", "is not a job number"),
        (f"/tap issue {MEGAN.upn} 99999999999999999999", "longer than any pass can last"),
        (f"/tap issue {MEGAN.upn} start +99999999999999d", "at most 90 days from now"),
        (f"/tap issue {MEGAN.upn} start 9999-12-31T23:00", "at most 90 days from now"),
        (f"/tap issue {MEGAN.upn} start 9999-12-31T23:00-05:00", "at most 90 days from now"),
        ("/tap audit export 0001-01-01 0001-01-02", "The audit log starts in 2000"),
    ],
)
async def test_over_large_numbers_and_dates_get_a_sentence(bot: RunningBot, text: str, expected: str) -> None:
    response = await bot.say(ADELE, text)
    assert response.status in (200, 202)
    texts = bot.connector.texts()
    assert len(texts) == 1 and expected in texts[0], texts
    assert await sandbox_passes(bot) == [], "no pass was created"
    assert "succeeded" not in await audit_outcomes(bot, "issue"), "nothing is audited as issued"


async def test_bulk_row_with_an_over_large_lifetime_is_refused_on_the_preflight_card(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(2)), encoding="utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        upns = bulk_upns(2)
        data = f"userPrincipalName,lifetime\r\n{upns[0]},99999999999999999999\r\n{upns[1]},2h\r\n".encode()
        await attach(bot, "users.csv", data)
        preflight = card_text(last_card(bot))
        assert "Ready\n1" in preflight and "Refused\n1" in preflight and "between 1 hour and 8 hours" in preflight
        assert await sandbox_passes(bot) == []
    finally:
        await stop_bot(bot)


async def test_a_pass_card_that_cannot_be_shown_revokes_the_pass(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def overflowing(*_args: object, **_kwargs: object) -> dict[str, Any]:
        raise OverflowError("date value out of range")  # what rendering a start near 9999-12-31 did

    monkeypatch.setattr("bot.teams.pass_delivery.pass_card", overflowing)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    assert await sandbox_passes(bot) == [], "the pass nobody saw was revoked"
    texts = bot.connector.texts()
    assert len(texts) == 1 and "revoked it right away" in texts[0] and "nothing was changed" not in texts[0]
    assert pass_cards(bot) == []
    rows = [row for row in await bot.components.store.audit_rows() if row.action in ("issue", "revoke")]
    assert [(row.action, row.outcome) for row in rows] == [("issue", "succeeded"), ("revoke", "succeeded")]
    assert "card could not be shown" in rows[-1].detail and rows[-1].pass_method_id == rows[0].pass_method_id


# --- item 7: no two live cards for one pass ---------------------------------------------------------------------------


async def test_two_operators_issuing_for_one_user_at_once_get_one_pass(bot: RunningBot) -> None:
    first, second = await asyncio.gather(
        bot.say(ADELE, f"/tap issue {MEGAN.upn}"), bot.say(ALEX, f"/tap issue {MEGAN.upn}")
    )
    assert first.status in (200, 202) and second.status in (200, 202)
    delivered = pass_cards(bot, ADELE) + pass_cards(bot, ALEX)
    assert len(delivered) == 1, "exactly one pass card"
    others = [card_text(card) for card in cards_in(bot.connector.sent) if not shows_a_pass(card)]
    answers = others + bot.connector.texts()
    assert any("already holds a pass" in answer or "right now; try again" in answer for answer in answers), answers
    assert len(await sandbox_passes(bot)) == 1
    assert (await audit_outcomes(bot, "issue")).count("succeeded") == 1
    assert len(await bot.components.store.unredacted_cards_for_user(MEGAN.object_id)) == 1


async def test_double_click_on_replace_replaces_once(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn}")
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 3h")
    question = cards_in(bot.connector.sent)[-1]
    assert "already holds a pass" in card_text(question)
    confirm = next(action for action in question["actions"] if action["verb"] == verbs.CONFIRM_REPLACE)
    bot.connector.clear()

    answers = await asyncio.gather(
        bot.press(ADELE, verbs.CONFIRM_REPLACE, confirm["data"]),
        bot.press(ADELE, verbs.CONFIRM_REPLACE, confirm["data"]),
    )
    texts = sorted(card_text(answer["value"]) for answer in answers)
    assert sum("Replaced" in text for text in texts) == 1, texts
    assert any("already holds a pass" in text or "right now; try again" in text for text in texts), texts
    assert len(pass_cards(bot)) == 1, "one new pass card, never two"
    assert len(await sandbox_passes(bot)) == 1
    assert (await audit_outcomes(bot, "issue")).count("succeeded") == 2  # the first pass, then one replacement
    live = await bot.components.store.unredacted_cards_for_user(MEGAN.object_id)
    assert len(live) == 1 and live[0].pass_method_id == (await sandbox_passes(bot))[0]["id"]


# --- item 4: a decision re-checks the requester -----------------------------------------------------------------------


@pytest.fixture
def tenant_file(tmp_path: Path) -> Path:
    path = tmp_path / "tenant.json"
    path.write_text(DEMO_TENANT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


async def test_requester_removed_from_the_operators_before_approval_gets_no_pass(
    tmp_path: Path, tenant_file: Path
) -> None:
    env = sandbox_env(
        tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant_file), TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240"
    )
    bot = await start_bot(env)
    try:
        await register_channel(bot)
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 8h")
        assert "waiting for an operator's approval" in bot.connector.texts()[-1]
        card = approval_card(bot)

        def without_adele(tenant: dict[str, Any]) -> None:
            group = next(group for group in tenant["groups"] if group["id"] == OPERATOR_GROUP)
            group["members"].remove(ADELE.object_id)

        await change_tenant(bot, tenant_file, without_adele)
        answer = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id(card)}, kind="channel")
        assert "No pass was issued" in card_text(answer["value"])
        assert "no longer a TAP operator" in card_text(answer["value"])
        assert await sandbox_passes(bot) == []
        assert pass_cards(bot) == []
        told = [sent.text for sent in bot.connector.in_conversation(bot.personal_chat_of(ADELE)) if sent.text]
        assert any("no pass was issued" in text and "no longer a TAP operator" in text for text in told), told
        rows = await bot.components.store.audit_rows()
        assert ("decision", "refused", "not_operator") in [(row.action, row.outcome, row.rule) for row in rows]
        assert "succeeded" not in [row.outcome for row in rows if row.action == "issue"]
    finally:
        await stop_bot(bot)


# --- items 3 and 4: bulk runs -----------------------------------------------------------------------------------------


@pytest.fixture
def bulk_tenant_file(tmp_path: Path) -> Path:
    path = tmp_path / "bulk-tenant.json"
    path.write_text(json.dumps(bulk_tenant(6)), encoding="utf-8")
    return path


async def approve_bulk(bot: RunningBot) -> str:
    request = [sent.card for sent in bot.connector.sent if sent.conversation_id == CHANNEL][-1]
    assert request is not None and "Bulk run request" in card_text(request)
    request_id_ = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)
    decided = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id_}, kind="channel")
    return card_text(decided["value"])


async def test_bulk_row_with_a_long_lifetime_waits_for_a_second_operator(
    tmp_path: Path, bulk_tenant_file: Path
) -> None:
    env = sandbox_env(
        tmp_path, TAPBOT_SANDBOX_TENANT=str(bulk_tenant_file), TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240"
    )
    bot = await start_bot(env)
    try:
        await register_channel(bot)
        upns = bulk_upns(3)
        data = f"userPrincipalName,lifetime\r\n{upns[0]},8h\r\n{upns[1]},2h\r\n{upns[2]},\r\n".encode()
        await attach(bot, "users.csv", data)
        job_id = job_id_of(last_card(bot))
        answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        assert "waits for approval" in card_text(answer["value"])
        request = [sent.card for sent in bot.connector.sent if sent.conversation_id == CHANNEL][-1]
        assert request is not None and "240-minute lifetime limit" in card_text(request)
        await asyncio.sleep(0.3)
        assert await sandbox_passes(bot) == [], "nothing is issued before a second operator approves"
        job = await bot.components.bulk._bulk.job(job_id)
        assert job is not None and job.status is JobStatus.AWAITING_APPROVAL

        assert "is running" in await approve_bulk(bot)
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3}
        lifetimes = sorted(item["lifetime_in_minutes"] for item in await sandbox_passes(bot))
        assert lifetimes[-1] == 480
    finally:
        await stop_bot(bot)


async def test_approved_bulk_job_skips_a_user_who_became_a_role_holder(tmp_path: Path, bulk_tenant_file: Path) -> None:
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(bulk_tenant_file), TAPBOT_APPROVAL_BULK_ROWS="2")
    bot = await start_bot(env)
    try:
        await register_channel(bot)
        upns = bulk_upns(4)
        await attach(bot, "users.csv", csv_of(upns))
        job_id = job_id_of(last_card(bot))
        answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        assert "waits for approval" in card_text(answer["value"])

        def promoted(tenant: dict[str, Any]) -> None:
            tenant["roleAssignments"].append(
                {"principalId": user_id(upns[1]), "roleDefinitionId": GLOBAL_ADMINISTRATOR}
            )

        await change_tenant(bot, bulk_tenant_file, promoted)
        assert "is running" in await approve_bulk(bot)
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3, RowState.FAILED: 1}
        (failed,) = await bot.components.bulk._bulk.rows(job_id, (RowState.FAILED,))
        assert failed.target == upns[1] and "Global Administrator" in failed.reason
        holders = {item["user_id"] for item in await sandbox_passes(bot)}
        assert user_id(upns[1]) not in holders and len(holders) == 3
        final = [sent.card for sent in bot.connector.sent if sent.kind == "update" and sent.card][-1]
        assert "Global Administrator" in card_text(final or {})
        rows = await bot.components.store.audit_rows()
        assert ("issue", "refused", "role_holder") in [(row.action, row.outcome, row.rule) for row in rows]
    finally:
        await stop_bot(bot)


# --- item 9: a results page that cannot be shown ----------------------------------------------------------------------


async def test_a_results_page_that_cannot_be_shown_fails_its_rows_once(
    tmp_path: Path, bulk_tenant_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(bulk_tenant_file)))
    try:

        def overflowing(*_args: object, **_kwargs: object) -> dict[str, Any]:
            raise OverflowError("date value out of range")

        monkeypatch.setattr("bot.teams.bulk_results.results_page_card", overflowing)
        upns = bulk_upns(3)
        await attach(bot, "users.csv", csv_of(upns))
        job_id = job_id_of(last_card(bot))
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.FAILED: 3}
        assert await sandbox_passes(bot) == []
        assert result_pages(bot) == []
        for _ in range(3):  # later housekeeping rounds, or another replica adopting the job, issue nothing again
            await bot.components.housekeeping.round()
            await bot.components.bulk.adopt()
            await run_to_end(bot, job_id)
        assert await sandbox_passes(bot) == []
        issued = [
            row for row in await bot.components.store.audit_rows() if row.action == "issue" and row.pass_method_id
        ]
        assert [row.outcome for row in issued] == ["succeeded"] * 3, "each row was issued once"
        revoked = [row for row in await bot.components.store.audit_rows() if row.action == "revoke"]
        assert [row.outcome for row in revoked] == ["succeeded"] * 3
        job = await bot.components.bulk._bulk.job(job_id)
        assert job is not None and job.status is JobStatus.FINISHED
    finally:
        await stop_bot(bot)
