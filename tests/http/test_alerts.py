"""Security alerts (issue 12 item 3), through the real /api/messages endpoint against the sandbox.

`/tap alerts here` makes a channel the security channel; an alert is an audit row, a structured log event with a
stable `event` field, and a card in that channel (never a pass value). Triggers: a refusal for a privileged or
protected account on every path, the velocity limit, and a bulk run above the approval threshold starting.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.bulk import RowState
from bot.logging_setup import LogFormat, build_handler
from bot.sandbox.generate import bulk_tenant, bulk_upns, user_id
from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import (
    ADELE,
    ALEX,
    BREAKGLASS,
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
from tests.harness.card_reading import pass_value
from tests.http.test_bulk import attach, csv_of, job_id_of, last_card, run_to_end
from tests.http.test_forms import issue_values
from tests.http.test_issue_flow import card_text, sandbox_passes
from tests.http.test_rechecks import GLOBAL_ADMINISTRATOR, change_tenant

SECURITY = "19:security@thread.tacv2"
APPROVALS = "19:general@thread.tacv2"
CHRISTIE = Person("3f8e619a-79e9-4d00-bbb5-dc64d5e6fcbd", "ChristieC@contoso.onmicrosoft.com", "Christie Cline")
ALERT_LOGGER = "bot.domain.alerts"
LYNNE_UPN = "LynneR@contoso.onmicrosoft.com"


def in_security_channel(**extra: Any) -> dict[str, Any]:
    conversation = {
        "id": f"{SECURITY};messageid=7",
        "conversationType": "channel",
        "isGroup": True,
        "tenantId": TENANT_ID,
    }
    return {"kind": "channel", "conversation": conversation, **extra}


async def register_security_channel(bot: RunningBot, person: Person = ADELE) -> list[str]:
    before = len(bot.connector.sent)
    await bot.say(person, "<at>tapbot</at> tap alerts here", **in_security_channel())
    return [sent.text for sent in bot.connector.sent[before:] if sent.text]


def alert_cards(bot: RunningBot) -> list[dict[str, Any]]:
    return [card for sent in bot.connector.sent if sent.conversation_id == SECURITY and (card := sent.card)]


async def alert_rows(bot: RunningBot) -> list[Any]:
    return [row for row in await bot.components.store.audit_rows() if row.action == "alert" and row.rule]


def alert_events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if getattr(record, "event", None) == event]


def delivered_secrets(bot: RunningBot) -> list[str]:
    return [
        pass_value(card)
        for sent in bot.connector.sent
        if (card := sent.card) is not None and "I have handed it over" in str(card)
    ]


# --- /tap alerts here --------------------------------------------------------------------------------------------


async def test_an_operator_makes_a_channel_the_security_channel(bot: RunningBot) -> None:
    answers = await register_security_channel(bot)
    assert len(answers) == 1 and "now the security channel" in answers[0], answers
    [channel] = await bot.components.store.security_channels()
    assert channel.conversation_id == SECURITY, "the channel itself, not the thread the command was typed in"
    assert channel.registered_by == ADELE.object_id and channel.tenant_id == TENANT_ID
    rows = [row for row in await bot.components.store.audit_rows() if row.action == "alert"]
    assert [row.detail for row in rows] == [f"security channel set: {SECURITY}"]


async def test_a_non_operator_cannot_make_a_security_channel(bot: RunningBot) -> None:
    answers = await register_security_channel(bot, DIEGO)
    assert any("Only TAP operators" in answer for answer in answers), answers
    assert await bot.components.store.security_channels() == []
    refused = [row for row in await bot.components.store.audit_rows() if row.outcome == "refused"]
    assert [row.rule for row in refused] == ["not_operator"]


async def test_alerts_here_in_a_personal_chat_says_where_to_type_it(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap alerts here")
    [answer] = bot.connector.texts()
    assert "in a team channel" in answer
    assert await bot.components.store.security_channels() == []
    await bot.say(ADELE, "/tap alerts everywhere")
    assert "Type '/tap alerts here'" in bot.connector.texts()[-1]


# --- refusals for privileged and protected accounts ---------------------------------------------------------------


async def test_a_privileged_target_refusal_is_posted_logged_and_audited(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    await register_security_channel(bot)
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 1h")  # a pass exists somewhere: it must never reach an alert
    [secret] = delivered_secrets(bot)
    await bot.say(ADELE, f"/tap issue {CHRISTIE.upn} 1h")
    assert "holds the directory role" in bot.connector.texts()[-1], "the command is refused as before"

    [card] = alert_cards(bot)
    text = card_text(card)
    assert "Pass refused for a privileged account" in text
    assert ADELE.name in text and CHRISTIE.upn in text and "tapbot.alert.privileged_target_refused" in text
    assert secret not in json.dumps(card)

    [record] = alert_events(caplog, "tapbot.alert.privileged_target_refused")
    fields = record.__dict__
    assert fields["alert_kind"] == "privileged_target_refused"
    assert fields["alert_actor_id"] == ADELE.object_id and fields["alert_target_id"] == CHRISTIE.object_id
    assert fields["alert_at"]
    assert secret not in caplog.text

    [row] = await alert_rows(bot)
    assert row.rule == "privileged_target_refused" and row.actor_id == ADELE.object_id
    assert row.target_id == CHRISTIE.object_id and secret not in row.detail


async def test_a_protected_account_refused_through_the_form_raises_its_alert(bot: RunningBot) -> None:
    await register_security_channel(bot)
    await bot.press(ADELE, verbs.SUBMIT_FORM, issue_values(BREAKGLASS))
    [card] = alert_cards(bot)
    assert "Pass refused for a protected account" in card_text(card)
    assert [row.rule for row in await alert_rows(bot)] == ["protected_target_refused"]
    assert await sandbox_passes(bot) == []


async def test_privileged_rows_of_a_bulk_file_raise_alerts_before_any_run(bot: RunningBot) -> None:
    await register_security_channel(bot)
    await attach(bot, "admins.csv", csv_of([CHRISTIE.upn, BREAKGLASS.upn, MEGAN.upn]))
    preflight = last_card(bot)
    assert "Refused\n2" in card_text(preflight), card_text(preflight)
    kinds = sorted(row.rule for row in await alert_rows(bot))
    assert kinds == ["privileged_target_refused", "protected_target_refused"]
    assert len(alert_cards(bot)) == 2
    assert await sandbox_passes(bot) == []


async def test_without_a_security_channel_the_alert_is_audited_and_logged_only(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    await bot.say(ADELE, f"/tap issue {CHRISTIE.upn}")
    assert len(bot.connector.sent) == 1 and "holds the directory role" in bot.connector.texts()[0]
    assert [row.rule for row in await alert_rows(bot)] == ["privileged_target_refused"]
    assert len(alert_events(caplog, "tapbot.alert.privileged_target_refused")) == 1
    assert len(alert_events(caplog, "tapbot.alert.privileged_target_refused.unposted")) == 1


async def test_a_channel_that_refuses_the_post_does_not_break_the_command(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    await register_security_channel(bot)
    bot.connector.refuse_send_with = 403  # Teams refuses new messages in the channel (the bot was removed)
    response = await bot.say(ADELE, f"/tap issue {CHRISTIE.upn}")
    assert response.status in (200, 202)
    assert "holds the directory role" in bot.connector.texts()[-1]
    assert [row.rule for row in await alert_rows(bot)] == ["privileged_target_refused"]
    assert len(alert_events(caplog, "tapbot.alert.privileged_target_refused.unposted")) == 1


# --- velocity ------------------------------------------------------------------------------------------------------


async def test_the_velocity_limit_trips_needs_a_second_operator_and_clears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ALERT_LOGGER)
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_VELOCITY_LIMIT="2"))
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await register_security_channel(bot)
        for upn in (MEGAN.upn, LYNNE_UPN):
            await bot.say(ADELE, f"/tap issue {upn} 1h")
        assert len(delivered_secrets(bot)) == 2 and alert_cards(bot) == []

        await bot.say(ADELE, f"/tap issue {DIEGO.upn} 1h")  # the third pass in the hour
        assert "waiting for an operator's approval" in bot.connector.texts()[-1]
        assert len(delivered_secrets(bot)) == 2, "no pass yet"
        [alert] = alert_cards(bot)
        assert "Unusually many passes from one operator" in card_text(alert) and DIEGO.name in card_text(alert)
        [request] = [
            card
            for sent in bot.connector.sent
            if sent.conversation_id == APPROVALS and (card := sent.card) and "hourly limit" in card_text(card)
        ]
        request_id = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)

        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 1h replace")  # still inside the window: approval, no alert
        assert "waiting for an operator's approval" in bot.connector.texts()[-1]
        assert len(alert_cards(bot)) == 1, "one alert per window"
        assert len(alert_events(caplog, "tapbot.alert.velocity")) == 1

        own = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "another operator has to" in str(own["value"])
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        secrets = delivered_secrets(bot)
        assert len(secrets) == 3, "the approved pass is delivered"
        assert DIEGO.object_id in {item["user_id"] for item in await sandbox_passes(bot)}

        bot.clock.offset += timedelta(minutes=61)  # the hour clears
        await bot.say(ADELE, f"/tap issue {LEE.upn} 1h")
        assert len(delivered_secrets(bot)) == 4, "issued at once again"
        assert len(alert_cards(bot)) == 1

        [row] = [row for row in await alert_rows(bot) if row.rule == "velocity"]
        assert row.actor_id == ADELE.object_id
        everything = json.dumps([sent.activity for sent in bot.connector.sent if sent.conversation_id == SECURITY])
        for secret in delivered_secrets(bot):
            assert secret not in everything and secret not in caplog.text and secret not in row.detail
    finally:
        await stop_bot(bot)


async def test_a_bad_velocity_limit_is_refused_at_start(tmp_path: Path) -> None:
    from bot.settings import Settings, SettingsError

    for value in ("0", "twenty", "-3"):
        with pytest.raises(SettingsError, match="TAPBOT_VELOCITY_LIMIT"):
            Settings.from_env(sandbox_env(tmp_path, TAPBOT_VELOCITY_LIMIT=value))
    assert Settings.from_env(sandbox_env(tmp_path)).velocity_limit == 20


# --- bulk above the approval threshold -----------------------------------------------------------------------------


async def test_a_bulk_run_above_the_threshold_raises_an_alert_when_it_starts(tmp_path: Path) -> None:
    tenant = tmp_path / "bulk-tenant.json"
    tenant.write_text(json.dumps(bulk_tenant(12)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant), TAPBOT_APPROVAL_BULK_ROWS="10")
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await register_security_channel(bot)
        await attach(bot, "users.csv", csv_of(bulk_upns(12)))
        job_id = job_id_of(last_card(bot))
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        assert alert_cards(bot) == [], "not while it waits for approval"
        request = [sent.card for sent in bot.connector.sent if sent.conversation_id == APPROVALS][-1]
        assert request is not None
        request_id = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 12}
        [card] = alert_cards(bot)
        text = card_text(card)
        assert "Large bulk run started" in text and f"Bulk job {job_id} started: 12 passes" in text
        assert "approved by Alex Wilber" in text
        [row] = await alert_rows(bot)
        assert row.rule == "bulk_above_threshold" and row.actor_id == ADELE.object_id
    finally:
        await stop_bot(bot)


# --- the same refusal alert on the paths that act later: an approval, a bulk row at its write ----------------------


def promote(person_id: str) -> Callable[[dict[str, Any]], None]:
    def change(tenant: dict[str, Any]) -> None:
        tenant["roleAssignments"].append({"principalId": person_id, "roleDefinitionId": GLOBAL_ADMINISTRATOR})

    return change


async def test_an_approval_refused_because_the_target_became_privileged_raises_the_alert(tmp_path: Path) -> None:
    tenant_file = tmp_path / "tenant.json"
    tenant_file.write_text(DEMO_TENANT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    env = sandbox_env(
        tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant_file), TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240"
    )
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await register_security_channel(bot)
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 8h")
        request = [card for sent in bot.connector.sent if sent.conversation_id == APPROVALS and (card := sent.card)]
        request_id = next(a["data"]["requestId"] for a in request[-1]["actions"] if a["verb"] == verbs.APPROVE)
        assert alert_cards(bot) == []
        await change_tenant(bot, tenant_file, promote(MEGAN.object_id))
        answer = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "No pass was issued" in card_text(answer["value"])
        [card] = alert_cards(bot)
        assert "Pass refused for a privileged account" in card_text(card) and ALEX.name in card_text(card)
        [row] = await alert_rows(bot)
        assert row.rule == "privileged_target_refused" and row.actor_id == ALEX.object_id
        assert await sandbox_passes(bot) == []
    finally:
        await stop_bot(bot)


async def test_a_bulk_row_refused_at_its_write_raises_the_alert(tmp_path: Path) -> None:
    tenant_file = tmp_path / "bulk-tenant.json"
    tenant_file.write_text(json.dumps(bulk_tenant(4)), encoding="utf-8")
    env = sandbox_env(tmp_path, TAPBOT_SANDBOX_TENANT=str(tenant_file), TAPBOT_APPROVAL_BULK_ROWS="2")
    bot = await start_bot(env)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await register_security_channel(bot)
        upns = bulk_upns(4)
        await attach(bot, "users.csv", csv_of(upns))
        job_id = job_id_of(last_card(bot))
        await bot.press(ADELE, verbs.BULK_CONFIRM, {"jobId": job_id})
        await change_tenant(bot, tenant_file, promote(user_id(upns[1])))
        request = [sent.card for sent in bot.connector.sent if sent.conversation_id == APPROVALS][-1]
        assert request is not None
        request_id = next(a["data"]["requestId"] for a in request["actions"] if a["verb"] == verbs.APPROVE)
        await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        await run_to_end(bot, job_id)
        assert await bot.components.bulk._bulk.counts(job_id) == {RowState.DELIVERED: 3, RowState.FAILED: 1}
        kinds = sorted(row.rule for row in await alert_rows(bot))
        assert kinds == ["bulk_above_threshold", "privileged_target_refused"]
        refused = next(row for row in await alert_rows(bot) if row.rule == "privileged_target_refused")
        assert refused.target_id == user_id(upns[1]) and refused.actor_id == ADELE.object_id
        assert len(alert_cards(bot)) == 2
    finally:
        await stop_bot(bot)


async def test_the_alert_is_one_json_log_line_a_siem_can_match_on(tmp_path: Path) -> None:
    """The production log format (docs/deployment.md, Security alerts in a SIEM): the event and its fields."""
    stream = io.StringIO()
    handler = build_handler(LogFormat.JSON, stream)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_LOG_FORMAT="json"))
    try:
        await bot.say(ADELE, f"/tap issue {MEGAN.upn} 1h")
        [secret] = delivered_secrets(bot)
        await bot.say(ADELE, f"/tap issue {BREAKGLASS.upn}")
    finally:
        await stop_bot(bot)
        root.removeHandler(handler)
        root.setLevel(previous_level)
    output = stream.getvalue()
    assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    [line] = [line for line in lines if line.get("event") == "tapbot.alert.protected_target_refused"]
    assert line["level"] == "WARNING" and line["alert_kind"] == "protected_target_refused"
    assert line["alert_actor_id"] == ADELE.object_id and line["alert_target_id"] == BREAKGLASS.object_id
    assert line["alert_at"].startswith("20") and line["correlation_id"]
