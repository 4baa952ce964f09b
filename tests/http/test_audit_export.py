"""`/tap audit export` through the real endpoint: offered privately, sent through Teams' file-consent flow."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from bot.domain.audit import AuditAction, AuditOutcome
from bot.sandbox.app_keys import HOSTED_FILES
from tests.harness.bot import ADELE, ALEX, DIEGO, MEGAN, Person, RunningBot
from tests.harness.card_reading import pass_value
from tests.harness.connector import Sent

FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"


def with_attachment(bot: RunningBot, content_type: str) -> list[Sent]:
    return [
        sent
        for sent in bot.connector.sent
        if sent.activity.get("attachments") and sent.activity["attachments"][0]["contentType"] == content_type
    ]


def consent_card(bot: RunningBot) -> dict[str, Any]:
    offers = with_attachment(bot, FILE_CONSENT)
    assert offers, bot.connector.texts()
    return offers[-1].activity["attachments"][0]


async def answer(
    bot: RunningBot, person: Person, context: dict[str, Any], action: str = "accept", kind: str = "personal"
) -> None:
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
                    "name": "audit.csv",
                    "uploadUrl": f"{bot.sandbox_control}/uploads/audit.csv",
                    "contentUrl": "https://contoso-my.sharepoint.com/personal/adele/Documents/audit.csv",
                    "uniqueId": "u-audit",
                    "fileType": "csv",
                },
            },
        }
    )
    response = await bot.post(invoke)
    assert response.status == 200


def uploaded(bot: RunningBot) -> list[bytes]:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    return [data for name, data in sandbox.app[HOSTED_FILES].values() if name == "audit.csv"]


async def export_rows(bot: RunningBot) -> list[Any]:
    rows = await bot.components.store.audit_rows()
    return [row for row in rows if row.action == AuditAction.AUDIT_EXPORT.value]


async def test_an_operator_gets_the_audit_log_as_a_file(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h")
    secret = pass_value(next(sent.card for sent in bot.connector.sent if sent.card))
    await bot.say(DIEGO, f"/tap status {MEGAN.upn}")
    await bot.say(ADELE, "/tap audit export")
    consent = consent_card(bot)
    assert consent["name"].startswith("tapbot-audit-") and consent["name"].endswith(".csv")
    assert consent["content"]["sizeInBytes"] > 0
    assert "Accept the file" in bot.connector.texts()[-1]
    assert with_attachment(bot, FILE_CONSENT)[-1].conversation_id == bot.personal_chat_of(ADELE)

    await answer(bot, ADELE, consent["content"]["acceptContext"])
    [data] = uploaded(bot)
    assert len(data) == consent["content"]["sizeInBytes"], "the file sent is the file offered"
    assert secret.encode() not in data
    records = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    issued = [record for record in records if record["action"] == "issue" and record["outcome"] == "succeeded"]
    assert issued and issued[0]["targetUserPrincipalName"] == MEGAN.upn and issued[0]["graphRequestId"]
    assert any(record["rule"] == "not_operator" and record["actorId"] == DIEGO.object_id for record in records)
    assert len(with_attachment(bot, FILE_INFO)) == 1
    assert "Here is the audit log of" in bot.connector.texts()[-1]
    outcomes = [row.outcome for row in await export_rows(bot)]
    assert outcomes == [AuditOutcome.NEEDS_CONFIRMATION.value, AuditOutcome.SUCCEEDED.value]


async def test_dates_are_read_in_the_operators_time_zone(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap audit export 2026-01-01 2026-01-31", timezone="America/New_York")
    context = consent_card(bot)["content"]["acceptContext"]
    assert (context["firstDay"], context["lastDay"], context["timezone"]) == (
        "2026-01-01",
        "2026-01-31",
        "America/New_York",
    )


async def test_declining_sends_nothing_and_is_audited(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap audit export")
    await answer(bot, ADELE, consent_card(bot)["content"]["declineContext"], action="decline")
    assert uploaded(bot) == []
    assert "declined" in bot.connector.texts()[-1]
    assert [row.outcome for row in await export_rows(bot)][-1] == AuditOutcome.NOTHING_TO_DO.value


async def test_non_operators_are_refused_and_audited(bot: RunningBot) -> None:
    await bot.say(DIEGO, "/tap audit export")
    assert "Only TAP operators" in bot.connector.texts()[-1]
    assert with_attachment(bot, FILE_CONSENT) == []
    [row] = await export_rows(bot)
    assert (row.outcome, row.rule, row.actor_id) == (AuditOutcome.REFUSED.value, "not_operator", DIEGO.object_id)


@pytest.mark.parametrize("someone_else", [DIEGO, ALEX], ids=["non-operator", "operator"])
async def test_an_offer_accepted_by_someone_else_is_refused_and_audited(bot: RunningBot, someone_else: Person) -> None:
    await bot.say(ADELE, "/tap audit export")
    context = consent_card(bot)["content"]["acceptContext"]
    await answer(bot, someone_else, context)
    assert uploaded(bot) == []
    assert "offered to someone else" in bot.connector.texts()[-1]
    refused = (await export_rows(bot))[-1]
    assert (refused.outcome, refused.actor_id) == (AuditOutcome.REFUSED.value, someone_else.object_id)
    # The operator it was offered to still gets it.
    await answer(bot, ADELE, context)
    assert len(uploaded(bot)) == 1


async def test_an_offer_answered_outside_the_personal_chat_is_refused(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap audit export")
    context = consent_card(bot)["content"]["acceptContext"]
    await answer(bot, ADELE, context, kind="groupChat")
    assert uploaded(bot) == []
    assert [row.outcome for row in await export_rows(bot)][-1] == AuditOutcome.REFUSED.value


async def test_a_damaged_offer_is_refused(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap audit export")
    context = {**consent_card(bot)["content"]["acceptContext"], "firstDay": "last week"}
    await answer(bot, ADELE, context)
    assert uploaded(bot) == []
    assert "damaged" in bot.connector.texts()[-1]


async def test_in_a_channel_the_file_is_offered_privately(bot: RunningBot) -> None:
    await bot.say(ADELE, "<at>tapbot</at> tap audit export", kind="channel")
    created = [sent for sent in bot.connector.sent if sent.kind == "create"]
    assert len(created) == 1
    assert with_attachment(bot, FILE_CONSENT)[-1].conversation_id == created[0].conversation_id
    channel = bot.connector.in_conversation("19:general@thread.tacv2;messageid=1")
    assert [sent.text for sent in channel] == ["[SANDBOX] Sent to you privately: look in your personal chat with me."]
