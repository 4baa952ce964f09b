"""A pass is refused for anyone who holds or could activate a directory role, by any path (issue 9, item 2).

Each case goes through the real /api/messages endpoint against the sandbox tenant: the refusal names the role and
how it is held, is audited with the role rule, and nothing is written to the tenant.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.harness.bot import ADELE, RunningBot
from tests.http.test_issue_flow import card_text

CASES = {
    "ChristieC@contoso.onmicrosoft.com": "Helpdesk Administrator (through group Helpdesk Admins)",
    "GradyA@contoso.onmicrosoft.com": (
        "Authentication Administrator (through group Paris Helpdesk, scoped to an administrative unit)"
    ),
    "HenriettaM@contoso.onmicrosoft.com": "Global Administrator (eligible in PIM)",
    "IrvinS@contoso.onmicrosoft.com": "Security Administrator (eligible in PIM, through group Security Responders)",
    "JohannaL@contoso.onmicrosoft.com": (
        "Helpdesk Administrator (through eligible membership of group Helpdesk Admins)"
    ),
    # Owns the group without being in it: an owner can add themselves as a member at any time.
    "PattiF@contoso.onmicrosoft.com": "Helpdesk Administrator (through ownership of group Helpdesk Admins)",
}


async def tenant_passes(bot: RunningBot) -> list[str]:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.sandbox_control}/state") as response:
        return [item["user_principal_name"] for item in (await response.json())["passes"]]


@pytest.mark.parametrize(("upn", "role"), CASES.items(), ids=[upn.split("@")[0] for upn in CASES])
async def test_issue_is_refused_for_a_role_held_or_eligible_by_any_path(bot: RunningBot, upn: str, role: str) -> None:
    before = await tenant_passes(bot)
    response = await bot.say(ADELE, f"/tap issue {upn} 1h")
    assert response.status in (200, 202)
    [answer] = bot.connector.texts()
    assert f"holds the directory role {role}." in answer
    assert "Privileged Authentication Administrator" in answer, "says who can issue it instead"
    assert await tenant_passes(bot) == before, "no pass was created"
    rows = await bot.components.store.audit_rows()
    refused = [row for row in rows if row.outcome == "refused"]
    assert [row.rule for row in refused] == ["role_holder"]


async def test_a_bulk_file_of_such_people_is_refused_row_by_row(bot: RunningBot) -> None:
    """The bulk preflight applies the same rule to every row: none of them is ready, each names the role."""
    csv = ("userPrincipalName\r\n" + "".join(f"{upn}\r\n" for upn in CASES)).encode("utf-8")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/files?name=admins.csv", data=csv) as hosted,
    ):
        download_url = (await hosted.json())["downloadUrl"]
    attachment = {
        "contentType": "application/vnd.microsoft.teams.file.download.info",
        "name": "admins.csv",
        "contentUrl": "https://contoso.sharepoint.com/personal/adele/Documents/admins.csv",
        "content": {"downloadUrl": download_url, "uniqueId": "1", "fileType": "csv"},
    }
    before = await tenant_passes(bot)
    await bot.post(bot.activity(ADELE, "", attachments=[attachment]))
    [preflight] = [sent.card for sent in bot.connector.sent if sent.card is not None]
    text = card_text(preflight)
    assert f"Refused\n{len(CASES)}" in text and "Ready" not in text, text
    for role in CASES.values():
        assert f"holds the directory role {role}." in text
    assert await tenant_passes(bot) == before
