"""Verification of the person before a recovery pass (issue 12 items 1 and 2), through the real HTTP endpoint against
the sandbox tenant: the manager is asked privately, their answer issues (or blocks) the pass, and every rule holds
on every path (replace button, approvals, bulk rows, onboarding, a restart)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.domain.audit import AuditPeriod
from bot.domain.audit_export import EXPORT_HEADER, AuditExportService
from bot.domain.bulk import RowState
from bot.domain.model import Caller
from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import (
    ADELE,
    ALEX,
    DIEGO,
    LEE,
    MEGAN,
    TENANT_ID,
    Person,
    RunningBot,
    sandbox_env,
    start_bot,
    stop_bot,
)
from tests.harness.connector import Sent
from tests.http.test_issue_flow import card_text, pass_value, sandbox_passes

LYNNE = Person("41a3d674-7ed6-42bc-a472-7908b573fff3", "LynneR@contoso.onmicrosoft.com", "Lynne Robbins")
IRVIN = Person("28c973a3-ff36-4c20-a78a-2b5e9b96e2b5", "IrvinS@contoso.onmicrosoft.com", "Irvin Sayers")
NESTOR_ID = "0074c33f-115c-42b7-a836-41b82ced43ea"  # disabled in the demo tenant
JONI_UPN = "JoniS@contoso.onmicrosoft.com"
SECURITY_RESPONDERS = "21ab2cff-3026-4c46-8578-27cba81a4826"  # Irvin Sayers
CHANNEL = "19:general@thread.tacv2"
OTHER_TENANT = "0f0e0d0c-0000-4000-8000-00000000beef"  # Diego's object id, but from another tenant


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager"))
    try:
        yield running
    finally:
        await stop_bot(running)


def chat_of(bot: RunningBot, person: Person) -> list[Sent]:
    return bot.connector.in_conversation(bot.personal_chat_of(person))


def tracking_cards(bot: RunningBot) -> list[Sent]:
    """Every send and update of the technician's tracking card (Adele's), oldest first."""
    return [sent for sent in chat_of(bot, ADELE) if sent.card is not None and "\nMethod\n" in card_text(sent.card)]


def prompts(bot: RunningBot) -> list[Sent]:
    """The "Is this really …?" cards the bot sent (to whichever chat it opened)."""
    return [sent for sent in bot.connector.sent if sent.kind == "send" and "Is this really" in str(sent.card)]


def verification_id(sent: Sent) -> str:
    assert sent.card is not None
    return next(action["data"]["verificationId"] for action in sent.card["actions"])


def pass_cards(bot: RunningBot, person: Person = ADELE) -> list[dict[str, Any]]:
    return [sent.card for sent in chat_of(bot, person) if sent.card and "handed it over" in str(sent.card)]


async def issue_for_lynne(bot: RunningBot, extra: str = "") -> str:
    """Adele asks for a recovery pass for Lynne (Authenticator and a phone; her manager is Diego): the verification."""
    await bot.say(ADELE, f'/tap issue {LYNNE.upn} 2h reason "INC0012345 lost phone"{extra}')
    asked = prompts(bot)
    assert len(asked) == 1, [sent.text for sent in bot.connector.sent]
    return verification_id(asked[0])


async def test_a_recovery_pass_asks_the_manager_and_the_confirmed_pass_reaches_the_technician(
    bot: RunningBot,
) -> None:
    vid = await issue_for_lynne(bot)
    assert await sandbox_passes(bot) == [], "nothing is issued before the manager answers"
    # The technician's one tracking card: what is pending, with whom, until when, and Cancel.
    tracking = tracking_cards(bot)
    assert len(tracking) == 1 and tracking[0].kind in ("send", "reply")
    text = card_text(tracking[0].card or {})
    assert "Verifying the caller: Lynne Robbins" in text and "Diego Siciliani (manager)" in text
    assert "Answer by" in text and "(Europe/Berlin)" in text and "Cancel" in text
    # The manager's card goes to the 1:1 chat the bot opens with him from his Entra object id.
    created = [sent for sent in bot.connector.sent if sent.kind == "create"]
    assert [sent.activity["members"][0]["id"] for sent in created] == [DIEGO.object_id]
    prompt = prompts(bot)[0]
    assert prompt.conversation_id == created[0].conversation_id != bot.personal_chat_of(ADELE)
    asked = card_text(prompt.card or {})
    assert "Is this really Lynne Robbins" in asked and "Adele Vance" in asked and "INC0012345 lost phone" in asked
    assert "Confirm" in asked and "This is not them" in asked and "Asked" in asked

    bot.connector.clear()
    answer = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    assert "You confirmed it is them" in card_text(answer["value"])
    assert "Confirm" not in [action.get("title") for action in answer["value"].get("actions", [])]
    # The pass reaches the technician's 1:1 chat, showing how the caller was verified.
    issued = pass_cards(bot)
    assert len(issued) == 1
    shown = card_text(issued[0])
    assert "Manager attestation: Diego Siciliani (manager)" in shown and "Verified" in shown
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LYNNE.object_id]
    updated = [sent for sent in tracking_cards(bot) if sent.kind == "update"]
    assert len(updated) == 1 and "Caller verified" in card_text(updated[0].card or {})
    assert "Cancel" not in card_text(updated[0].card or {})

    rows = await bot.components.store.audit_rows()
    [issue_row] = [row for row in rows if row.action == "issue" and row.outcome == "succeeded"]
    assert issue_row.verification_id == vid and issue_row.evidence_method == "manager"
    assert issue_row.evidence_by == "Diego Siciliani (manager)" and issue_row.evidence_by_id == DIEGO.object_id
    assert issue_row.evidence_at is not None and issue_row.reason == "INC0012345 lost phone"
    assert [row.outcome for row in rows if row.action == "verification"] == [
        "needs_confirmation",
        "succeeded",  # confirmed
        "succeeded",  # used for the pass
    ]
    # The audit export carries the evidence in its own columns.
    export = AuditExportService(
        operators=bot.components.service, source=bot.components.store, audit=bot.components.store, clock=bot.clock
    )
    period = AuditPeriod.last_days(1, now=bot.clock.now() + timedelta(minutes=1), timezone=ZoneInfo("Europe/Berlin"))
    file = await export.prepare(Caller(ADELE.object_id, TENANT_ID, ADELE.name), period)
    lines = file.data.decode("utf-8-sig").splitlines()
    header = lines[0].split(",")
    assert header == list(EXPORT_HEADER) and "verificationMethod" in header and "verifiedBy" in header
    assert any(f"{vid},manager,Diego Siciliani (manager),{DIEGO.object_id}," in line for line in lines)


async def test_this_is_not_them_blocks_the_request_tells_the_technician_and_raises_an_alert(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    vid = await issue_for_lynne(bot)
    answer = await bot.press(DIEGO, verbs.VERIFY_NOT_THEM, {"verificationId": vid})
    assert "You said this is not them" in card_text(answer["value"])
    assert await sandbox_passes(bot) == []
    assert any("said the caller is NOT Lynne Robbins" in sent.text for sent in chat_of(bot, ADELE))
    blocked = tracking_cards(bot)[-1]
    assert blocked.kind == "update" and "Blocked: this is not them" in card_text(blocked.card or {})
    rows = await bot.components.store.audit_rows()
    alerts = [row for row in rows if row.action == "alert"]
    assert [(row.rule, row.actor_id, row.target_id) for row in alerts] == [
        ("not_them", ADELE.object_id, LYNNE.object_id)
    ]
    assert any(getattr(record, "event", None) == "tapbot.alert.not_them" for record in caplog.records)
    # A later Confirm (or a replayed one) changes nothing.
    again = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    assert "You said this is not them" in card_text(again["value"])
    assert await sandbox_passes(bot) == []


async def test_the_manager_who_is_the_requester_cannot_vouch(tmp_path: Path) -> None:
    """Alex Wilber reports to Adele: Adele cannot both ask for his pass and confirm it is him. (In the demo tenant
    Alex may activate Authentication Administrator, so the bot refuses him as a role holder first: this tenant
    leaves the eligibility out.)"""
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    tenant["roleEligibilities"] = [
        item for item in tenant["roleEligibilities"] if item["principalId"] != ALEX.object_id
    ]
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant), encoding="utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager", TAPBOT_SANDBOX_TENANT=str(path)))
    try:
        await bot.say(ADELE, f"/tap issue {ALEX.upn}")
        said = chat_of(bot, ADELE)[-1].text
        assert "you are Alex Wilber's manager and the one asking" in said and "No pass was issued" in said
        assert prompts(bot) == [] and await sandbox_passes(bot) == []
        rows = await bot.components.store.audit_rows()
        assert [(row.action, row.outcome, row.rule) for row in rows if row.outcome == "refused"] == [
            ("verification", "refused", "no_attester")
        ]
    finally:
        await stop_bot(bot)


def tenant_where_joni_reports_to_nestor(tmp_path: Path) -> Path:
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    for user in tenant["users"]:
        if user["userPrincipalName"] == JONI_UPN:
            user["managerId"] = NESTOR_ID
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant), encoding="utf-8")
    return path


async def test_a_disabled_manager_is_not_asked(tmp_path: Path) -> None:
    env = sandbox_env(
        tmp_path,
        TAPBOT_VERIFICATION="manager",
        TAPBOT_SANDBOX_TENANT=str(tenant_where_joni_reports_to_nestor(tmp_path)),
    )
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, f"/tap issue {JONI_UPN}")
        said = chat_of(bot, ADELE)[-1].text
        assert "has a disabled account" in said and "no fallback approver group" in said
        assert prompts(bot) == [] and await sandbox_passes(bot) == []
    finally:
        await stop_bot(bot)


async def test_without_a_usable_manager_the_fallback_group_is_asked(tmp_path: Path) -> None:
    """Diego Siciliani has no manager: the fallback approvers (Security Responders: Irvin Sayers) are asked."""
    env = sandbox_env(
        tmp_path, TAPBOT_VERIFICATION="manager", TAPBOT_VERIFICATION_FALLBACK_GROUP=SECURITY_RESPONDERS.upper()
    )
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, f"/tap issue {DIEGO.upn}")
        [prompt] = prompts(bot)
        created = [sent for sent in bot.connector.sent if sent.kind == "create"]
        assert [sent.activity["members"][0]["id"] for sent in created] == [IRVIN.object_id]
        tracking = card_text(tracking_cards(bot)[0].card or {})
        assert "the fallback approvers (Irvin Sayers)" in tracking
        # Diego himself, whose pass this is, cannot answer for himself.
        refused = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": verification_id(prompt)})
        assert refused["value"] == "Only the person this question was sent to can answer it."
        answer = await bot.press(IRVIN, verbs.VERIFY_CONFIRM, {"verificationId": verification_id(prompt)})
        assert "You confirmed it is them" in card_text(answer["value"])
        [issued] = pass_cards(bot)
        assert "Manager attestation: Irvin Sayers (fallback approver)" in card_text(issued)
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [DIEGO.object_id]
    finally:
        await stop_bot(bot)


async def test_only_the_person_asked_can_answer(bot: RunningBot) -> None:
    vid = await issue_for_lynne(bot)
    for presser in (MEGAN, ADELE, ALEX):  # someone else, the requester herself, another operator
        for verb in (verbs.VERIFY_CONFIRM, verbs.VERIFY_NOT_THEM):
            answer = await bot.press(presser, verb, {"verificationId": vid})
            assert answer["value"] == "Only the person this question was sent to can answer it."
    foreign = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid}, tenant=OTHER_TENANT)
    assert foreign["value"] == "Only the person this question was sent to can answer it."
    damaged = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": "not-an-id"})
    assert "damaged" in damaged["value"]
    unknown = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": "00000000-0000-4000-8000-000000000000"})
    assert "don't know this verification" in unknown["value"]
    assert await sandbox_passes(bot) == [] and pass_cards(bot) == []
    rows = await bot.components.store.audit_rows()
    refused = [row for row in rows if row.action == "verification" and row.outcome == "refused"]
    assert {row.actor_id for row in refused} == {MEGAN.object_id, ADELE.object_id, ALEX.object_id, DIEGO.object_id}
    assert not any(row.action == "alert" for row in rows), "a forged 'not them' raises nothing"
    # The manager can still answer.
    await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    assert len(pass_cards(bot)) == 1


async def test_a_manager_changed_since_the_question_can_no_longer_answer(tmp_path: Path) -> None:
    tenant_file = tmp_path / "tenant.json"
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    tenant_file.write_text(json.dumps(tenant), encoding="utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager", TAPBOT_SANDBOX_TENANT=str(tenant_file)))
    try:
        vid = await issue_for_lynne(bot)
        # Entra now says Lynne reports to Megan: the sandbox re-reads its tenant file.
        for user in tenant["users"]:
            if user["id"] == LYNNE.object_id:
                user["managerId"] = MEGAN.object_id
        tenant_file.write_text(json.dumps(tenant), encoding="utf-8")
        async with aiohttp.ClientSession() as session:
            reset = await session.post(f"{bot.sandbox_control}/reset", json={"reread_file": True})
            assert reset.status == 200
        answer = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
        assert "no longer the person who can confirm" in answer["value"]
        assert await sandbox_passes(bot) == []
    finally:
        await stop_bot(bot)


async def test_an_unanswered_verification_expires_and_both_cards_say_so(bot: RunningBot) -> None:
    vid = await issue_for_lynne(bot)
    bot.clock.offset = timedelta(minutes=16)
    await bot.components.housekeeping.round()
    expired = tracking_cards(bot)[-1]
    assert expired.kind == "update" and "Verification expired" in card_text(expired.card or {})
    prompt = prompts(bot)[0]
    prompt_updates = [
        sent for sent in bot.connector.sent if sent.kind == "update" and sent.activity_id == prompt.activity_id
    ]
    assert prompt_updates and "Nobody answered in time" in card_text(prompt_updates[-1].card or {})
    assert any("expired" in sent.text for sent in chat_of(bot, ADELE))
    late = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    assert "Nobody answered in time" in card_text(late["value"])
    assert await sandbox_passes(bot) == []


async def test_the_technician_can_cancel(bot: RunningBot) -> None:
    vid = await issue_for_lynne(bot)
    other = await bot.press(ALEX, verbs.VERIFY_CANCEL, {"verificationId": vid})
    assert "Only the person who asked for this pass can cancel" in other["value"]
    cancelled = await bot.press(ADELE, verbs.VERIFY_CANCEL, {"verificationId": vid})
    assert "Verification cancelled" in card_text(cancelled["value"]) and "Cancel" not in [
        action.get("title") for action in cancelled["value"].get("actions", [])
    ]
    prompt = prompts(bot)[0]
    updates = [sent for sent in bot.connector.sent if sent.kind == "update" and sent.activity_id == prompt.activity_id]
    assert updates and "cancelled" in card_text(updates[-1].card or {})
    late = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    assert "cancelled" in card_text(late["value"])
    assert await sandbox_passes(bot) == []


async def test_a_verification_is_used_for_one_pass_only(bot: RunningBot) -> None:
    vid = await issue_for_lynne(bot)
    await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    [issued] = await sandbox_passes(bot)
    replay = {
        "target": LYNNE.object_id,
        "label": "Lynne",
        "lifetimeMinutes": 120,
        "oneTime": False,
        "replaceMethodId": issued["id"],
        "verificationId": vid,
    }
    # Adele replays it on a forged replace button, and Alex (another operator) tries to borrow it.
    again = await bot.press(ADELE, verbs.CONFIRM_REPLACE, replay)
    assert "already used for a pass" in card_text(again["value"])
    borrowed = await bot.press(ALEX, verbs.CONFIRM_REPLACE, replay)
    assert "another technician's request" in card_text(borrowed["value"])
    assert [item["id"] for item in await sandbox_passes(bot)] == [issued["id"]], "the pass was not replaced"
    assert len(pass_cards(bot)) == 1


async def test_replacing_a_pass_is_verified_too(bot: RunningBot) -> None:
    first = await issue_for_lynne(bot)
    await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": first})
    [old] = await sandbox_passes(bot)
    bot.connector.clear()
    await bot.say(ADELE, f"/tap issue {LYNNE.upn} 2h")
    question = next(sent.card for sent in chat_of(bot, ADELE) if sent.card and "already holds a pass" in str(sent.card))
    replace = next(action for action in question["actions"] if action["verb"] == verbs.CONFIRM_REPLACE)
    answer = await bot.press(ADELE, verbs.CONFIRM_REPLACE, replace["data"])
    assert "Diego Siciliani (manager)" in card_text(answer["value"]) and prompts(bot)
    assert [item["id"] for item in await sandbox_passes(bot)] == [old["id"]], "nothing replaced before the answer"
    await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": verification_id(prompts(bot)[-1])})
    [new] = await sandbox_passes(bot)
    assert new["id"] != old["id"]
    assert "replaced the one created" in card_text(pass_cards(bot)[-1])


async def test_a_name_and_the_form_lead_to_the_same_verification(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap issue Lynne Robbins")
    assert len(prompts(bot)) == 1 and await sandbox_passes(bot) == []


async def test_an_approval_delayed_pass_carries_the_consumed_verification(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager", TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240")
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(ADELE, f"/tap issue {LYNNE.upn} 8h")
        vid = verification_id(prompts(bot)[0])
        await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
        posted = [sent for sent in bot.connector.sent if sent.conversation_id == CHANNEL and sent.kind == "send"]
        assert posted and "Long pass request" in card_text(posted[-1].card or {})
        assert await sandbox_passes(bot) == [], "the verification alone does not skip the approval"
        stored = await bot.components.store.verification(vid)
        assert stored is not None and stored.state.value == "used" and (stored.used_for or "").startswith("approval:")
        request_id = next(
            a["data"]["requestId"] for a in (posted[-1].card or {})["actions"] if a["verb"] == verbs.APPROVE
        )
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        [issued] = pass_cards(bot)
        assert "Manager attestation: Diego Siciliani (manager)" in card_text(issued)
        rows = await bot.components.store.audit_rows()
        [row] = [row for row in rows if row.action == "issue" and row.outcome == "succeeded"]
        assert row.verification_id == vid and row.evidence_by == "Diego Siciliani (manager)"
    finally:
        await stop_bot(bot)


async def test_a_first_pass_needs_no_verification_unless_configured(tmp_path: Path) -> None:
    """Lee Gu is a new hire with nothing but a password: no verification, unless TAPBOT_VERIFY_ONBOARDING."""
    plain = await start_bot(sandbox_env(tmp_path / "plain", TAPBOT_VERIFICATION="manager"))
    try:
        await plain.say(ADELE, f"/tap issue {LEE.upn}")
        assert prompts(plain) == [] and len(pass_cards(plain)) == 1
    finally:
        await stop_bot(plain)
    strict = await start_bot(
        sandbox_env(
            tmp_path / "strict",
            TAPBOT_VERIFICATION="manager",
            TAPBOT_VERIFY_ONBOARDING="true",
            TAPBOT_ONBOARDING_NEEDS_APPROVAL="false",
        )
    )
    try:
        await strict.say(ADELE, f"/tap issue {LEE.upn}")
        [prompt] = prompts(strict)
        assert pass_cards(strict) == [] and "Megan Bowen (manager)" in card_text(tracking_cards(strict)[0].card or {})
        await strict.press(MEGAN, verbs.VERIFY_CONFIRM, {"verificationId": verification_id(prompt)})
        assert len(pass_cards(strict)) == 1
        # Megan asking herself for her new hire's first pass cannot be her own witness.
        await strict.say(MEGAN, "/tap onboard LidiaH@contoso.onmicrosoft.com")
        said = chat_of(strict, MEGAN)[-1].text
        assert "Lidia Holloway's manager and the one asking" in said
        assert [item["user_id"] for item in await sandbox_passes(strict)] == [LEE.object_id]
    finally:
        await stop_bot(strict)


async def test_a_restart_while_pending_loses_nothing(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager")
    first = await start_bot(env)
    connector = first.connector
    try:
        vid = await issue_for_lynne(first)
    finally:
        await first.session.close()
        await first.runner.cleanup()
    second = await start_bot(env)
    try:
        second.connector, spare = connector, second.connector
        await spare.stop()
        answer = await second.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
        assert "You confirmed it is them" in card_text(answer["value"])
        assert len(pass_cards(second)) == 1
        assert [item["user_id"] for item in await sandbox_passes(second)] == [LYNNE.object_id]
        assert "Caller verified" in card_text(tracking_cards(second)[-1].card or {})
    finally:
        await stop_bot(second)


async def test_no_pass_value_in_the_database_logs_or_other_cards(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager"))
    try:
        vid = await issue_for_lynne(bot)
        await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
        [card] = pass_cards(bot)
        secret = pass_value(card)
        others = [sent for sent in bot.connector.sent if sent.card is not card]
        assert all(secret not in json.dumps(sent.activity) for sent in others)
    finally:
        await stop_bot(bot)
    database = b"".join(path.read_bytes() for path in tmp_path.glob("tapbot.db*"))
    assert secret.encode() not in database
    assert secret not in caplog.text


async def test_bulk_rows_that_need_a_verification_are_refused_when_issued(tmp_path: Path) -> None:
    """A bulk run cannot have each person vouched for: a recovery row fails with a sentence when it would be issued,
    from the user's methods as the run reads them under the user's lock (one read, which also holds the pass), so a
    method registered after the file was checked counts too. The check itself reads no row's methods."""
    tenant_file = tmp_path / "tenant.json"
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    tenant_file.write_text(json.dumps(tenant), encoding="utf-8")
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_VERIFICATION="manager", TAPBOT_SANDBOX_TENANT=str(tenant_file)))
    lidia = "LidiaH@contoso.onmicrosoft.com"
    try:
        data = f"userPrincipalName\r\n{LYNNE.upn}\r\n{LEE.upn}\r\n{lidia}\r\n".encode()
        async with aiohttp.ClientSession() as session:
            hosted = await session.post(f"{bot.sandbox_control}/files?name=users.csv", data=data)
            url = (await hosted.json())["downloadUrl"]
        attachment = {
            "contentType": "application/vnd.microsoft.teams.file.download.info",
            "name": "users.csv",
            "contentUrl": "https://contoso.sharepoint.com/personal/adele/Documents/users.csv",
            "content": {"downloadUrl": url, "uniqueId": "1", "fileType": "csv"},
        }
        sandbox = bot.components.sandbox
        assert sandbox is not None
        method_reads = dict(sandbox.state.counters.method_list_reads)
        await bot.post(bot.activity(ADELE, "", attachments=[attachment]))
        preflight = next(sent.card for sent in reversed(bot.connector.sent) if sent.card is not None)
        assert "Ready\n3" in card_text(preflight)
        assert sandbox.state.counters.method_list_reads == method_reads, "the check reads no row's methods"
        assert prompts(bot) == []
        # Lidia sets up Microsoft Authenticator before the run starts.
        for user in tenant["users"]:
            if user["userPrincipalName"] == lidia:
                user["authenticationMethods"] = [
                    {"type": "microsoftAuthenticator", "displayName": "iPhone", "deviceTag": "SoftwareTokenActivated"}
                ]
        tenant_file.write_text(json.dumps(tenant), encoding="utf-8")
        async with aiohttp.ClientSession() as session:
            assert (await session.post(f"{bot.sandbox_control}/reset", json={"reread_file": True})).status == 200
        job_id = next(a["data"]["jobId"] for a in preflight["actions"] if a["verb"] == verbs.BULK_CANCEL)
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": "false"})
        await asyncio.wait_for(bot.components.bulk.wait(job_id), 60)
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]
        rows = await bot.components.bulk._bulk.rows(job_id)  # type: ignore[attr-defined]
        failed = {row.target: row.reason for row in rows if row.state.value == "failed"}
        assert sorted(failed) == sorted([lidia, LYNNE.upn])
        assert all("A bulk run can't verify each person" in reason for reason in failed.values())
        assert prompts(bot) == []
        # Retrying the failed rows checks and runs them again: still refused, nothing issued.
        bot.connector.clear()
        await bot.press(ADELE, verbs.BULK_RETRY, {"jobId": job_id})
        [rechecked] = [sent.card for sent in bot.connector.sent if sent.card and "Ready\n2" in card_text(sent.card)]
        retry_id = next(a["data"]["jobId"] for a in rechecked["actions"] if a["verb"] == verbs.BULK_CANCEL)
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": retry_id})
        await asyncio.wait_for(bot.components.bulk.wait(retry_id), 60)
        assert await bot.components.bulk._bulk.counts(retry_id) == {RowState.FAILED: 2}  # type: ignore[attr-defined]
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]
    finally:
        await stop_bot(bot)


async def test_a_managers_onboarding_request_is_verified_by_a_fallback_approver_then_approved(tmp_path: Path) -> None:
    """TAPBOT_VERIFY_ONBOARDING with approvals: Megan cannot vouch for her own new hire, so the fallback approver
    does; the approval request then carries that verification, and the first-day pass shows it."""
    env = sandbox_env(
        tmp_path,
        TAPBOT_VERIFICATION="manager",
        TAPBOT_VERIFY_ONBOARDING="true",
        TAPBOT_VERIFICATION_FALLBACK_GROUP=SECURITY_RESPONDERS,
    )
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
        [prompt] = prompts(bot)
        tracking = [sent for sent in chat_of(bot, MEGAN) if sent.card and "\nMethod\n" in card_text(sent.card)]
        assert tracking and "the fallback approvers (Irvin Sayers)" in card_text(tracking[0].card or {})
        await bot.press(IRVIN, verbs.VERIFY_CONFIRM, {"verificationId": verification_id(prompt)})
        posted = [sent for sent in bot.connector.sent if sent.conversation_id == CHANNEL and sent.kind == "send"]
        assert posted and "Onboarding pass request" in card_text(posted[-1].card or {})
        assert await sandbox_passes(bot) == []
        request_id = next(
            a["data"]["requestId"] for a in (posted[-1].card or {})["actions"] if a["verb"] == verbs.APPROVE
        )
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        [issued] = pass_cards(bot, MEGAN)
        assert "Manager attestation: Irvin Sayers (fallback approver)" in card_text(issued)
        rows = await bot.components.store.audit_rows()
        [row] = [row for row in rows if row.action == "onboard" and row.outcome == "succeeded"]
        assert row.evidence_by == "Irvin Sayers (fallback approver)" and row.verification_id == verification_id(prompt)
    finally:
        await stop_bot(bot)


async def test_asked_in_a_channel_the_verification_is_followed_privately(bot: RunningBot) -> None:
    await bot.say(ADELE, f"<at>tapbot</at> tap issue {LYNNE.upn}", kind="channel")
    in_channel = [sent for sent in bot.connector.sent if sent.conversation_id.startswith(CHANNEL)]
    assert [sent.text for sent in in_channel] == [
        "[SANDBOX] Sent to you privately: look in your personal chat with me."
    ]
    tracking = [sent for sent in bot.connector.sent if sent.card and "\nMethod\n" in card_text(sent.card)]
    created = {
        sent.activity["members"][0]["id"]: sent.conversation_id for sent in bot.connector.sent if sent.kind == "create"
    }
    assert [sent.conversation_id for sent in tracking] == [created[ADELE.channel_id]]  # her 1:1 chat, opened for it
    assert len(prompts(bot)) == 1


async def test_a_confirmed_pass_nobody_can_be_shown_is_revoked_at_once(bot: RunningBot) -> None:
    vid = await issue_for_lynne(bot)
    bot.connector.refuse_send_with = 403  # Adele's 1:1 chat can no longer be reached
    bot.connector.refuse_create_with = 403
    await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": vid})
    assert await sandbox_passes(bot) == [], "the pass was revoked: nobody saw it"
    rows = await bot.components.store.audit_rows()
    assert any(row.action == "revoke" and "delivery failed" in row.detail for row in rows)
    updated = [sent for sent in tracking_cards(bot) if sent.kind == "update"]
    assert updated and "revoked at once" in card_text(updated[-1].card or {})


async def test_with_verification_off_its_buttons_get_a_sentence(tmp_path: Path) -> None:
    """A card from before verification was turned off: its buttons answer with a sentence, never a 4xx/5xx."""
    bot = await start_bot(sandbox_env(tmp_path))  # TAPBOT_VERIFICATION=off
    try:
        data = {"verificationId": "3a1b2c3d-0000-4000-8000-000000000001"}
        for verb in (verbs.VERIFY_CONFIRM, verbs.VERIFY_NOT_THEM, verbs.VERIFY_CANCEL):
            answer = await bot.press(DIEGO, verb, data)
            assert answer["type"] == "application/vnd.microsoft.activity.message"
            assert "turned off" in answer["value"]
        await bot.say(ADELE, f"/tap issue {LYNNE.upn}")
        assert prompts(bot) == [] and len(pass_cards(bot)) == 1, "off: passes are issued as before"
    finally:
        await stop_bot(bot)
