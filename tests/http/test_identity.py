"""Caller ids are object ids (issue 9, item 8): only a canonical GUID in from.aadObjectId names a person."""

from __future__ import annotations

from tests.harness.bot import ADELE, MEGAN, RunningBot
from tests.http.test_issue_flow import cards_in, sandbox_passes


def as_sender(bot: RunningBot, object_id: str, text: str) -> dict[str, object]:
    activity = bot.activity(ADELE, text)
    activity["from"] = {**activity["from"], "aadObjectId": object_id}
    return activity


async def test_a_upn_or_a_decorated_guid_is_an_unknown_caller(bot: RunningBot) -> None:
    """A UPN resolves in Graph (so it passed the operator check) but never equals an object id (so it passed
    the "not for yourself" check): it must not name anyone."""
    spellings = [ADELE.upn, f"{{{ADELE.object_id}}}", f"urn:uuid:{ADELE.object_id}", ADELE.object_id.replace("-", "")]
    for spelling in spellings:
        for target in (MEGAN.upn, ADELE.upn):
            bot.connector.clear()
            response = await bot.post(as_sender(bot, spelling, f"/tap issue {target}"))
            assert response.status in (200, 202)
            texts = bot.connector.texts()
            assert texts and "can't tell who you are" in texts[-1], (spelling, texts)
            assert cards_in(bot.connector.sent) == []
    assert await sandbox_passes(bot) == [], "no Graph write for an unknown caller"


async def test_an_upper_case_guid_is_the_same_person(bot: RunningBot) -> None:
    upper = ADELE.object_id.upper()
    await bot.post(as_sender(bot, upper, f"/tap issue {ADELE.upn}"))
    assert "yourself" in bot.connector.texts()[-1], bot.connector.texts()
    assert await sandbox_passes(bot) == []

    await bot.post(as_sender(bot, upper, f"/tap issue {MEGAN.upn}"))
    assert len(cards_in(bot.connector.sent)) == 1, "an upper-case spelling of an operator's id is that operator"
    passes = await sandbox_passes(bot)
    assert [item["user_id"] for item in passes] == [MEGAN.object_id]
    rows = [row for row in await bot.components.store.audit_rows() if row.action == "issue"]
    assert {row.actor_id for row in rows} == {ADELE.object_id}, "audited under the canonical id"
