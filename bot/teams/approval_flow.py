"""Approval requests in Teams: the card in the approvals channel, the Approve/Deny buttons, the requester's news."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_agents.activity import AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus
from bot.domain.decisions import AlreadyClosed, Decided, DecisionService
from bot.domain.errors import EntraRefused, Refused, Rule, SignInRequired, TapError
from bot.domain.model import Caller, Recipient
from bot.domain.records import SignInWait, SignInWaitKind
from bot.teams.delivery import DeliveryFailed, PrivateChat, PrivateDelivery, card_message, text_message
from bot.teams.pass_delivery import PassDelivery
from bot.teams.presentation import Presentation
from bot.teams.turn import Turn
from cards.approvals import approval_request_card, decided_request_card
from cards.buttons import DecisionButton
from cards.formatting import local_and_utc

logger = logging.getLogger(__name__)


BulkApproved = Callable[[ApprovalRequest], Awaitable[str]]
ResumeHandler = Callable[[Turn, SignInWait], Awaitable[None]]

STILL_OPEN = "Nothing was written, and the request stays open for an approver whose rights allow it."


class RegistersResumes(Protocol):
    def register(self, kind: SignInWaitKind, handler: ResumeHandler) -> None: ...


class AsksSignIn(Protocol):
    """Delegated writes' sign-in at the Teams edge (bot/teams/sign_in.py `SignIns`), as the approval and verification
    flows use it: a sign-in card with a wait of their own kind, and the registry of what runs after the sign-in."""

    @property
    def resumes(self) -> RegistersResumes: ...

    async def ask_in_turn(
        self, turn: Turn, *, kind: SignInWaitKind | None, ref: str | None, what: str | None = None
    ) -> str: ...

    async def ask_privately(self, recipient: Recipient, *, kind: SignInWaitKind, ref: str, what: str) -> bool: ...


class ApprovalAnnouncer:
    """Posts a new request to the approvals channel. Both single passes and bulk runs announce through it."""

    def __init__(self, *, desk: ApprovalDesk, delivery: PrivateDelivery, presentation: Presentation) -> None:
        self._desk = desk
        self._delivery = delivery
        self._presentation = presentation

    async def announce(self, request: ApprovalRequest) -> str:
        """Posts the request in the approvals channel; returns the sentence for the requester."""
        channel = await self._desk.channel(request.requester.tenant_id)
        if channel is None:  # removed since the request was opened
            return "No approvals channel is set up, so nobody can approve this request. Ask IT to set one up."
        card = self._presentation.decorate(approval_request_card(request, tz=self._presentation.default_timezone))
        chat = PrivateChat(channel.service_url, channel.conversation_id)
        try:
            activity_id = await self._delivery.post(chat, card_message(card))
        except DeliveryFailed as failure:
            logger.warning("could not post approval request %s: %s", request.id, failure)
            return (
                f"I couldn't post your request to the approvals channel ({failure}). Operators can still find it "
                "with /tap requests; tell IT so they can check the bot is in that channel."
            )
        if activity_id:
            await self._desk.remember_card(request.id, chat.service_url, chat.conversation_id, activity_id)
        deadline = local_and_utc(request.expires_at, requester_zone(request, self._presentation.default_timezone))
        return (
            f"Your request for {request.target_label} is waiting for an operator's approval. I'll send the pass "
            f"to you here once it is approved, or tell you if it is denied. If nobody decides by {deadline}, "
            "it expires."
        )


class ApprovalFlow:
    """The Approve and Deny buttons, what the requester is told, and the requests nobody decided in time."""

    def __init__(
        self,
        *,
        desk: ApprovalDesk,
        decisions: DecisionService,
        delivery: PrivateDelivery,
        passes: PassDelivery,
        presentation: Presentation,
        on_bulk_approved: BulkApproved,
        sign_in: AsksSignIn | None = None,
    ) -> None:
        self._desk = desk
        self._decisions = decisions
        self._delivery = delivery
        self._passes = passes
        self._presentation = presentation
        self._on_bulk_approved = on_bulk_approved
        # Delegated writes (TAPBOT_GRAPH_WRITES=delegated): the approver's own rights make the pass an approval
        # issues; one who is not signed in gets the sign-in card, and their approval runs again once signed in.
        self._sign_in = sign_in
        if sign_in is not None:
            sign_in.resumes.register(SignInWaitKind.APPROVAL, self.resume_after_sign_in)

    async def on_approve(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        return await self._decide(turn, data, approve=True)

    async def on_deny(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        return await self._decide(turn, data, approve=False)

    async def _decide(self, turn: Turn, data: object, *, approve: bool) -> AdaptiveCardInvokeResponse:
        """Any other refusal (and damaged data) is answered by `Turns.button`."""
        button = DecisionButton.parse(data)
        try:
            result = await self._decisions.decide(
                turn.facts.caller, button.request_id, approve=approve, note=button.note
            )
        except SignInRequired as needed:
            # Nothing was written and the request is still pending: the approval runs again after the sign-in.
            return factory.message(await self._ask_sign_in(turn, needed, button.request_id, button.note))
        except EntraRefused as refused:
            # Entra said no to this approver's rights: another approver (a Privileged Authentication Administrator,
            # or one whose role covers the user) can still approve, so the request stays open until it expires.
            return factory.message(f"{refused.user_message} {STILL_OPEN}")
        except Refused as refusal:
            # Only the person who pressed sees this; the card stays as it is for everyone else.
            why = (
                "it is your own, and another operator has to."
                if refusal.rule is Rule.SELF_APPROVAL
                else "only an operator other than the requester can."
            )
            return factory.message(f"You cannot decide this request: {why}")
        tz = self._presentation.default_timezone
        if isinstance(result, AlreadyClosed):
            closed = decided_request_card(result.request, tz=tz, outcome="This request was already closed.")
            return turn.card_answer(closed)
        outcome = await self._tell_requester(result, turn.facts.caller)
        card = turn.card(decided_request_card(result.request, tz=tz, outcome=outcome))
        await self._update_channel_card(result.request, card)
        return factory.adaptive_card(card)  # type: ignore[arg-type]

    # --- delegated writes: the approver's sign-in -------------------------------------------------------------

    async def _ask_sign_in(self, turn: Turn, needed: SignInRequired, request_id: str, note: str) -> str:
        """The approver's sign-in card, privately, with a wait (kind `approval`) that approves again after it."""
        if self._sign_in is None or needed.user_id.lower() != turn.facts.caller.object_id.lower():
            raise needed  # not this presser's own sign-in: `Turns.button` says the sentence
        request = await self._desk.request(request_id)
        label = request.target_label if request is not None else "this user"
        return await self._sign_in.ask_in_turn(
            turn,
            kind=SignInWaitKind.APPROVAL,
            ref=approval_ref(request_id, note),
            what=f"your approval of the request for {label}",
        )

    async def resume_after_sign_in(self, turn: Turn, wait: SignInWait) -> None:
        """The approver signed in: their approval runs again as of now (every rule, their rights, the request
        still pending), with the note they wrote. The outcome goes where a button press would have put it: the
        channel card and the requester; the approver reads it in their personal chat."""
        request_id, note = read_approval_ref(wait.ref)
        try:
            result = await self._decisions.decide(turn.facts.caller, request_id, approve=True, note=note)
        except SignInRequired as needed:
            if self._sign_in is None or needed.user_id.lower() != turn.facts.caller.object_id.lower():
                raise
            await turn.reply_privately(await self._ask_sign_in(turn, needed, request_id, note))
            return
        except EntraRefused as refused:
            await turn.reply_privately(f"Your approval was not applied: {refused.user_message} {STILL_OPEN}")
            return
        except TapError as refusal:
            await turn.reply_privately(f"Your approval was not applied: {refusal.user_message}")
            return
        tz = self._presentation.default_timezone
        if isinstance(result, AlreadyClosed):
            await turn.reply_privately(
                f"The request for {result.request.target_label} was already closed (decided by someone else, or "
                "expired), so your approval was not applied."
            )
            return
        outcome = await self._tell_requester(result, turn.facts.caller)
        card = self._presentation.decorate(decided_request_card(result.request, tz=tz, outcome=outcome))
        await self._update_channel_card(result.request, card)
        await turn.reply_privately(f"You approved the request for {result.request.target_label}. {outcome}")

    async def _tell_requester(self, decided: Decided, approver: Caller) -> str:
        request = decided.request
        tz = requester_zone(request, self._presentation.default_timezone)
        who = request.decided_by_name or "an operator"
        note = f" Note: {request.decision_note}" if request.decision_note else ""
        if request.status is ApprovalStatus.DENIED:
            await self._message(request.requester, f"{who} denied your request for {request.target_label}.{note}")
            return "The requester was told."
        if request.kind is ApprovalKind.BULK:
            await self._message(request.requester, f"{who} approved your bulk run; it is starting.{note}")
            return await self._on_bulk_approved(request)
        if decided.issued is None:
            reason = decided.not_issued or "the rules no longer allow it"
            await self._message(
                request.requester,
                f"{who} approved your request for {request.target_label}, but no pass was issued: {reason}",
            )
            return f"No pass was issued: {reason}"
        # A pass the requester cannot be shown is deleted by whoever made it: the approver (delegated writes).
        undelivered = await self._passes.deliver(decided.issued, request.requester, tz, acting_as=approver)
        if undelivered is not None:
            return f"The requester could not be reached privately ({undelivered.reason})" + undelivered.outcome(
                tz, revoked=", so the pass was revoked at once."
            )
        await self._message(request.requester, f"{who} approved your request for {request.target_label}.{note}")
        return "The pass was sent privately to the requester."

    async def expire_overdue(self) -> int:
        """Closes requests nobody decided in time: their cards say so, and each requester is told."""
        expired = await self._desk.expire_overdue()
        tz = self._presentation.default_timezone
        for request in expired:
            card = self._presentation.decorate(decided_request_card(request, tz=tz))
            await self._update_channel_card(request, card)
            await self._message(
                request.requester,
                f"Your request for {request.target_label} expired: no operator decided in time. "
                "Ask again if it is still needed.",
            )
        return len(expired)

    async def _update_channel_card(self, request: ApprovalRequest, card: dict[str, Any]) -> None:
        stored = await self._desk.request(request.id)
        if stored is None or not (stored.card_activity_id and stored.card_conversation_id and stored.card_service_url):
            return
        chat = PrivateChat(stored.card_service_url, stored.card_conversation_id)
        try:
            await self._delivery.update(chat, stored.card_activity_id, card_message(card))
        except Exception:
            logger.warning("could not update the approval card of request %s", request.id, exc_info=True)

    async def _message(self, recipient: Recipient, text: str) -> None:
        try:
            await self._delivery.send_to(recipient, text_message(self._presentation.text_prefix + text))
        except DeliveryFailed as failure:
            logger.warning("could not tell %s about their request: %s", recipient.object_id, failure)


def approval_ref(request_id: str, note: str) -> str:
    """A sign-in wait's ref for an approval: the request and the approver's note (the note is theirs to give)."""
    return json.dumps({"request": request_id, "note": note}, separators=(",", ":"))


def read_approval_ref(ref: str) -> tuple[str, str]:
    try:
        value = json.loads(ref)
    except ValueError:
        value = None
    if (
        not isinstance(value, dict)
        or not isinstance(request_id := value.get("request"), str)
        or not isinstance(note := value.get("note", ""), str)
    ):
        raise TapError("I couldn't read which request your approval was for: press Approve on its card again.")
    return request_id, note


def requester_zone(request: ApprovalRequest, default: ZoneInfo) -> ZoneInfo:
    """The requester's Teams time zone, kept with the request; `default` when unknown."""
    if request.timezone:
        try:
            return ZoneInfo(request.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default
