"""Bulk issue and revoke from an attached file, through the real HTTP endpoint against the sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.bulk import JobStatus, RowState
from bot.sandbox.generate import bulk_tenant, bulk_upns, user_id
from cards import verbs
from tests.harness.bot import ADELE, MEGAN, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.card_reading import page_secrets as read_page_secrets
from tests.http.test_issue_flow import card_text, sandbox_passes

FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"
USERS = 120


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(USERS)), encoding="utf-8")
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant)))
    try:
        yield running
    finally:
        await stop_bot(running)


async def host(bot: RunningBot, name: str, data: bytes) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/files?name={name}", data=data) as answer,
    ):
        return (await answer.json())["downloadUrl"]


async def attach(bot: RunningBot, name: str, data: bytes, text: str = "", url: str | None = None) -> None:
    download_url = url or await host(bot, name, data)
    attachment = {
        "contentType": FILE_DOWNLOAD,
        "name": name,
        "contentUrl": "https://contoso.sharepoint.com/personal/adele/Documents/" + name,
        "content": {"downloadUrl": download_url, "uniqueId": "1", "fileType": name.rsplit(".", 1)[-1]},
    }
    await bot.post(bot.activity(ADELE, text, attachments=[attachment]))


def last_card(bot: RunningBot) -> dict[str, Any]:
    cards = [sent.card for sent in bot.connector.sent if sent.card is not None]
    assert cards, bot.connector.texts()
    return cards[-1]


def job_id_of(card: dict[str, Any]) -> int:
    return next(action["data"]["jobId"] for action in card["actions"] if action["verb"] == verbs.BULK_CANCEL)


def result_pages(bot: RunningBot) -> list[dict[str, Any]]:
    return [sent.card for sent in bot.connector.sent if sent.card and "I have handed them over" in str(sent.card)]


page_secrets = read_page_secrets


def csv_of(upns: list[str], extra: str = "") -> bytes:
    return ("userPrincipalName\r\n" + "".join(f"{upn}\r\n" for upn in upns) + extra).encode("utf-8-sig")


async def run_to_end(bot: RunningBot, job_id: int) -> None:
    await asyncio.wait_for(bot.components.bulk.wait(job_id), 60)


async def test_bulk_issue_checks_first_then_runs_and_delivers_privately(bot: RunningBot) -> None:
    upns = bulk_upns(USERS)
    extra = "nobody@contoso.onmicrosoft.com\r\njane_fabrikam.com#EXT#@contoso.onmicrosoft.com\r\nnot-a-user\r\n"
    await attach(bot, "users.csv", csv_of([*upns, upns[0].upper()], extra))
    preflight = last_card(bot)
    text = card_text(preflight)
    assert f"Ready\n{USERS}" in text and "Not found\n1" in text and "Refused\n2" in text
    assert "1 duplicate row counted once" in text and "external guest" in text
    assert await sandbox_passes(bot) == [], "nothing is written before confirmation"

    job_id = job_id_of(preflight)
    answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
    assert "running" in card_text(answer["value"])
    await run_to_end(bot, job_id)

    pages = result_pages(bot)
    assert len(pages) == 3  # 50 + 50 + 20
    secrets: dict[str, str] = {}
    for page in pages:
        secrets.update(page_secrets(page))
    assert len(secrets) == USERS
    assert all(sent.conversation_id == bot.personal_chat_of(ADELE) for sent in bot.connector.sent if sent.card)
    passes = await sandbox_passes(bot)
    assert len(passes) == USERS and len({item["user_id"] for item in passes}) == USERS
    counts = await bot.components.bulk._bulk.counts(job_id)
    assert counts == {RowState.DELIVERED: USERS, RowState.NOT_FOUND: 1, RowState.REFUSED: 2}
    job = await bot.components.bulk._bulk.job(job_id)
    assert job is not None and job.status is JobStatus.FINISHED
    final = card_text([sent.card for sent in bot.connector.sent if sent.kind == "update" and sent.card][-1])
    assert "finished" in final and f"/tap revoke job {job_id}" in final

    # The same passes, revoked in one go.
    bot.connector.clear()
    await bot.say(ADELE, f"/tap revoke job {job_id}")
    revoke_card = last_card(bot)
    assert f"Ready\n{USERS}" in card_text(revoke_card)
    revoke_job = job_id_of(revoke_card)
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": revoke_job})
    await run_to_end(bot, revoke_job)
    assert await sandbox_passes(bot) == []
    assert await bot.components.bulk._bulk.counts(revoke_job) == {RowState.REVOKED: USERS}


async def test_users_holding_a_pass_are_only_replaced_when_asked(bot: RunningBot) -> None:
    upns = bulk_upns(4)
    await bot.say(ADELE, f"/tap issue {upns[0]}")
    bot.connector.clear()
    await attach(bot, "users.csv", csv_of(upns))
    preflight = last_card(bot)
    assert "Ready\n4" in card_text(preflight), "who holds a pass is read by the run, under the user's lock"
    assert any(element.get("type") == "Input.Toggle" for element in preflight["body"])
    job_id = job_id_of(preflight)
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
    await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3, RowState.SKIPPED: 1}


async def test_throttling_storm_is_ridden_out(bot: RunningBot) -> None:
    async with aiohttp.ClientSession() as session:
        rule = {
            "method": "POST",
            "path_regex": "temporaryAccessPassMethods$",
            "status": 429,
            "retry_after_s": 1,
            "count": 15,
        }
        async with session.post(f"{bot.sandbox_control}/faults", json=rule) as answer:
            assert answer.status in (200, 201)
    upns = bulk_upns(30)
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 30}
    assert len(await sandbox_passes(bot)) == 30


async def test_cancel_stops_the_run_and_every_row_ends_somewhere(bot: RunningBot) -> None:
    async with aiohttp.ClientSession() as session:
        rule = {"method": "POST", "path_regex": "temporaryAccessPassMethods$", "delay_s": 0.3, "count": None}
        async with session.post(f"{bot.sandbox_control}/faults", json=rule) as answer:
            assert answer.status in (200, 201)
    await attach(bot, "users.csv", csv_of(bulk_upns(USERS)))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await asyncio.sleep(0.5)
    answer = await bot.press(ADELE, verbs.BULK_CANCEL, {"jobId": job_id})
    assert "cancelling" in card_text(answer["value"])
    await run_to_end(bot, job_id)
    counts = await bot.components.bulk._bulk.counts(job_id)
    assert set(counts) <= {RowState.DELIVERED, RowState.CANCELLED}
    assert sum(counts.values()) == USERS and counts.get(RowState.CANCELLED, 0) > 0
    assert len(await sandbox_passes(bot)) == counts.get(RowState.DELIVERED, 0), "no pass without a delivery"
    job = await bot.components.bulk._bulk.job(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED


@pytest.mark.parametrize(
    ("name", "data", "url", "expected"),
    [
        ("users.csv", b"upn\na@b.c\n", "https://evil.example.com/users.csv", "SharePoint or OneDrive"),
        ("users.csv", b"\x00\x01\x02binary\x00" * 100, None, "doesn't look like a CSV"),
        ("users.xls", b"whatever", None, ".xlsx"),
        ("users.csv", b"name,department\nAdele,IT\n", None, "userPrincipalName"),
    ],
)
async def test_hostile_or_wrong_files_get_one_sentence(
    bot: RunningBot, name: str, data: bytes, url: str | None, expected: str
) -> None:
    await attach(bot, name, data, url=url)
    texts = bot.connector.texts()
    assert len(texts) == 1 and expected in texts[0], texts
    assert bot.connector.cards() == []


async def test_only_operators_run_bulk_jobs(bot: RunningBot) -> None:
    url = await host(bot, "users.csv", csv_of(bulk_upns(3)))
    attachment = {"contentType": FILE_DOWNLOAD, "name": "users.csv", "content": {"downloadUrl": url}}
    await bot.post(bot.activity(MEGAN, "", attachments=[attachment]))
    assert "Only TAP operators" in bot.connector.texts()[-1]
    assert await sandbox_passes(bot) == []


async def test_results_as_csv_through_file_consent(bot: RunningBot) -> None:
    upns = bulk_upns(3)
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    secrets = page_secrets(result_pages(bot)[0])
    answer = await bot.press(ADELE, verbs.BULK_EXPORT, {"jobId": job_id})
    assert "Accept the file" in str(answer["value"])
    consent = bot.connector.sent[-1].activity["attachments"][0]
    assert consent["contentType"] == "application/vnd.microsoft.teams.card.file.consent"
    upload_url = f"{bot.sandbox_control}/uploads/passes.csv"
    invoke = bot.activity(ADELE)
    invoke.update(
        {
            "type": "invoke",
            "name": "fileConsent/invoke",
            "value": {
                "type": "fileUpload",
                "action": "accept",
                "context": consent["content"]["acceptContext"],
                "uploadInfo": {
                    "name": "passes.csv",
                    "uploadUrl": upload_url,
                    "contentUrl": "https://x/passes.csv",
                    "uniqueId": "u1",
                    "fileType": "csv",
                },
            },
        }
    )
    response = await bot.post(invoke)
    assert response.status == 200
    info = [
        sent
        for sent in bot.connector.sent
        if sent.activity.get("attachments")
        and sent.activity["attachments"][0]["contentType"] == "application/vnd.microsoft.teams.card.file.info"
    ]
    assert len(info) == 1
    async with aiohttp.ClientSession() as session, session.get(f"{bot.sandbox_control}/state") as state:
        assert (await state.json())["passes"]
    uploaded = await uploaded_file(bot)
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(uploaded)).active
    assert sheet is not None
    assert {str(row[2]) for row in sheet.iter_rows(min_row=2, values_only=True)} == set(secrets.values())
    again = await bot.press(ADELE, verbs.BULK_EXPORT, {"jobId": job_id})
    assert "no longer available" in str(again["value"]), "the file can be sent once only"


async def uploaded_file(bot: RunningBot) -> bytes:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    from bot.sandbox.app_keys import HOSTED_FILES

    files = sandbox.app[HOSTED_FILES]
    return next(data for name, data in files.values() if name == "passes.csv")


async def test_large_runs_wait_for_a_second_operator(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(12)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_APPROVAL_BULK_ROWS="10")
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await attach(bot, "users.csv", csv_of(bulk_upns(12)))
        job_id = job_id_of(last_card(bot))
        answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        assert "waits for approval" in card_text(answer["value"])
        request = [sent.card for sent in bot.connector.sent if sent.conversation_id == "19:general@thread.tacv2"][-1]
        assert request is not None and "Bulk run request" in card_text(request)
        assert await sandbox_passes(bot) == []
        request_id = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)
        own = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "another operator has to" in str(own["value"])
        from tests.harness.bot import ALEX

        decided = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "is running" in card_text(decided["value"])
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 12}
        pages = result_pages(bot)
        assert pages and all(
            sent.conversation_id == bot.personal_chat_of(ADELE)
            for sent in bot.connector.sent
            if sent.card and "I have handed them over" in str(sent.card)
        )
    finally:
        await stop_bot(bot)


async def test_files_over_the_size_cap_are_refused_before_reading(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(3)), encoding="utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_BULK_MAX_BYTES="2048"))
    try:
        await attach(bot, "users.csv", csv_of(bulk_upns(3)) + b"x@contoso.onmicrosoft.com\r\n" * 200)
        texts = bot.connector.texts()
        assert len(texts) == 1 and "larger than 2 KB" in texts[0], texts
        assert bot.connector.cards() == []
    finally:
        await stop_bot(bot)


async def test_failed_rows_can_be_retried(bot: RunningBot) -> None:
    upns = bulk_upns(5)
    failing = {
        "method": "POST",
        "path_regex": f"{user_id(upns[2])}/authentication/temporaryAccessPassMethods$",
        "status": 500,
        "count": None,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/faults", json=failing) as answer,
    ):
        assert answer.status in (200, 201)
    await attach(bot, "users.csv", csv_of(upns))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 4, RowState.FAILED: 1}
    failures = [row for row in await bot.components.store.audit_rows() if row.outcome == AuditOutcome.FAILED]
    assert [(row.action, row.target_upn) for row in failures] == [(AuditAction.ISSUE, upns[2])], failures
    assert f"bulk job {job_id}, line 4: " in failures[0].detail, failures[0].detail
    async with aiohttp.ClientSession() as session, session.delete(f"{bot.sandbox_control}/faults") as answer:
        assert answer.status == 204
    bot.connector.clear()
    answer = await bot.press(ADELE, verbs.BULK_RETRY, {"jobId": job_id})
    assert "checked the 1 failed rows again" in str(answer["value"])
    retry = last_card(bot)
    assert "Ready\n1" in card_text(retry)
    retry_job = job_id_of(retry)
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": retry_job})
    await run_to_end(bot, retry_job)
    assert await bot.components.bulk._bulk.counts(retry_job) == {RowState.DELIVERED: 1}
    assert len(await sandbox_passes(bot)) == 5
