"""Every button and file-consent answer, pressed by someone who may not act on what it names, or with hostile data,
through the real HTTP endpoint: refused with a sentence, nothing changes, and export attempts are audited."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

import bot.sandbox.passes as sandbox_passes_module
from bot.domain.audit import AuditAction, AuditOutcome
from bot.domain.bulk import JobStatus, RowState
from bot.sandbox.app_keys import HOSTED_FILES
from bot.sandbox.generate import bulk_tenant, bulk_upns
from cards import verbs
from tests.harness.bot import ADELE, ALEX, DIEGO, MEGAN, Person, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.card_reading import page_secrets
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card, result_pages, run_to_end
from tests.http.test_issue_flow import card_text, handed_over_data, sandbox_passes

FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
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


async def finished_job(bot: RunningBot, users: int = 3) -> int:
    await attach(bot, "users.csv", csv_of(bulk_upns(users)))
    job_id = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
    await run_to_end(bot, job_id)
    return job_id


def consent_offers(bot: RunningBot) -> list[dict[str, Any]]:
    return [
        sent.activity["attachments"][0]
        for sent in bot.connector.sent
        if sent.activity.get("attachments") and sent.activity["attachments"][0]["contentType"] == FILE_CONSENT
    ]


async def answer_consent(
    bot: RunningBot, person: Person, context: Any, *, action: str = "accept", kind: str = "personal", name: str
) -> int:
    invoke = bot.activity(person, kind=kind)
    invoke.update(
        {
            "type": "invoke",
            "name": "fileConsent/invoke",
            "value": {
                "type": "fileUpload",
                "action": action,
                "context": context,
                "uploadInfo": {
                    "name": name,
                    "uploadUrl": f"{bot.sandbox_control}/uploads/{name}",
                    "contentUrl": f"https://contoso-my.sharepoint.com/personal/x/Documents/{name}",
                    "uniqueId": "u-" + name,
                    "fileType": "xlsx",
                },
            },
        }
    )
    response = await bot.post(invoke)
    return response.status


def uploads(bot: RunningBot) -> dict[str, bytes]:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    return {name: data for name, data in sandbox.app[HOSTED_FILES].values() if name.endswith(".xlsx")}


async def export_audit(bot: RunningBot) -> list[tuple[str, str, str]]:
    rows = await bot.components.store.audit_rows()
    return [
        (row.outcome, row.actor_id, row.detail)
        for row in rows
        if row.action == AuditAction.DELIVERY.value and row.detail.startswith("results file")
    ]


# --- item 5: the results file goes only to the job's requester --------------------------------------------------


@pytest.mark.parametrize("thief", [DIEGO, ALEX], ids=["non-operator", "operator"])
async def test_a_forged_consent_for_someone_elses_job_uploads_nothing(bot: RunningBot, thief: Person) -> None:
    job_id = await finished_job(bot)
    secrets = page_secrets(result_pages(bot)[0])
    # Without any offer: a context naming Adele's job, as the review forged it.
    assert await answer_consent(bot, thief, {"offer": "bulkResults", "jobId": job_id}, name="stolen.xlsx") == 200
    # With the real offer Adele received (its offer id copied).
    answer = await bot.press(ADELE, verbs.BULK_EXPORT, {"jobId": job_id})
    assert "Accept the file" in answer["value"]
    context = consent_offers(bot)[-1]["content"]["acceptContext"]
    assert await answer_consent(bot, thief, context, name="stolen2.xlsx") == 200
    # Declining on her behalf does not close her offer either.
    assert await answer_consent(bot, thief, context, action="decline", name="stolen3.xlsx") == 200
    assert uploads(bot) == {}, "nothing reached the thief's upload address"
    assert "not offered to you" in bot.connector.texts()[-1]

    # The owner's export still works afterwards.
    assert await answer_consent(bot, ADELE, context, name="mine.xlsx") == 200
    sheet = load_workbook(io.BytesIO(uploads(bot)["mine.xlsx"])).active
    assert sheet is not None
    assert {str(row[2]) for row in sheet.iter_rows(min_row=2, values_only=True)} == set(secrets.values())

    audit = await export_audit(bot)
    refusals = [row for row in audit if row[0] == AuditOutcome.REFUSED.value]
    assert len(refusals) == 3 and all(actor == thief.object_id for _, actor, _ in refusals)
    assert [row[0] for row in audit if row[1] == ADELE.object_id] == [
        AuditOutcome.NEEDS_CONFIRMATION.value,
        AuditOutcome.SUCCEEDED.value,
    ]


async def test_an_offer_answered_outside_the_personal_chat_is_refused(bot: RunningBot) -> None:
    job_id = await finished_job(bot)
    await bot.press(ADELE, verbs.BULK_EXPORT, {"jobId": job_id})
    context = consent_offers(bot)[-1]["content"]["acceptContext"]
    await answer_consent(bot, ADELE, context, kind="groupChat", name="group.xlsx")
    assert uploads(bot) == {}
    assert (await export_audit(bot))[-1][0] == AuditOutcome.REFUSED.value


async def test_only_the_requester_is_offered_the_results(bot: RunningBot) -> None:
    job_id = await finished_job(bot)
    for person in (ALEX, DIEGO):
        answer = await bot.press(person, verbs.BULK_EXPORT, {"jobId": job_id})
        assert "Only the operator who ran this job" in answer["value"]
    answer = await bot.press(ADELE, verbs.BULK_EXPORT, {"jobId": job_id}, kind="channel")
    assert "personal chat" in answer["value"]
    assert consent_offers(bot) == []
    assert [row[0] for row in await export_audit(bot)] == [AuditOutcome.REFUSED.value] * 3


async def test_a_consent_to_an_unknown_kind_of_offer_is_refused(bot: RunningBot) -> None:
    for context in ({"offer": "somethingElse", "jobId": 1}, {"jobId": 1}, ["a", "list"], "text", None):
        assert await answer_consent(bot, ADELE, context, name="x.xlsx") == 200
        assert "not one I made" in bot.connector.texts()[-1]
    assert uploads(bot) == {}


# --- item 11: the results file keeps every pass exactly, and no spreadsheet evaluates it -------------------------


async def test_passes_that_look_like_formulas_are_exported_exactly(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = iter(["=", "+", "-", "@", "=cmd|' /C calc'!A0+"])

    def formula_like(length: int) -> str:
        return (next(starts, "=") + "Ab3$" * length)[:length]

    monkeypatch.setattr(sandbox_passes_module, "generate_pass_secret", formula_like)
    job_id = await finished_job(bot, users=5)
    secrets = set(page_secrets(result_pages(bot)[0]).values())
    assert {secret[0] for secret in secrets} == {"=", "+", "-", "@"}
    await bot.press(ADELE, verbs.BULK_EXPORT, {"jobId": job_id})
    offer = consent_offers(bot)[-1]
    assert offer["name"] == f"tapbot-job-{job_id}-passes.xlsx"
    await answer_consent(bot, ADELE, offer["content"]["acceptContext"], name="passes.xlsx")
    data = uploads(bot)["passes.xlsx"]

    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(min_row=2))
    assert {str(row[2].value) for row in rows} == secrets, "each pass reads back exactly as Graph issued it"
    assert all(isinstance(row[2].value, str) for row in rows)
    assert {cell.data_type for row in rows for cell in row} == {"s"}, "every cell is a string cell"
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml, "no cell is a formula"


# --- item 5: every button, pressed by someone who may not act on the object it names -----------------------------


async def test_bulk_buttons_of_someone_elses_job_change_nothing(bot: RunningBot) -> None:
    await attach(bot, "users.csv", csv_of(bulk_upns(3)))
    job_id = job_id_of(last_card(bot))
    for person in (ALEX, DIEGO):
        for verb in (verbs.BULK_CONFIRM, verbs.BULK_CANCEL, verbs.BULK_RETRY):
            answer = await bot.press(person, verb, {"jobId": job_id})
            assert answer["type"] == MESSAGE, (person, verb, answer)
            assert "Only the operator who started this bulk job" in answer["value"]
    job = await bot.components.bulk._bulk.job(job_id)
    assert job is not None and job.status is JobStatus.CHECKED
    assert await sandbox_passes(bot) == []
    # In a channel even the owner's press does nothing.
    answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id}, kind="channel")
    assert "personal chat" in answer["value"]
    assert await sandbox_passes(bot) == []


async def test_someone_else_cannot_hide_a_pass_card(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    card = last_card(bot)
    data = handed_over_data(card)
    for person in (ALEX, DIEGO):
        answer = await bot.press(person, verbs.HANDED_OVER, data)
        assert "Only the person who requested this pass" in answer["value"]
    stored = await bot.components.store.pass_card(data["cardId"])
    assert stored is not None and stored.redacted_at is None


async def test_a_non_operator_cannot_confirm_a_replacement(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 3h")
    question = last_card(bot)
    data = next(action["data"] for action in question["actions"] if action["verb"] == verbs.CONFIRM_REPLACE)
    before = await sandbox_passes(bot)
    answer = await bot.press(DIEGO, verbs.CONFIRM_REPLACE, data)
    assert "Only TAP operators" in card_text(answer["value"])
    assert await sandbox_passes(bot) == before


async def test_a_non_operator_pressing_approve_cannot_decide(tmp_path: Path) -> None:
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240"))
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 8h")
        request_card = last_card(bot)
        request_id = next(a["data"]["requestId"] for a in request_card["actions"] if a["verb"] == verbs.APPROVE)
        sent_before = len(bot.connector.sent)
        for verb in (verbs.APPROVE, verbs.DENY):
            answer = await bot.press(DIEGO, verb, {"requestId": request_id, "note": "ok"}, kind="channel")
            assert answer["type"] == MESSAGE
            assert answer["value"].startswith("You cannot decide this request")
            assert "Only TAP operators" not in answer["value"], "not the operators-only help text"
        assert len(bot.connector.sent) == sent_before, "the card is left as it is"
        request = await bot.components.desk.request(request_id)
        assert request is not None and request.status.value == "pending"
        assert await sandbox_passes(bot) == []
    finally:
        await stop_bot(bot)


# --- item 10: hostile button data gets a sentence, never a 500/501 ----------------------------------------------

REPLACE_DATA = {"target": MEGAN.upn, "lifetimeMinutes": 60, "replaceMethodId": "m"}
HOSTILE_IDS: list[Any] = [[1], {"id": 1}, 2**31, 2**63, 2**64 + 1, -1, 0, "1e3", "x", None, True, 1.5]


@pytest.mark.parametrize("verb", [verbs.BULK_CONFIRM, verbs.BULK_CANCEL, verbs.BULK_RETRY, verbs.BULK_EXPORT])
async def test_hostile_job_ids_get_a_sentence(bot: RunningBot, verb: str) -> None:
    for value in HOSTILE_IDS:
        answer = await bot.press(ADELE, verb, {"jobId": value})
        assert answer["type"] == MESSAGE and "damaged" in answer["value"], (value, answer)
    answer = await bot.press(ADELE, verb, {})
    assert answer["type"] == MESSAGE and "damaged" in answer["value"]
    answer = await bot.press(ADELE, verb, {"jobId": 2**31 - 1})  # the largest id is looked up, and not found
    assert answer["type"] == MESSAGE
    assert "2147483647" in answer["value"] or "Only the operator who ran this job" in answer["value"]


async def test_hostile_replace_switch_gets_a_sentence(bot: RunningBot) -> None:
    await attach(bot, "users.csv", csv_of(bulk_upns(2)))
    job_id = job_id_of(last_card(bot))
    for value in (["true"], {"on": True}, "maybe", 1):
        answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id, "replaceExisting": value})
        assert "damaged" in answer["value"], value
    assert await sandbox_passes(bot) == []


@pytest.mark.parametrize(
    ("verb", "data"),
    [
        (verbs.HANDED_OVER, {"cardId": ["x"]}),
        (verbs.HANDED_OVER, {"cardId": {"$ne": None}}),
        (verbs.HANDED_OVER, {"cardId": "x" * 10_000}),
        (verbs.HANDED_OVER, {}),
        (verbs.APPROVE, {"requestId": ["r"]}),
        (verbs.APPROVE, {"requestId": 2**63}),
        (verbs.DENY, {"requestId": "00000000-0000-0000-0000-000000000000", "note": ["x"]}),
        (verbs.DENY, {}),
        (verbs.KEEP_EXISTING, {"label": {"a": 1}}),
        (verbs.CONFIRM_REPLACE, {"target": ["x"]}),
        (verbs.CONFIRM_REPLACE, {"target": MEGAN.upn, "lifetimeMinutes": [60], "replaceMethodId": "m"}),
        (verbs.CONFIRM_REPLACE, {"target": MEGAN.upn, "lifetimeMinutes": 2**63, "replaceMethodId": "m"}),
        (verbs.CONFIRM_REPLACE, {"target": MEGAN.upn, "lifetimeMinutes": 60, "replaceMethodId": {"a": 1}}),
        (
            verbs.CONFIRM_REPLACE,
            {
                "target": MEGAN.upn,
                "lifetimeMinutes": 60,
                "replaceMethodId": "m",
                "startAt": "9999-12-31T23:00:00+00:00",
            },
        ),
        (verbs.CONFIRM_REPLACE, {"target": MEGAN.upn, "lifetimeMinutes": 60, "replaceMethodId": "m", "startAt": 5}),
        (verbs.CONFIRM_REPLACE, {"target": MEGAN.upn, "lifetimeMinutes": 60, "oneTime": "yes", "replaceMethodId": "m"}),
    ],
)
async def test_hostile_data_on_every_other_verb_gets_a_sentence(bot: RunningBot, verb: str, data: Any) -> None:
    answer = await bot.press(ADELE, verb, data)
    assert answer["type"] == MESSAGE and "damaged" in answer["value"], answer
    assert await sandbox_passes(bot) == []


@pytest.mark.parametrize(
    "value",
    [
        {"action": {"type": "Action.Execute", "verb": verbs.BULK_CANCEL, "data": [1, 2]}},
        {"action": {"type": "Action.Execute", "verb": verbs.APPROVE, "data": "requestId"}},
        {"action": {"type": "Action.Execute", "verb": "tap.somethingElse", "data": {}}},
        {"action": {"type": "Action.Execute"}},
        {"action": ["Action.Execute"]},
        {"action": {"type": "Action.Submit", "verb": verbs.BULK_CANCEL, "data": {"jobId": 1}}},
        [],
        "text",
    ],
)
async def test_malformed_card_actions_get_a_sentence(bot: RunningBot, value: Any) -> None:
    activity = bot.activity(ADELE)
    activity.update({"type": "invoke", "name": "adaptiveCard/action", "value": value})
    async with bot.session.post(f"{bot.url}/api/messages", json=activity) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["statusCode"] == 200 and body["type"] == MESSAGE, body
    assert "did nothing" in body["value"]


@pytest.mark.parametrize("job_id", [[1], 2**63, -5, "x", None])
async def test_hostile_file_consent_context_gets_a_sentence(bot: RunningBot, job_id: Any) -> None:
    status = await answer_consent(bot, ADELE, {"offer": "bulkResults", "jobId": job_id}, name="h.xlsx")
    assert status == 200
    assert "damaged" in bot.connector.texts()[-1]
    assert uploads(bot) == {}


# --- item 13: the requester's time zone, and revoked passes leaving results pages --------------------------------


async def test_an_approved_pass_card_shows_the_requesters_time_zone(tmp_path: Path) -> None:
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240"))
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 8h", timezone="Pacific/Auckland")
        request_card = last_card(bot)
        request_id = next(a["data"]["requestId"] for a in request_card["actions"] if a["verb"] == verbs.APPROVE)
        stored = await bot.components.desk.request(request_id)
        assert stored is not None and stored.timezone == "Pacific/Auckland"
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel", timezone="Europe/Berlin")
        pass_cards = [
            sent.card
            for sent in bot.connector.sent
            if sent.card and any(element.get("id") == "passValue" for element in _walk(sent.card))
        ]
        assert len(pass_cards) == 1
        text = card_text(pass_cards[0])
        assert "(Pacific/Auckland)" in text and "Europe/Berlin" not in text
    finally:
        await stop_bot(bot)


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_walk(item))
    return found


async def test_revoking_one_user_marks_that_pass_revoked_on_its_page(bot: RunningBot) -> None:
    await finished_job(bot, users=3)
    [page] = result_pages(bot)
    secrets = page_secrets(page)
    page_message = next(sent for sent in bot.connector.sent if sent.card is page)
    revoked_upn = bulk_upns(3)[1]
    revoked_label = next(label for label in secrets if revoked_upn in label)
    bot.connector.clear()
    await bot.say(ADELE, f"/tap revoke {revoked_upn}")
    [update] = [sent for sent in bot.connector.sent if sent.kind == "update"]
    assert update.activity_id == page_message.activity_id
    assert update.card is not None
    shown = page_secrets(update.card)
    assert secrets[revoked_label] not in json.dumps(update.card), "the revoked value is gone"
    assert "revoked" in shown[revoked_label]
    assert {label: value for label, value in shown.items() if label != revoked_label} == {
        label: value for label, value in secrets.items() if label != revoked_label
    }, "the other passes stay on show"
    # The hand-over button still hides the whole page afterwards.
    answer = await bot.press(ADELE, verbs.HANDED_OVER, handed_over_data(update.card))
    assert not any(value in json.dumps(answer["value"]) for value in secrets.values())


async def test_revoking_a_job_hides_its_result_pages_and_reports_plainly(bot: RunningBot) -> None:
    job_id = await finished_job(bot, users=3)
    [page] = result_pages(bot)
    secrets = page_secrets(page)
    page_message = next(sent for sent in bot.connector.sent if sent.card is page)
    bot.connector.clear()
    await bot.say(ADELE, f"/tap revoke job {job_id}")
    revoke_job = job_id_of(last_card(bot))
    await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": revoke_job})
    await run_to_end(bot, revoke_job)
    assert await bot.components.bulk._bulk.counts(revoke_job) == {RowState.REVOKED: 3}
    updates = [
        sent for sent in bot.connector.sent if sent.kind == "update" and sent.activity_id == page_message.activity_id
    ]
    assert updates, "the results page was changed"
    assert updates[-1].card is not None
    assert not any(value in json.dumps(updates[-1].card) for value in secrets.values())
    stored = [card for card in await bot.components.store.cards_due_for_redaction(bot.clock.now() + _days(400))]
    assert stored == [], "no card of the job is left unredacted"
    end = bot.connector.texts()[-1]
    assert f"Bulk job {revoke_job} finished" in end and "3 revoked" in end
    assert "summary card" not in end and "above the passes" not in end


def _days(count: int) -> Any:
    from datetime import timedelta

    return timedelta(days=count)


async def test_bulk_buttons_work_in_a_personal_chat_without_a_conversation_type(bot: RunningBot) -> None:
    """The Agents Playground sends personal chats without conversationType; a thread id is never one."""
    await attach(bot, "users.csv", csv_of(bulk_upns(2)))
    job_id = job_id_of(last_card(bot))
    thread = {"id": "19:group@thread.v2"}
    answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id}, conversation=thread)
    assert "personal chat" in answer["value"]
    assert await sandbox_passes(bot) == []
    untyped = {"id": bot.personal_chat_of(ADELE)}
    answer = await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id}, conversation=untyped)
    assert "running" in card_text(answer["value"])
    await run_to_end(bot, job_id)
    assert len(await sandbox_passes(bot)) == 2


async def test_an_expired_results_page_is_hidden_once_with_all_its_entries(bot: RunningBot) -> None:
    await finished_job(bot, users=3)
    [page] = result_pages(bot)
    secrets = page_secrets(page)
    page_message = next(sent for sent in bot.connector.sent if sent.card is page)
    bot.clock.offset = _days(40)
    assert await bot.components.housekeeping.redactor.redact_due() == 1
    updates = [
        sent for sent in bot.connector.sent if sent.kind == "update" and sent.activity_id == page_message.activity_id
    ]
    assert len(updates) == 1 and updates[0].card is not None
    assert not any(value in json.dumps(updates[0].card) for value in secrets.values())
    assert await bot.components.store.cards_due_for_redaction(bot.clock.now()) == []
    redactions = [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.REDACT.value]
    assert len(redactions) == 1, "one audit row for the page, not one per pass"
