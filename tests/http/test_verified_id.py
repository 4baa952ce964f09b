"""Verified ID with Face Check through the real endpoints: /api/messages starts it, the emulated Request Service
plays the wallet and POSTs its callbacks to /api/verifiedid/callback, and the technician's card follows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.domain.audit import AuditAction, AuditOutcome
from bot.sandbox import load_tenant, start_sandbox
from bot.sandbox.verified_id import REQUEST_LIFETIME, sandbox_authority
from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import ADELE, ALEX, TENANT_ID, Person, RunningBot, sandbox_env, start_bot, stop_bot
from tests.harness.connector import Sent
from tests.http.test_issue_flow import card_text, pass_value, sandbox_passes

LYNNE = Person("41a3d674-7ed6-42bc-a472-7908b573fff3", "LynneR@contoso.onmicrosoft.com", "Lynne Robbins")
CALLBACK = "/api/verifiedid/callback"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    running = await start_bot(sandbox_env(tmp_path, TAPBOT_VERIFICATION="verified_id"))
    try:
        yield running
    finally:
        await stop_bot(running)


async def wallet(bot: RunningBot, request_id: str, action: str, **body: Any) -> tuple[int, dict[str, Any]]:
    url = f"{bot.sandbox_control}/verifiedid/requests/{request_id}/{action}"
    async with bot.session.post(url, json=body) as answer:
        return answer.status, await answer.json()


async def presentation_requests(bot: RunningBot) -> list[dict[str, Any]]:
    async with bot.session.get(f"{bot.sandbox_control}/verifiedid/requests") as answer:
        return (await answer.json())["requests"]


def tracking_messages(bot: RunningBot) -> list[Sent]:
    """The technician's tracking card as sent, then each in-place update of it."""
    chat = bot.personal_chat_of(ADELE)
    sent = [item for item in bot.connector.in_conversation(chat) if item.card and _is_tracking(item.card)]
    assert sent, "no tracking card"
    first = sent[0]
    assert first.kind in ("send", "reply")
    assert all(item.kind == "update" and item.activity_id == first.activity_id for item in sent[1:])
    return sent


def _is_tracking(card: dict[str, Any]) -> bool:
    return any(word in card_text(card) for word in ("Verifying the caller", "Caller verified", "Verification "))


def latest_tracking(bot: RunningBot) -> dict[str, Any]:
    card = tracking_messages(bot)[-1].card
    assert card is not None
    return card


def element(card: dict[str, Any], element_id: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("id") == element_id:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found[0] if found else None


def pass_cards(bot: RunningBot) -> list[dict[str, Any]]:
    chat = bot.personal_chat_of(ADELE)
    return [item.card for item in bot.connector.in_conversation(chat) if item.card and element(item.card, "passValue")]


async def start(bot: RunningBot, who: Person = LYNNE) -> str:
    """The technician asks for a pass; the verification starts; returns the presentation request's id."""
    response = await bot.say(ADELE, f"/tap issue {who.upn} 2h")
    assert response.status in (200, 202)
    [request] = await presentation_requests(bot)
    card = latest_tracking(bot)
    qr = element(card, "verifiedIdQr")
    link = element(card, "verifiedIdLink")
    assert qr is not None and qr["url"].startswith("data:image/png;base64,")
    assert link is not None and card_text(link).startswith("openid-vc://?request_uri=")
    assert card_text(link).endswith(request["request_id"])
    expiry = sandbox_state_request(bot, request["request_id"]).expires_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"The code works until {expiry:%a %d %b %Y, %H:%M} (Europe/Berlin)" in card_text(card)
    assert sandbox_state_request(bot, request["request_id"]).requested[0].constraints[0].values == (who.upn,)
    return str(request["request_id"])


def sandbox_state_request(bot: RunningBot, request_id: str) -> Any:
    sandbox = bot.components.sandbox
    assert sandbox is not None
    return sandbox.state.verified_id.requests[request_id]


async def callback(bot: RunningBot, body: dict[str, Any], api_key: str | None) -> aiohttp.ClientResponse:
    headers = {"api-key": api_key} if api_key is not None else {}
    async with bot.session.post(bot.url + CALLBACK, json=body, headers=headers) as answer:
        await answer.read()
        return answer


def verified_body(bot: RunningBot, request_id: str, revocation_id: str = LYNNE.upn) -> dict[str, Any]:
    """What the service posts for a verified presentation (captured, or forged by someone who knows the key)."""
    request = sandbox_state_request(bot, request_id)
    return {
        "requestId": request_id,
        "requestStatus": "presentation_verified",
        "state": request.callback_state,
        "subject": "did:ion:someone",
        "verifiedCredentialsData": [
            {
                "issuer": request.authority,
                "type": ["VerifiableCredential", "VerifiedEmployee"],
                "claims": {"revocationId": revocation_id},
                "credentialState": {"revocationStatus": "VALID"},
                "faceCheck": {"matchConfidenceScore": 99.0, "sourcePhotoQuality": "HIGH"},
            }
        ],
    }


def api_key_of(bot: RunningBot, request_id: str) -> str:
    return str(sandbox_state_request(bot, request_id).callback_headers["api-key"])


async def verification_rows(bot: RunningBot) -> list[Any]:
    return [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.VERIFICATION]


async def alert_rows(bot: RunningBot) -> list[Any]:
    return [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.ALERT]


async def test_verified_presentation_issues_the_pass_once(
    bot: RunningBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request_id = await start(bot)
    assert await sandbox_passes(bot) == [], "nothing is issued before the person is verified"

    status, scanned = await wallet(bot, request_id, "scan")
    assert status == 200 and scanned["callback"]["status"] == 200
    card = latest_tracking(bot)
    assert "opened the request" in card_text(card) and element(card, "verifiedIdQr") is None

    status, presented = await wallet(bot, request_id, "present", user=LYNNE.upn, score=92.5)
    assert status == 200 and presented["callback"]["status"] == 200
    passes = await sandbox_passes(bot)
    assert [item["user_id"] for item in passes] == [LYNNE.object_id]
    [card] = pass_cards(bot)
    secret = pass_value(card)
    assert "Caller verified" in card_text(latest_tracking(bot))
    rows = [row for row in await bot.components.store.audit_rows() if row.action == AuditAction.ISSUE]
    issued = [row for row in rows if row.outcome == AuditOutcome.SUCCEEDED]
    assert len(issued) == 1 and issued[0].evidence_method == "verified_id" and issued[0].evidence_score == 92.5
    assert issued[0].evidence_by_id == request_id

    # The same callback again (captured and replayed, or sent twice): refused, audited, nothing changes.
    replay = await callback(bot, verified_body(bot, request_id), api_key_of(bot, request_id))
    assert replay.status == 409
    refused = [row for row in await verification_rows(bot) if row.outcome == AuditOutcome.REFUSED]
    assert refused and "already" in refused[-1].detail
    assert len(await sandbox_passes(bot)) == 1 and len(pass_cards(bot)) == 1

    secrets = [api_key_of(bot, request_id)]
    sandbox = bot.components.sandbox
    assert sandbox is not None
    tokens = list(sandbox.state.verified_id._tokens)  # pyright: ignore[reportPrivateUsage]
    database = (tmp_path / "tapbot.db").read_bytes() + b"".join(
        path.read_bytes() for path in tmp_path.glob("tapbot.db-*")
    )
    for value in (secret, *secrets, *tokens):
        assert value.encode() not in database and value not in caplog.text
    for sent in bot.connector.sent:
        for value in (*secrets, *tokens):
            assert value not in str(sent.activity)


async def test_another_users_credential_is_refused(bot: RunningBot) -> None:
    request_id = await start(bot)
    status, answer = await wallet(bot, request_id, "present", user=ADELE.upn, score=95)
    assert status == 409 and answer["error"]["code"] == "NoMatchingCredential", "the wallet does not even offer it"
    assert "Verifying the caller" in card_text(latest_tracking(bot))

    status, presented = await wallet(bot, request_id, "present", user=ADELE.upn, score=95, skip_wallet_rule=True)
    assert status == 200 and presented["callback"]["status"] == 200
    assert await sandbox_passes(bot) == [] and pass_cards(bot) == []
    text = card_text(latest_tracking(bot))
    assert "Verification failed" in text and "belongs to someone else" in text
    [alert] = await alert_rows(bot)
    assert alert.rule == "verification_failed" and alert.target_id == LYNNE.object_id


async def test_a_low_face_score_fails_with_an_alert(bot: RunningBot) -> None:
    request_id = await start(bot)
    await wallet(bot, request_id, "scan")
    status, presented = await wallet(bot, request_id, "present", user=LYNNE.upn, score=55)
    assert status == 200 and presented["status"] == "error"
    assert await sandbox_passes(bot) == []
    text = card_text(latest_tracking(bot))
    assert "Verification failed" in text and "Face Check did not match well enough" in text
    assert [row.rule for row in await alert_rows(bot)] == ["verification_failed"]


async def test_a_credential_of_another_issuer_is_refused(bot: RunningBot) -> None:
    request_id = await start(bot)
    status, _ = await wallet(bot, request_id, "present", user=LYNNE.upn, score=95, issuer="did:web:fabrikam.example")
    assert status == 409, "Authenticator offers only a credential of an accepted issuer"
    status, _ = await wallet(
        bot, request_id, "present", user=LYNNE.upn, score=95, issuer="did:web:fabrikam.example", skip_wallet_rule=True
    )
    assert status == 200 and await sandbox_passes(bot) == []
    assert "own Verified ID authority" in card_text(latest_tracking(bot))


async def test_a_revoked_credential_is_refused(bot: RunningBot) -> None:
    request_id = await start(bot)
    status, presented = await wallet(bot, request_id, "present", user=LYNNE.upn, score=95, revoked=True)
    assert status == 200 and presented["status"] == "error"
    assert await sandbox_passes(bot) == []
    assert "Verification failed" in card_text(latest_tracking(bot))
    # Even a presentation_verified that says REVOKED (as with allowRevoked: true) is refused.
    second = await start_another(bot)
    body = verified_body(bot, second)
    body["verifiedCredentialsData"][0]["credentialState"] = {"revocationStatus": "REVOKED"}
    answer = await callback(bot, body, api_key_of(bot, second))
    assert answer.status == 200 and await sandbox_passes(bot) == []
    assert "not valid" in card_text(latest_tracking(bot))


async def start_another(bot: RunningBot) -> str:
    bot.connector.clear()
    before = {item["request_id"] for item in await presentation_requests(bot)}
    await bot.say(ADELE, f"/tap issue {LYNNE.upn} 2h replace")  # replace: Lynne may hold a pass by now
    [request_id] = [item["request_id"] for item in await presentation_requests(bot) if item["request_id"] not in before]
    return str(request_id)


async def test_an_expired_request_is_closed_by_the_bot(bot: RunningBot) -> None:
    request_id = await start(bot)
    status, declined = await wallet(bot, request_id, "decline")  # the caller cancels in Authenticator: no callback
    assert status == 200 and declined["deliveries"] == []
    status, _ = await wallet(bot, request_id, "expire")
    assert status == 200
    await bot.components.housekeeping.round()
    assert "Verifying the caller" in card_text(latest_tracking(bot)), "the service says nothing; nor does the bot yet"
    bot.clock.offset += REQUEST_LIFETIME + timedelta(seconds=1)
    await bot.components.housekeeping.round()
    text = card_text(latest_tracking(bot))
    assert "expired" in text.lower() and element(latest_tracking(bot), "verifiedIdQr") is None
    # A callback after that (late, or forged) changes nothing.
    late = await callback(bot, verified_body(bot, request_id), api_key_of(bot, request_id))
    assert late.status == 409 and await sandbox_passes(bot) == []
    refused = [row for row in await verification_rows(bot) if row.outcome == AuditOutcome.REFUSED]
    assert refused and "already expired" in refused[-1].detail


async def test_a_wrong_or_missing_api_key_is_401_and_changes_nothing(bot: RunningBot) -> None:
    request_id = await start(bot)
    body = verified_body(bot, request_id)
    assert (await callback(bot, body, None)).status == 401
    assert (await callback(bot, body, "not-the-key")).status == 401
    assert (await callback(bot, body, api_key_of(bot, request_id) + "x")).status == 401
    assert await sandbox_passes(bot) == []
    refused = [row for row in await verification_rows(bot) if row.outcome == AuditOutcome.REFUSED]
    assert [row.detail.endswith("missing or wrong api-key") for row in refused] == [True, True]
    assert "Verifying the caller" in card_text(latest_tracking(bot))
    # The real presentation still works afterwards.
    status, _ = await wallet(bot, request_id, "present", user=LYNNE.upn, score=90)
    assert status == 200 and len(await sandbox_passes(bot)) == 1


async def test_a_forged_callback_with_an_unknown_state_is_400(bot: RunningBot) -> None:
    request_id = await start(bot)
    body = verified_body(bot, request_id)
    body["state"] = "made-up-state"
    answer = await callback(bot, body, api_key_of(bot, request_id))
    assert answer.status == 400
    for broken in ("not json", "[1, 2]"):
        async with bot.session.post(
            bot.url + CALLBACK, data=broken, headers={"api-key": "x", "Content-Type": "application/json"}
        ) as reply:
            assert reply.status == 400
    assert await sandbox_passes(bot) == []


async def test_a_callback_for_one_request_cannot_settle_another(bot: RunningBot) -> None:
    first = await start(bot)
    second = await start_another(bot)
    body = verified_body(bot, second)
    body["state"] = sandbox_state_request(bot, first).callback_state  # the first's state with the second's key
    assert (await callback(bot, body, api_key_of(bot, second))).status == 401
    body = verified_body(bot, first)
    body["requestId"] = second
    assert (await callback(bot, body, api_key_of(bot, first))).status == 400
    assert await sandbox_passes(bot) == []


async def test_scanned_twice_is_refused(bot: RunningBot) -> None:
    request_id = await start(bot)
    await wallet(bot, request_id, "scan")
    retrieved = {"requestId": request_id, "requestStatus": "request_retrieved"}
    retrieved["state"] = sandbox_state_request(bot, request_id).callback_state
    assert (await callback(bot, retrieved, api_key_of(bot, request_id))).status == 409


async def test_another_operator_cannot_use_the_verification(bot: RunningBot) -> None:
    """The verification belongs to Adele's request: Alex issuing for Lynne needs his own."""
    request_id = await start(bot)
    await wallet(bot, request_id, "present", user=LYNNE.upn, score=90)
    assert len(await sandbox_passes(bot)) == 1
    await bot.say(ALEX, f"/tap issue {LYNNE.upn} 2h replace")
    assert len(await presentation_requests(bot)) == 2, "a second pass needs a second verification"
    assert len(await sandbox_passes(bot)) == 1


async def test_a_used_verification_cannot_issue_a_second_pass(bot: RunningBot) -> None:
    """The verification was consumed by the pass it was made for: a forged "Replace it" carrying it is refused."""
    request_id = await start(bot)
    await wallet(bot, request_id, "present", user=LYNNE.upn, score=90)
    [issued] = await sandbox_passes(bot)
    [verification_id] = {row.verification_id for row in await verification_rows(bot) if row.verification_id}
    data = {
        "target": LYNNE.object_id,
        "label": LYNNE.name,
        "lifetimeMinutes": 120,
        "oneTime": False,
        "replaceMethodId": issued["id"],
        "verificationId": verification_id,
    }
    await bot.press(ADELE, verbs.CONFIRM_REPLACE, data)
    assert await sandbox_passes(bot) == [issued], "the pass it was used for is still the only one"
    assert len(pass_cards(bot)) == 1 and len(await presentation_requests(bot)) == 1
    refusals = [row for row in await bot.components.store.audit_rows() if row.rule == "verification_not_usable"]
    assert refusals and refusals[-1].outcome == AuditOutcome.REFUSED


async def test_a_restart_while_the_caller_scans_loses_nothing(tmp_path: Path) -> None:
    """The request's state and the hash of its api-key are in SQL: the service's callback reaches the next process
    (the emulated service stops with the first one, so its callback is replayed here as it would have been sent)."""
    env = sandbox_env(tmp_path, TAPBOT_VERIFICATION="verified_id")
    first = await start_bot(env)
    connector = first.connector
    try:
        request_id = await start(first)
        body, api_key = verified_body(first, request_id), api_key_of(first, request_id)
    finally:
        await first.session.close()
        await first.runner.cleanup()
    second = await start_bot(env)
    try:
        second.connector, spare = connector, second.connector
        await spare.stop()
        assert (await callback(second, body, api_key)).status == 200
        assert [item["user_id"] for item in await sandbox_passes(second)] == [LYNNE.object_id]
        assert len(pass_cards(second)) == 1 and "Caller verified" in card_text(latest_tracking(second))
    finally:
        await stop_bot(second)


async def test_a_directory_that_cannot_be_read_accepts_nobody(bot: RunningBot) -> None:
    request_id = await start(bot)
    rule = {"method": "GET", "path_regex": "^/users/LynneR@", "status": 503, "count": None}
    async with bot.session.post(f"{bot.sandbox_control}/faults", json=rule) as answer:
        assert answer.status == 201
    status, presented = await wallet(bot, request_id, "present", user=LYNNE.upn, score=95)
    assert status == 200 and presented["callback"]["status"] == 200
    assert await sandbox_passes(bot) == []
    assert "directory could not be read" in card_text(latest_tracking(bot))


async def test_against_a_stand_alone_sandbox(tmp_path: Path) -> None:
    """TAPBOT_GRAPH_AUTH=anonymous: the stand-alone sandbox's Request Service and token endpoint, the configured
    authority, and the bot's own loopback address for the callback."""
    sandbox = await start_sandbox(await asyncio.to_thread(load_tenant, DEMO_TENANT_FILE))
    try:
        env = sandbox_env(
            tmp_path,
            TAPBOT_GRAPH_AUTH="anonymous",
            TAPBOT_GRAPH_BASE_URL=sandbox.base_url,
            TAPBOT_ALLOWED_TENANT_IDS=TENANT_ID,
            TAPBOT_OPERATOR_GROUP_ID="a7ce04ee-d04a-4705-a2b0-6143136ea70f",
            TAPBOT_VERIFICATION="verified_id",
            TAPBOT_VERIFIED_ID_AUTHORITY=sandbox_authority(TENANT_ID),
        )
        del env["TAPBOT_SANDBOX_TENANT"]
        bot = await start_bot(env)
        try:
            await bot.say(ADELE, f"/tap issue {LYNNE.upn} 2h")
            [request_id] = list(sandbox.state.verified_id.requests)
            async with bot.session.post(
                f"{sandbox.control_url}/verifiedid/requests/{request_id}/present",
                json={"user": LYNNE.upn, "score": 88},
            ) as answer:
                assert answer.status == 200 and (await answer.json())["callback"]["status"] == 200
            assert sandbox.state.passes.of_user(LYNNE.object_id) is not None
            assert len(pass_cards(bot)) == 1
        finally:
            await stop_bot(bot)
    finally:
        await sandbox.close()


async def test_a_presentation_with_its_photo_fits_and_a_huge_body_does_not(bot: RunningBot) -> None:
    """The employee photo travels in the callback (up to 1 MB, URL-encoded base64): more than the 256 KiB an
    activity may have, within the service's 10 MB."""
    request_id = await start(bot)
    body = verified_body(bot, request_id)
    body["verifiedCredentialsData"][0]["claims"]["photo"] = "%2F9j" * 300_000
    assert (await callback(bot, body, api_key_of(bot, request_id))).status == 200
    assert [item["user_id"] for item in await sandbox_passes(bot)] == [LYNNE.object_id]
    second = await start_another(bot)
    huge = verified_body(bot, second)
    huge["verifiedCredentialsData"][0]["claims"]["photo"] = "x" * (12 * 1024 * 1024)
    assert (await callback(bot, huge, api_key_of(bot, second))).status == 413
