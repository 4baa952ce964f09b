"""Delegated writes (issue 14): Entra's own rights decide, through the real /api/messages against the sandbox, which
enforces them on pass writes as Graph does. A technician without a role, a role limited to an administrative unit,
an inactive PIM role, an Authentication Administrator for a privileged target (with the bot's own rule switched off:
Entra still refuses); approvals written with the approver's rights (signed in, not signed in yet, without the role);
a confirmed verification written with the technician's rights (signed in or not). No token value in a log, the
database or a card."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import bot.domain.service
import bot.sandbox.graph_handlers
from bot.domain.eligibility import target_refusal
from bot.domain.errors import Rule
from bot.sandbox.errors import GraphError
from bot.sandbox.tokens import UserClaims
from bot.settings import DEMO_TENANT_FILE
from cards import verbs
from tests.harness.bot import (
    ADELE,
    ALEX,
    DIEGO,
    ISAIAH,
    LEE,
    MEGAN,
    Person,
    RunningBot,
    sandbox_env,
    start_bot,
    stop_bot,
)
from tests.harness.connector import Sent
from tests.harness.sign_in import delegated_env, identity, oauth_cards, token_exchange
from tests.http.test_issue_flow import card_text, sandbox_passes

LYNNE = Person("41a3d674-7ed6-42bc-a472-7908b573fff3", "LynneR@contoso.onmicrosoft.com", "Lynne Robbins")
OPERATORS_GROUP = "a7ce04ee-d04a-4705-a2b0-6143136ea70f"
AUTHENTICATION_ADMINISTRATOR = "c4e39bd9-1100-46d3-8c65-fb160da0071f"
PARIS_OFFICE = "c6173151-0f93-4734-813e-1176caae1b0f"  # members: Miriam Graham, Grady Archie, Lynne Robbins
CHANNEL = "19:general@thread.tacv2"
NO_ROLE = "You need the Authentication Administrator role in Entra to issue passes."
ACTIVATE = "Activate your Authentication Administrator role in Privileged Identity Management first, then try again."


@dataclass(frozen=True)
class PassWrite:
    """A pass write as the sandbox's Graph checked it: whose token it carried, for whom, and its answer."""

    caller: str | None  # the token's object id; None for an app-only call
    target: str
    status: int  # 403 when refused; 0 when the rights allowed it


@pytest.fixture
def pass_writes(monkeypatch: pytest.MonkeyPatch) -> list[PassWrite]:
    """Records every rights check of the sandbox's TAP create/delete (its own check, unchanged)."""
    seen: list[PassWrite] = []
    check = bot.sandbox.graph_handlers.check_pass_write

    def recording(state: Any, claims: UserClaims | None, target: Any) -> None:
        caller = claims.object_id if claims is not None else None
        try:
            check(state, claims, target)
        except GraphError as error:
            seen.append(PassWrite(caller, target.id, error.status))
            raise
        seen.append(PassWrite(caller, target.id, 0))

    monkeypatch.setattr(bot.sandbox.graph_handlers, "check_pass_write", recording)
    return seen


def tenant_with(tmp_path: Path, *, operators: tuple[Person, ...] = (), roles: tuple[dict[str, str], ...] = ()) -> Path:
    """The demo tenant as these tests rely on it (Adele an active Authentication Administrator, Alex only eligible
    for it, Lynne Robbins in the Paris office unit), with more operators and more active role assignments."""
    tenant = json.loads(DEMO_TENANT_FILE.read_text(encoding="utf-8"))
    group = next(group for group in tenant["groups"] if group["id"] == OPERATORS_GROUP)
    group["members"].extend(person.object_id for person in operators)
    active = {"principalId": ADELE.object_id, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR}
    eligible = {"principalId": ALEX.object_id, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR}
    for kind, wanted in (("roleAssignments", [active, *roles]), ("roleEligibilities", [eligible])):
        entries = tenant.setdefault(kind, [])
        entries.extend(
            entry
            for entry in wanted
            if not any(all(item.get(key) == value for key, value in entry.items()) for item in entries)
        )
    unit = next(unit for unit in tenant["administrativeUnits"] if unit["id"] == PARIS_OFFICE)
    members = unit.setdefault("members", [])
    if LYNNE.object_id not in members:
        members.append(LYNNE.object_id)
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant), encoding="utf-8")
    return path


async def delegated_bot(tmp_path: Path, tenant: Path | None = None, **env: str) -> RunningBot:
    env["TAPBOT_SANDBOX_TENANT"] = str(tenant or tenant_with(tmp_path))
    return await start_bot(sandbox_env(tmp_path, **delegated_env(**env)))


async def sign_in(bot: RunningBot, person: Person) -> None:
    """The person signs in silently (Teams' token exchange) before anything waits for it."""
    status, _ = await token_exchange(bot, person, f"exchange-{person.object_id}")
    assert status == 200


def chat_of(bot: RunningBot, person: Person) -> list[Sent]:
    return bot.connector.in_conversation(bot.personal_chat_of(person))


def said_to(bot: RunningBot, person: Person) -> str:
    return "\n".join(sent.text for sent in chat_of(bot, person))


def pass_cards(bot: RunningBot, person: Person) -> list[dict[str, Any]]:
    return [card for sent in chat_of(bot, person) if (card := sent.card) is not None and "passValue" in str(card)]


async def audit_rows(bot: RunningBot) -> list[Any]:
    return list(await bot.components.store.audit_rows())


async def activate_role(bot: RunningBot, person: Person) -> None:
    body = {"principalId": person.object_id, "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR, "minutes": 60}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.sandbox_control}/roles/activate", json=body) as response,
    ):
        assert response.status == 201, await response.text()


# --- the technician's own rights --------------------------------------------------------------------------------


async def test_a_technician_without_a_role_is_refused_by_entra_with_a_sentence(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Diego is made a TAP operator but holds no Entra role: the bot's rules pass, Entra's 403 becomes a sentence."""
    bot = await delegated_bot(tmp_path, tenant_with(tmp_path, operators=(DIEGO,)))
    try:
        await sign_in(bot, DIEGO)
        await bot.say(DIEGO, f"/tap issue {MEGAN.upn} 2h")
        assert NO_ROLE in said_to(bot, DIEGO)
        assert pass_writes == [PassWrite(DIEGO.object_id, MEGAN.object_id, 403)]  # Entra said no, to Diego's token
        assert await sandbox_passes(bot) == [] and pass_cards(bot, DIEGO) == []
        refused = [row for row in await audit_rows(bot) if row.action == "issue" and row.outcome == "refused"]
        assert [(row.actor_id, row.target_id, row.rule) for row in refused] == [
            (DIEGO.object_id, MEGAN.object_id, Rule.ENTRA_REFUSED.value)
        ]
    finally:
        await stop_bot(bot)


async def test_a_role_limited_to_an_administrative_unit_covers_only_its_members(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Lee Gu is an operator whose Authentication Administrator role is scoped to the Paris office unit."""
    scoped = {
        "principalId": LEE.object_id,
        "roleDefinitionId": AUTHENTICATION_ADMINISTRATOR,
        "directoryScopeId": f"/administrativeUnits/{PARIS_OFFICE}",
    }
    bot = await delegated_bot(tmp_path, tenant_with(tmp_path, operators=(LEE,), roles=(scoped,)))
    try:
        await sign_in(bot, LEE)
        await bot.say(LEE, f"/tap issue {LYNNE.upn} 2h")
        [issued] = pass_cards(bot, LEE)
        assert LYNNE.name in card_text(issued)
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [LYNNE.object_id]

        await bot.say(LEE, f"/tap issue {MEGAN.upn} 2h")
        assert (
            "Your Authentication Administrator role covers only the administrative unit Paris office; "
            "Megan Bowen is not in it."
        ) in said_to(bot, LEE)
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [LYNNE.object_id]
        assert pass_writes == [
            PassWrite(LEE.object_id, LYNNE.object_id, 0),
            PassWrite(LEE.object_id, MEGAN.object_id, 403),
        ]
    finally:
        await stop_bot(bot)


async def test_an_inactive_pim_role_counts_as_none_until_activated(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Alex Wilber is eligible for Authentication Administrator in the demo tenant, not active."""
    bot = await delegated_bot(tmp_path)
    try:
        await sign_in(bot, ALEX)
        await bot.say(ALEX, f"/tap issue {MEGAN.upn} 2h")
        assert ACTIVATE in said_to(bot, ALEX)
        assert await sandbox_passes(bot) == []

        await activate_role(bot, ALEX)
        await bot.say(ALEX, f"/tap issue {MEGAN.upn} 2h")
        [issued] = pass_cards(bot, ALEX)
        assert MEGAN.name in card_text(issued)
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]
        assert pass_writes == [
            PassWrite(ALEX.object_id, MEGAN.object_id, 403),
            PassWrite(ALEX.object_id, MEGAN.object_id, 0),
        ]
    finally:
        await stop_bot(bot)


@pytest.fixture
def without_the_bots_role_holder_rule(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bot's own refusal of role holders (eligibility.target_refusal, as TapService applies it) switched off."""

    def lenient(*args: Any, **kwargs: Any) -> Any:
        refusal = target_refusal(*args, **kwargs)
        return None if refusal is not None and refusal.rule is Rule.ROLE_HOLDER else refusal

    monkeypatch.setattr(bot.domain.service, "target_refusal", lenient)
    yield


async def test_an_authentication_administrator_is_refused_by_entra_for_a_privileged_target(
    tmp_path: Path, pass_writes: list[PassWrite], without_the_bots_role_holder_rule: None
) -> None:
    """Isaiah Langer is a Global Administrator; Adele Vance an (active) Authentication Administrator. With the bot's
    own rule off, the write reaches Graph, and Entra refuses it: the sentence names the role that could."""
    bot = await delegated_bot(tmp_path)
    try:
        await sign_in(bot, ADELE)
        await bot.say(ADELE, f"/tap issue {ISAIAH.upn} 2h")
        said = said_to(bot, ADELE)
        assert "Isaiah Langer" in said and "only a Privileged Authentication Administrator can give them a pass" in said
        assert "must be issued by a Privileged Authentication Administrator in the Entra admin center" not in said
        assert pass_writes == [PassWrite(ADELE.object_id, ISAIAH.object_id, 403)]  # the sandbox answered 403
        assert await sandbox_passes(bot) == []
        refused = [row for row in await audit_rows(bot) if row.action == "issue" and row.outcome == "refused"]
        assert [row.rule for row in refused] == [Rule.ENTRA_REFUSED.value]
    finally:
        await stop_bot(bot)


async def test_with_the_bots_rule_on_a_privileged_target_never_reaches_graph(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """The counterpart of the test above: the bot's own rule refuses first, nothing is sent."""
    bot = await delegated_bot(tmp_path)
    try:
        await sign_in(bot, ADELE)
        await bot.say(ADELE, f"/tap issue {ISAIAH.upn} 2h")
        assert "must be issued by a Privileged Authentication Administrator" in said_to(bot, ADELE)
        assert pass_writes == []
    finally:
        await stop_bot(bot)


# --- approvals: the approver's rights ------------------------------------------------------------------------------


def request_cards(bot: RunningBot) -> list[Sent]:
    return [sent for sent in bot.connector.sent if sent.conversation_id == CHANNEL and sent.kind == "send"]


def request_id_of(sent: Sent) -> str:
    assert sent.card is not None
    return next(action["data"]["requestId"] for action in sent.card["actions"] if action["verb"] == verbs.APPROVE)


async def long_pass_request(bot: RunningBot, requester: Person, target: Person = MEGAN) -> str:
    """`requester` asks for an 8-hour pass (above the 4-hour threshold): a request in the approvals channel."""
    await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
    await bot.say(requester, f"/tap issue {target.upn} 8h")
    [posted] = request_cards(bot)
    return request_id_of(posted)


async def approval_bot(tmp_path: Path, tenant: Path | None = None) -> RunningBot:
    return await delegated_bot(tmp_path, tenant, TAPBOT_APPROVAL_LIFETIME_THRESHOLD_MINUTES="240")


async def status_of(bot: RunningBot, request_id: str) -> str:
    stored = await bot.components.desk.request(request_id)
    assert stored is not None
    return stored.status.value


async def test_an_approval_is_written_with_the_signed_in_approvers_rights(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Alex (only eligible: his own token would be refused) asks; Adele (active) approves: her token writes."""
    bot = await approval_bot(tmp_path)
    try:
        request_id = await long_pass_request(bot, ALEX)
        assert pass_writes == []  # asking writes nothing: no sign-in needed to ask
        await sign_in(bot, ADELE)
        answer = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id, "note": "ok"}, kind="channel")
        assert "The pass was sent privately to the requester." in card_text(answer["value"])
        assert pass_writes == [PassWrite(ADELE.object_id, MEGAN.object_id, 0)]
        [issued] = pass_cards(bot, ALEX)
        assert MEGAN.name in card_text(issued)
        assert await status_of(bot, request_id) == "approved"
        # tapbot's audit names both: the requester as actor, the approver in the detail (Entra's names the approver).
        [row] = [row for row in await audit_rows(bot) if row.action == "issue" and row.outcome == "succeeded"]
        assert row.actor_id == ALEX.object_id and f"approved by {ADELE.name}" in row.detail
    finally:
        await stop_bot(bot)


async def test_an_onboarding_approval_is_written_with_the_approvers_rights(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Megan Bowen, Lee Gu's manager, holds no role and never signs in: her onboarding request is written with the
    rights of Adele, who approves it."""
    bot = await approval_bot(tmp_path)
    try:
        await bot.say(ADELE, "<at>tapbot</at> tap approvals here", kind="channel")
        await bot.say(MEGAN, f"/tap onboard {LEE.upn}")
        [posted] = request_cards(bot)
        await sign_in(bot, ADELE)
        answer = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id_of(posted)}, kind="channel")
        assert "sent privately to the requester" in card_text(answer["value"])
        assert pass_writes == [PassWrite(ADELE.object_id, LEE.object_id, 0)]
        assert len(pass_cards(bot, MEGAN)) == 1 and oauth_cards(bot.connector.sent) == []
    finally:
        await stop_bot(bot)


async def test_an_approver_without_the_role_is_told_why_and_the_request_stays_pending(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Adele asks; Alex approves with his role not activated: Entra refuses, the request stays open, and once he has
    activated the role his second press issues the pass."""
    bot = await approval_bot(tmp_path)
    try:
        request_id = await long_pass_request(bot, ADELE)
        await sign_in(bot, ALEX)
        bot.connector.clear()
        answer = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert answer["value"].startswith(ACTIVATE) and "the request stays open" in answer["value"]
        assert pass_writes == [PassWrite(ALEX.object_id, MEGAN.object_id, 403)]
        assert await status_of(bot, request_id) == "pending"
        assert await sandbox_passes(bot) == [] and pass_cards(bot, ADELE) == []
        assert [sent for sent in bot.connector.sent if sent.kind == "update"] == [], "the channel card stays as it was"
        rows = await audit_rows(bot)
        assert ("decision", "refused", Rule.ENTRA_REFUSED.value) in [(r.action, r.outcome, r.rule) for r in rows]
        assert any("pending again" in row.detail for row in rows if row.action == "approval")

        await activate_role(bot, ALEX)
        answer = await bot.press(ALEX, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "The pass was sent privately to the requester." in card_text(answer["value"])
        assert await status_of(bot, request_id) == "approved"
        assert [item["user_id"] for item in await sandbox_passes(bot)] == [MEGAN.object_id]
        assert pass_writes[-1] == PassWrite(ALEX.object_id, MEGAN.object_id, 0)
    finally:
        await stop_bot(bot)


async def test_an_approved_pass_the_requester_cannot_be_shown_is_deleted_with_the_approvers_rights(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Alex (his role only eligible) cannot be reached privately any more: the pass Adele's approval made is deleted
    at once, by Adele's rights that made it (Alex's own would be refused, and the pass would stay)."""
    bot = await approval_bot(tmp_path)
    try:
        request_id = await long_pass_request(bot, ALEX)
        await sign_in(bot, ADELE)
        bot.connector.refuse_send_with = 403
        bot.connector.refuse_create_with = 403
        answer = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        assert "so the pass was revoked at once" in card_text(answer["value"])
        assert pass_writes == [
            PassWrite(ADELE.object_id, MEGAN.object_id, 0),
            PassWrite(ADELE.object_id, MEGAN.object_id, 0),
        ]
        assert await sandbox_passes(bot) == []
        rows = await audit_rows(bot)
        assert [row.outcome for row in rows if row.action == "revoke" and "delivery failed" in row.detail] == [
            "succeeded"
        ]
    finally:
        await stop_bot(bot)


def minted_tokens(bot: RunningBot) -> list[str]:
    """Every token the sandbox's Entra signs from now on (Teams SSO tokens and Graph tokens alike)."""
    minted: list[str] = []
    keys = identity(bot).keys
    mint = keys.mint

    def recording(**claims: Any) -> str:
        token = mint(**claims)
        minted.append(token)
        return token

    keys.mint = recording  # type: ignore[method-assign]
    return minted


def assert_no_token_anywhere(tmp_path: Path, bot: RunningBot, minted: list[str], logs: str) -> None:
    database = (tmp_path / "tapbot.db").read_bytes()
    sent = json.dumps([item.activity for item in bot.connector.sent])
    assert minted
    for token in minted:
        signature = token.rsplit(".", 1)[-1]
        for value in (token, signature):
            assert value not in logs and value.encode() not in database and value not in sent


async def test_an_approver_not_signed_in_gets_the_card_and_the_approval_runs_after_sign_in(
    tmp_path: Path, pass_writes: list[PassWrite], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await approval_bot(tmp_path)
    try:
        minted = minted_tokens(bot)
        request_id = await long_pass_request(bot, ALEX)
        bot.connector.clear()
        answer = await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id, "note": "INC42 ok"}, kind="channel")
        # Nothing written, still pending; the sign-in card went to Adele privately, not to the channel.
        assert answer["value"].startswith("Sign in first: I sent you a sign-in card in our personal chat.")
        assert "your approval of the request for Megan Bowen" in answer["value"]
        assert pass_writes == [] and await status_of(bot, request_id) == "pending"
        [card] = oauth_cards(bot.connector.sent)
        [opened] = [sent for sent in bot.connector.sent if sent.kind == "create"]  # her 1:1 chat, opened for it
        assert opened.activity["members"][0]["id"] == ADELE.channel_id
        assert card.sent.conversation_id == opened.conversation_id
        assert [sent for sent in bot.connector.sent if sent.conversation_id == CHANNEL] == []
        waits = await bot.components.store.take_sign_in_waits(ADELE.object_id, bot.clock.now())
        assert [(wait.kind.value, json.loads(wait.ref)) for wait in waits] == [
            ("approval", {"request": request_id, "note": "INC42 ok"})
        ]
        await bot.components.store.save_sign_in_wait(waits[0])  # put it back for the sign-in below

        status, _ = await token_exchange(bot, ADELE, card.exchange_id)

        assert status == 200
        assert pass_writes == [PassWrite(ADELE.object_id, MEGAN.object_id, 0)]  # with Adele's own token
        stored = await bot.components.desk.request(request_id)
        assert stored is not None and stored.status.value == "approved"
        assert (stored.decided_by_id, stored.decision_note) == (ADELE.object_id, "INC42 ok")
        [issued] = pass_cards(bot, ALEX)
        assert MEGAN.name in card_text(issued)
        assert (
            f"You approved the request for Megan Bowen ({MEGAN.upn}). The pass was sent privately to the requester."
        ) in said_to(bot, ADELE)
        [updated] = [sent for sent in bot.connector.sent if sent.kind == "update" and sent.conversation_id == CHANNEL]
        assert "Approved by Adele Vance" in card_text(updated.card or {})
    finally:
        await stop_bot(bot)
    assert_no_token_anywhere(tmp_path, bot, minted, caplog.text)


async def test_an_approval_waiting_for_sign_in_is_decided_again_when_it_resumes(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Adele's approval waits for her sign-in; meanwhile Diego (made an operator) denies the request, which denial
    writes nothing: her resumed approval finds the request closed and writes nothing either."""
    bot = await approval_bot(tmp_path, tenant_with(tmp_path, operators=(DIEGO,)))
    try:
        request_id = await long_pass_request(bot, ALEX)
        await bot.press(ADELE, verbs.APPROVE, {"requestId": request_id}, kind="channel")
        [card] = oauth_cards(bot.connector.sent)
        await bot.press(DIEGO, verbs.DENY, {"requestId": request_id}, kind="channel")
        assert await status_of(bot, request_id) == "denied"

        status, _ = await token_exchange(bot, ADELE, card.exchange_id)

        assert status == 200
        assert pass_writes == [] and await sandbox_passes(bot) == []
        assert "was already closed" in said_to(bot, ADELE)
        assert await status_of(bot, request_id) == "denied"
    finally:
        await stop_bot(bot)


# --- verification: the technician's rights, after the manager's confirmation -------------------------------------


async def verification_bot(tmp_path: Path) -> RunningBot:
    return await delegated_bot(tmp_path, TAPBOT_VERIFICATION="manager")


async def recovery_pass_confirmed(bot: RunningBot, technician: Person) -> str:
    """`technician` asks for a recovery pass for Lynne Robbins (Authenticator, phone; her manager is Diego
    Siciliani), and Diego confirms it is her: the write follows the confirmation, in Diego's turn."""
    await bot.say(technician, f'/tap issue {LYNNE.upn} 2h reason "INC0012345 lost phone"')
    [prompt] = [sent for sent in bot.connector.sent if sent.kind == "send" and "Is this really" in str(sent.card)]
    assert prompt.card is not None
    verification_id = next(action["data"]["verificationId"] for action in prompt.card["actions"])
    answer = await bot.press(DIEGO, verbs.VERIFY_CONFIRM, {"verificationId": verification_id})
    assert "You confirmed it is them" in card_text(answer["value"])
    return verification_id


def tracking_updates(bot: RunningBot, technician: Person) -> list[str]:
    return [
        card_text(sent.card)
        for sent in chat_of(bot, technician)
        if sent.kind == "update" and sent.card is not None and "\nMethod\n" in card_text(sent.card)
    ]


async def test_a_confirmed_verification_is_written_with_the_technicians_rights(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    bot = await verification_bot(tmp_path)
    try:
        await sign_in(bot, ADELE)
        verification_id = await recovery_pass_confirmed(bot, ADELE)
        # Diego pressed the button; Adele's token made the write (Diego has no role and is not even signed in).
        assert pass_writes == [PassWrite(ADELE.object_id, LYNNE.object_id, 0)]
        [issued] = pass_cards(bot, ADELE)
        assert LYNNE.name in card_text(issued)
        stored = await bot.components.store.verification(verification_id)
        assert stored is not None and stored.state.value == "used"
    finally:
        await stop_bot(bot)


async def test_a_technician_not_signed_in_gets_the_card_and_the_verified_request_runs_after_sign_in(
    tmp_path: Path, pass_writes: list[PassWrite], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await verification_bot(tmp_path)
    try:
        minted = minted_tokens(bot)
        verification_id = await recovery_pass_confirmed(bot, ADELE)
        # Nothing written; the verification stays confirmed (not consumed); Adele has the sign-in card privately.
        assert pass_writes == [] and await sandbox_passes(bot) == []
        stored = await bot.components.store.verification(verification_id)
        assert stored is not None and stored.state.value == "confirmed"
        [card] = oauth_cards(bot.connector.sent)
        assert card.sent.conversation_id == bot.personal_chat_of(ADELE)
        assert "the verified pass for Lynne Robbins" in said_to(bot, ADELE)
        [tracking] = tracking_updates(bot, ADELE)
        assert "Sign in to tapbot to issue the pass" in tracking
        waits = await bot.components.store.take_sign_in_waits(ADELE.object_id, bot.clock.now())
        assert [(wait.kind.value, wait.ref) for wait in waits] == [("verification", verification_id)]
        await bot.components.store.save_sign_in_wait(waits[0])  # put it back for the sign-in below

        status, _ = await token_exchange(bot, ADELE, card.exchange_id)

        assert status == 200
        assert pass_writes == [PassWrite(ADELE.object_id, LYNNE.object_id, 0)]
        [issued] = pass_cards(bot, ADELE)
        assert LYNNE.name in card_text(issued) and "Manager attestation: Diego Siciliani (manager)" in card_text(issued)
        stored = await bot.components.store.verification(verification_id)
        assert stored is not None and stored.state.value == "used"
        assert "Confirmed: the pass is in the next message." in tracking_updates(bot, ADELE)[-1]
        [row] = [row for row in await audit_rows(bot) if row.action == "issue" and row.outcome == "succeeded"]
        assert row.actor_id == ADELE.object_id and row.verification_id == verification_id
    finally:
        await stop_bot(bot)
    assert_no_token_anywhere(tmp_path, bot, minted, caplog.text)


async def test_entras_refusal_of_the_technician_goes_to_the_tracking_card(
    tmp_path: Path, pass_writes: list[PassWrite]
) -> None:
    """Alex (role only eligible) asks; Diego confirms; Entra refuses Alex's write: his tracking card says why."""
    bot = await verification_bot(tmp_path)
    try:
        await sign_in(bot, ALEX)
        verification_id = await recovery_pass_confirmed(bot, ALEX)
        assert pass_writes == [PassWrite(ALEX.object_id, LYNNE.object_id, 403)]
        assert await sandbox_passes(bot) == [] and pass_cards(bot, ALEX) == []
        [tracking] = tracking_updates(bot, ALEX)
        assert f"No pass was issued: {ACTIVATE}" in tracking
        assert ACTIVATE in said_to(bot, ALEX)
        stored = await bot.components.store.verification(verification_id)
        assert stored is not None and stored.state.value == "confirmed", "not consumed by a write that never was"
    finally:
        await stop_bot(bot)
