"""Follow-through (issue 12 item 4) through the real app against the sandbox: passes issued with /tap issue, the
user's methods registered through the sandbox's control plane, housekeeping rounds run as the loop runs them."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.domain.audit import AuditAction
from bot.domain.follow_through import RECHECK_AFTER
from bot.domain.records import RedactionReason
from bot.teams.follow_through import FollowThroughFlow
from tests.harness.bot import ADELE, JONI, LEE, MEGAN, Person, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.card_reading import pass_value
from tests.harness.connector import Sent
from tests.http.test_issue_flow import card_text, sandbox_passes

BERLIN = ZoneInfo("Europe/Berlin")
STEP = RECHECK_AFTER + timedelta(seconds=30)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path))
    try:
        yield running
    finally:
        await stop_bot(running)


async def advance(bot: RunningBot, by: timedelta) -> None:
    """Moves the bot's clock and the sandbox's clock (Graph's time) forward together."""
    bot.clock.offset += by
    async with aiohttp.ClientSession() as session:
        answer = await session.post(f"{bot.sandbox_control}/clock", json={"seconds": by.total_seconds()})
        assert answer.status == 200


async def register(bot: RunningBot, person: Person, method_type: str, **extra: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        answer = await session.post(
            f"{bot.sandbox_control}/users/{person.object_id}/methods", json={"type": method_type, **extra}
        )
        body = await answer.json()
        assert answer.status == 201, body
        return body


async def issue(bot: RunningBot, person: Person, options: str = "2h") -> str:
    """Issues a pass as Adele; returns its value (to prove it never shows up anywhere else)."""
    await bot.say(ADELE, f"/tap issue {person.upn} {options}")
    cards = [sent.card for sent in chat_of(bot, ADELE) if sent.card is not None and sent.kind != "update"]
    return pass_value(cards[-1])


async def housekeeping(bot: RunningBot) -> None:
    await bot.components.housekeeping.round()


def chat_of(bot: RunningBot, person: Person) -> list[Sent]:
    return bot.connector.in_conversation(bot.personal_chat_of(person))


def notices(bot: RunningBot) -> list[str]:
    return [sent.text for sent in chat_of(bot, ADELE) if sent.card is None and sent.kind == "send"]


def berlin_clock(moment: str) -> str:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(BERLIN).strftime("%H:%M")


async def test_a_strong_method_after_the_pass_started_is_reported_once_and_the_multi_use_pass_deleted(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = await issue(bot, LEE)
    [card] = await bot.components.store.unredacted_cards_for_user(LEE.object_id)
    await advance(bot, timedelta(minutes=3))
    registered = await register(bot, LEE, "microsoftAuthenticator")
    await advance(bot, STEP)
    await housekeeping(bot)

    [notice] = notices(bot)
    # "at 09:12", or "on 28 Nov at 23:59" when the round ran on the next local day
    assert f"Lee Gu ({LEE.upn}) registered Microsoft Authenticator " in notice
    assert f"at {berlin_clock(registered['createdDateTime'])}." in notice
    assert "no longer needed, so I deleted it" in notice
    assert await sandbox_passes(bot) == []
    revokes = [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.REVOKE.value]
    assert len(revokes) == 1 and revokes[0].actor_id == "tapbot" and revokes[0].outcome == "succeeded"
    assert "registered their own sign-in method" in (revokes[0].detail or "")
    stored = await bot.components.store.pass_card(card.id)
    assert stored is not None and stored.redaction_reason == RedactionReason.REGISTERED.value
    [update] = [sent for sent in chat_of(bot, ADELE) if sent.kind == "update" and sent.activity_id == card.activity_id]
    assert update.card is not None and "registered their own sign-in method" in card_text(update.card)

    for _ in range(2):  # later rounds, and a round of another replica, tell nobody again
        await advance(bot, STEP)
        await housekeeping(bot)
    assert len(notices(bot)) == 1
    everything = json.dumps([sent.activity for sent in bot.connector.sent if sent.card is None])
    assert secret not in everything and secret not in json.dumps(update.card)
    assert not any(secret in record.getMessage() for record in caplog.records)


async def test_with_the_setting_off_a_multi_use_pass_is_kept_and_the_requester_told(tmp_path: Path) -> None:
    bot = await start_bot(sandbox_env(tmp_path, TAPBOT_REVOKE_AFTER_REGISTRATION="false"))
    try:
        await issue(bot, LEE)
        await advance(bot, timedelta(minutes=1))
        await register(bot, LEE, "fido2")
        await advance(bot, STEP)
        await housekeeping(bot)
        [notice] = notices(bot)
        assert "registered a passkey (FIDO2)" in notice and "stays valid until" in notice
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]
        assert not [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.REVOKE.value]
    finally:
        await stop_bot(bot)


async def test_a_one_time_pass_is_reported_but_not_deleted(bot: RunningBot) -> None:
    await issue(bot, LEE, "2h one-time")
    await advance(bot, timedelta(minutes=1))
    await register(bot, LEE, "windowsHelloForBusiness")
    await advance(bot, STEP)
    await housekeeping(bot)
    [notice] = notices(bot)
    assert "registered Windows Hello for Business" in notice and "deleted" not in notice
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]


async def test_methods_registered_before_the_pass_started_are_not_reported(bot: RunningBot) -> None:
    await register(bot, LEE, "windowsHelloForBusiness")
    await register(bot, LEE, "microsoftAuthenticator", passwordless=False)  # Graph: no createdDateTime
    await advance(bot, timedelta(minutes=1))
    await issue(bot, LEE)
    await register(bot, LEE, "phone")  # not a strong method
    for _ in range(3):
        await advance(bot, STEP)
        await housekeeping(bot)
    assert notices(bot) == []
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LEE.object_id]


async def test_a_method_without_a_time_counts_when_the_first_check_did_not_see_it(bot: RunningBot) -> None:
    """Megan's Authenticator from the tenant file has no createdDateTime (not set up for phone sign-in), like a
    second one she adds while holding the pass: only the one the first check did not see is new."""
    await issue(bot, MEGAN)
    await advance(bot, STEP)
    await housekeeping(bot)
    assert notices(bot) == []
    await register(bot, MEGAN, "microsoftAuthenticator", passwordless=False)
    await advance(bot, STEP)
    await housekeeping(bot)
    [notice] = notices(bot)
    assert "Megan Bowen" in notice and "registered Microsoft Authenticator by " in notice


async def test_a_pass_that_expires_unused_is_reported_once(bot: RunningBot) -> None:
    await issue(bot, LEE, "1h one-time")
    await issue(bot, MEGAN, "1h")
    await advance(bot, STEP)
    await housekeeping(bot)
    await advance(bot, timedelta(hours=1))
    await housekeeping(bot)
    lines = notices(bot)
    assert len(lines) == 2
    lee = next(line for line in lines if "Lee Gu" in line)
    megan = next(line for line in lines if "Megan Bowen" in line)
    assert "one-time pass" in lee and "without being used" in lee
    assert "no new sign-in method was registered" in megan and "does not say whether it was used" in megan
    for _ in range(2):
        await advance(bot, STEP)
        await housekeeping(bot)
    assert len(notices(bot)) == 2


async def test_a_one_time_pass_used_before_it_expired_is_not_reported(bot: RunningBot) -> None:
    await issue(bot, LEE, "1h one-time")
    async with aiohttp.ClientSession() as session:
        used = await session.post(f"{bot.sandbox_control}/passes/{LEE.object_id}/use", json={})
        assert used.status == 200
    await advance(bot, STEP)
    await housekeeping(bot)
    await advance(bot, timedelta(hours=1))
    await housekeeping(bot)
    assert notices(bot) == []


async def test_only_users_with_a_live_pass_the_bot_issued_are_read_and_not_every_round(bot: RunningBot) -> None:
    counters = bot.components.sandbox.state.counters  # type: ignore[union-attr]
    await housekeeping(bot)
    assert counters.method_list_reads == {}, "Joni's seeded pass was not issued by the bot"
    await issue(bot, LEE)
    await housekeeping(bot)
    assert counters.method_list_reads == {LEE.object_id: 1}
    await housekeeping(bot)
    assert counters.method_list_reads == {LEE.object_id: 1}, "read again only after RECHECK_AFTER"
    await advance(bot, STEP)
    await housekeeping(bot)
    assert counters.method_list_reads == {LEE.object_id: 2}
    await bot.say(ADELE, f"/tap revoke {LEE.upn}")
    await advance(bot, STEP)
    await housekeeping(bot)
    await advance(bot, STEP)
    await housekeeping(bot)
    assert counters.method_list_reads.get(LEE.object_id) == 3, "a revoked pass is read once more, then never"
    assert JONI.object_id not in counters.method_list_reads and notices(bot) == []


async def test_two_replicas_at_once_tell_the_requester_once(bot: RunningBot) -> None:
    await issue(bot, LEE)
    await register(bot, LEE, "fido2")
    await advance(bot, STEP)
    flow = bot.components.housekeeping.follow_through
    assert flow is not None
    first = flow.__self__  # type: ignore[attr-defined]
    assert isinstance(first, FollowThroughFlow)
    second = copy.copy(first)  # the same app as another replica runs it, under its own name
    second._holder = "replica-b"
    second._follow = copy.copy(first._follow)
    second._follow._holder = "replica-b"
    await asyncio.gather(first.round(), second.round(), first.round(), second.round())
    assert len(notices(bot)) == 1
    revokes = [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.REVOKE.value]
    assert len(revokes) == 1


async def test_a_notice_teams_refuses_is_delivered_next_round_once(bot: RunningBot) -> None:
    await issue(bot, LEE)
    await register(bot, LEE, "platformCredential")
    await advance(bot, STEP)
    bot.connector.refuse_send_with = 403
    await housekeeping(bot)
    assert notices(bot) == []
    bot.connector.refuse_send_with = None
    await housekeeping(bot)
    await housekeeping(bot)
    [notice] = notices(bot)
    assert "registered a platform credential" in notice


async def test_the_sandbox_registers_only_known_method_types(bot: RunningBot) -> None:
    async with aiohttp.ClientSession() as session:
        wrong = await session.post(f"{bot.sandbox_control}/users/{LEE.object_id}/methods", json={"type": "password"})
        assert wrong.status == 400
        nobody = await session.post(f"{bot.sandbox_control}/users/nobody@contoso.com/methods", json={"type": "fido2"})
        assert nobody.status == 404
    registered = await register(bot, LEE, "microsoftAuthenticator", passwordless=False)
    assert registered["createdDateTime"] is None
    assert registered["@odata.type"] == "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"


async def test_the_time_is_said_in_the_requesters_own_time_zone(bot: RunningBot) -> None:
    await bot.say(ADELE, f"/tap issue {LEE.upn} 2h", timezone="America/New_York")
    registered = await register(bot, LEE, "fido2")
    await advance(bot, STEP)
    await housekeeping(bot)
    [notice] = notices(bot)
    created = datetime.fromisoformat(registered["createdDateTime"].replace("Z", "+00:00"))
    new_york = created.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")
    assert "registered a passkey (FIDO2) " in notice and f"at {new_york}." in notice
    assert new_york != berlin_clock(registered["createdDateTime"])
