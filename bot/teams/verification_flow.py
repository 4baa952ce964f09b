"""Verification of the person in Teams (issue 12): the technician's tracking card, the manager's private question,
their buttons, the pass once confirmed, and the verifications nobody answered in time.

A request that needs a verification (`VerificationNeeded`) starts one here: the technician gets one private card that
tracks it (what is pending, with whom, until when, Cancel), updated in place as it moves on; the manager (or the
fallback approvers) gets "Is this really <user>?" privately in their 1:1 chat. Only someone the verification asked
may answer, identified by the activity and re-checked at press time (bot/domain/verification.py). On "Confirm" the
request is replayed through TapService.issue with the verification's id, so every rule is checked again at the
write and the verification is consumed there; the pass goes to the technician's 1:1 chat as any pass does (revoked
at once if it cannot be shown). "This is not them" blocks the request, tells the technician and raises an alert.

Every state lives in SQL, so a restart (or another replica) carries on where this one stopped; the housekeeping
round expires what nobody answered and updates both cards.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_agents.activity import AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core.app.adaptive_card import factory
from microsoft_teams.cards.core import CardElement

from bot.domain.errors import Refused, Rule, SignInRequired, TapError
from bot.domain.model import Caller, Recipient
from bot.domain.onboarding import OnboardingService
from bot.domain.ports import Clock, PersonalConversations
from bot.domain.records import SignInWait, SignInWaitKind
from bot.domain.service import AwaitingApproval, Issued, ReplaceNeeded, TapService
from bot.domain.verification import (
    Attesters,
    Verification,
    VerificationKind,
    VerificationMethod,
    VerificationNeeded,
    VerificationPrompt,
    VerificationService,
    VerificationState,
)
from bot.teams.approval_flow import ApprovalAnnouncer, AsksSignIn
from bot.teams.delivery import DeliveryFailed, PrivateChat, PrivateDelivery, card_message, text_message
from bot.teams.pass_delivery import PassDelivery
from bot.teams.presentation import Presentation
from bot.teams.turn import SENT_PRIVATELY, Turn
from cards.buttons import VerificationButton
from cards.passes import CardJson, replace_question_card
from cards.verification import attestation_card, attestation_settled_card, tracking_card

logger = logging.getLogger(__name__)

PASS_SENT = "Confirmed: the pass is in the next message."


class ExternalMethod(Protocol):
    """A verification method that runs outside Teams (Verified ID): it starts its own request for a pending
    verification (raising TapError with a sentence when it cannot), and adds what the tracking card shows while the
    verification is pending (a link, a QR code). Its outcome reaches `VerificationFlow.settled` through
    `VerificationService.complete` / `.fail`."""

    async def begin(self, verification: Verification) -> None: ...

    async def card_extra(self, verification: Verification) -> Sequence[CardElement]: ...


class VerificationFlow:
    def __init__(
        self,
        *,
        service: VerificationService,
        tap: TapService,
        onboarding: OnboardingService,
        delivery: PrivateDelivery,
        passes: PassDelivery,
        announcer: ApprovalAnnouncer,
        presentation: Presentation,
        clock: Clock,
        conversations: PersonalConversations,
        sign_in: AsksSignIn | None = None,
    ) -> None:
        self._conversations = conversations
        # Delegated writes: the confirmed request is written with the technician's own rights; without their
        # sign-in they get the sign-in card and the request runs once they have signed in.
        self._sign_in = sign_in
        if sign_in is not None:
            sign_in.resumes.register(SignInWaitKind.VERIFICATION, self.resume_after_sign_in)
        self._service = service
        self._tap = tap
        self._onboarding = onboarding
        self._delivery = delivery
        self._passes = passes
        self._announcer = announcer
        self._presentation = presentation
        self._clock = clock
        self._external: dict[VerificationMethod, ExternalMethod] = {}

    @property
    def service(self) -> VerificationService:
        return self._service

    def register(self, method: VerificationMethod, external: ExternalMethod) -> None:
        """Adds a method that runs outside Teams (the Verified ID flow registers itself here)."""
        self._external[method] = external

    # --- starting -----------------------------------------------------------------------------------------

    async def start(self, turn: Turn, needed: VerificationNeeded) -> str:
        """Starts the verification the request needs: the tracking card goes privately to the technician and the
        question to whoever must answer. Returns a sentence saying so (for a button's settled card)."""
        caller = turn.caller
        method, attesters = await self._choose(caller, needed)
        verification = await self._service.start(
            caller, needed, method, timezone=turn.timezone.key, attesters=attesters
        )
        external = self._external.get(method)
        if external is not None:
            try:
                await external.begin(verification)
            except TapError as error:
                await self._service.fail(verification.id, error.user_message, alert=False)
                raise
            verification = await self._service.get(verification.id) or verification
        card = await self._tracking(verification, tz=turn.timezone)
        try:
            chat, activity_id = await self._delivery.send_to(
                turn.facts.recipient, card_message(card), context=turn.context, current=turn.facts
            )
        except DeliveryFailed as failure:
            await self._service.cancel(caller, verification.id)  # nobody could follow it
            await turn.reply_here(f"I couldn't reach you privately ({failure}), so I started nothing.")
            return "Nothing was started: I couldn't reach you privately."
        if activity_id:
            await self._service.remember_card(verification.id, chat.service_url, chat.conversation_id, activity_id)
        if not turn.is_personal:
            await turn.reply_here(SENT_PRIVATELY)
        if method is VerificationMethod.MANAGER and attesters is not None:
            await self._ask(verification, attesters, turn)
        who = verification.attester_label or "the caller's verification"
        return f"{needed.why} I asked {who} to confirm; follow it on the verification card."

    async def _choose(self, caller: Caller, needed: VerificationNeeded) -> tuple[VerificationMethod, Attesters | None]:
        """Manager attestation when accepted and someone can answer; else an external method (Verified ID) when
        accepted and available; else the manager's refusal (it says why nobody can confirm)."""
        methods = self._service.rules.methods
        refusal: Refused | None = None
        if VerificationMethod.MANAGER in methods:
            try:
                chosen = await self._service.choose_attesters(caller, needed.user, reason=needed.request.reason)
                return VerificationMethod.MANAGER, chosen
            except Refused as refused:
                refusal = refused
        for method in methods:
            if method is not VerificationMethod.MANAGER and method in self._external:
                return method, None
        if refusal is not None:
            raise refusal
        raise Refused(
            Rule.VERIFICATION_REQUIRED,
            f"{needed.why} No verification method is available here, so no pass was issued. Ask IT.",
        )

    async def _ask(self, verification: Verification, attesters: Attesters, turn: Turn) -> None:
        """The question, privately to each person asked; if it reaches nobody, the verification fails at once."""
        reached = 0
        for person in attesters.people:
            # Their own 1:1 chat when they have written to the bot (its service URL came with their authenticated
            # activity); else Teams opens one from the Entra object id, where the app is installed for them.
            known = await self._conversations.personal_conversation(person.object_id)
            recipient = Recipient(
                object_id=person.object_id,
                tenant_id=turn.facts.caller.tenant_id,
                name=person.display_name,
                channel_account_id=person.object_id,
                service_url=known.service_url if known else turn.facts.service_url,
                bot_id=turn.facts.bot_channel_id,
            )
            card = self._presentation.decorate(
                attestation_card(verification, tz=self._presentation.default_timezone, now=self._clock.now())
            )
            try:
                chat, activity_id = await self._delivery.send_to(recipient, card_message(card))
            except DeliveryFailed as failure:
                logger.warning(
                    "could not ask %s to confirm verification %s: %s", person.object_id, verification.id, failure
                )
                continue
            reached += 1
            await self._service.remember_prompt(
                VerificationPrompt(
                    verification.id, person.object_id.lower(), chat.service_url, chat.conversation_id, activity_id
                )
            )
        if reached == 0:
            failed = await self._service.fail(
                verification.id,
                f"I couldn't reach {attesters.label} in Teams (the app may not be installed for them)",
                alert=False,
            )
            if failed is not None:
                await self.settled(failed)

    # --- buttons ------------------------------------------------------------------------------------------

    async def on_confirm(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        return await self._answer(turn, data, confirm=True)

    async def on_not_them(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        return await self._answer(turn, data, confirm=False)

    async def _answer(self, turn: Turn, data: object, *, confirm: bool) -> AdaptiveCardInvokeResponse:
        """Only someone the verification asked may answer (a refusal is the presser's one line: `Turns.button`)."""
        button = VerificationButton.parse(data)
        presser = turn.facts.caller
        verification, changed = await self._service.attest(presser, button.verification_id, confirm=confirm)
        if changed:
            await self.settled(verification, answered_by=presser.object_id)
        if verification.is_pending:
            return factory.message("This question is still open.")
        return turn.card_answer(attestation_settled_card(verification, tz=turn.timezone, viewer_id=presser.object_id))

    async def on_cancel(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = VerificationButton.parse(data)
        verification, changed = await self._service.cancel(turn.facts.caller, button.verification_id)
        if changed:
            await self._update_prompts(verification)
        card = await self._tracking(verification, tz=turn.timezone)
        return factory.adaptive_card(card)  # type: ignore[arg-type]

    # --- when a verification settles ----------------------------------------------------------------------

    async def settled(self, verification: Verification, *, answered_by: str | None = None) -> None:
        """After a verification changed state (an answer, Verified ID's callback, expiry): a confirmed one issues
        the pass; both cards are updated in place and the technician is told what happened."""
        outcome = ""
        if verification.state is VerificationState.CONFIRMED:
            outcome = await self._issue(verification)
            verification = await self._service.get(verification.id) or verification
        elif verification.state is VerificationState.REFUSED:
            await self._tell(
                verification.requester,
                f"{verification.settled_by or 'The person asked'} said the caller is NOT {verification.target_label}. "
                "The request is blocked and no pass was issued; the security team was alerted.",
            )
        elif verification.state is VerificationState.FAILED:
            await self._tell(
                verification.requester,
                f"The verification of {verification.target_label} failed ({verification.detail}); no pass was issued.",
            )
        elif verification.state is VerificationState.EXPIRED:
            await self._tell(
                verification.requester,
                f"The verification of {verification.target_label} expired, so no pass was issued. Start again if "
                "the caller still needs one.",
            )
        await self._update_tracking(verification, outcome)
        await self._update_prompts(verification, except_for=answered_by)

    async def expire_overdue(self) -> int:
        """Housekeeping: verifications nobody answered (or confirmations nobody used) in time; both cards say so."""
        expired = await self._service.expire_overdue()
        for verification in expired:
            await self.settled(verification)
        return len(expired)

    async def _issue(self, verification: Verification) -> str:
        """Replays the request with the verification: every rule again at the write, the verification consumed
        there, the pass delivered to the technician's 1:1 chat (revoked at once if it cannot be shown)."""
        requester = verification.requester_caller
        tz = self._zone(verification)
        try:
            if verification.kind is VerificationKind.ONBOARD:
                result = await self._onboarding.onboard(requester, verification.onboard_request())
            else:
                result = await self._tap.issue(requester, verification.pass_request())
        except SignInRequired as needed:
            return await self._ask_sign_in(verification, needed)
        except TapError as error:
            await self._tell(
                verification.requester,
                f"{verification.target_label} was verified, but no pass was issued: {error.user_message}",
            )
            return f"No pass was issued: {error.user_message}"
        if isinstance(result, Issued):
            undelivered = await self._passes.deliver(result.issued, verification.requester, tz)
            if undelivered is not None:
                return f"The pass could not be shown to you privately ({undelivered.reason})" + undelivered.outcome(
                    tz, revoked=", so it was revoked at once."
                )
            return PASS_SENT
        if isinstance(result, AwaitingApproval):
            request = result.request
            sentence = await self._announcer.announce(request)
            await self._tell(verification.requester, sentence)
            return sentence
        if isinstance(result, ReplaceNeeded):
            # Someone issued a pass meanwhile: the technician decides about that pass (the button keeps the
            # verification, which stays confirmed until used or expired).
            card = self._presentation.decorate(replace_question_card(result, tz=tz))
            try:
                await self._delivery.send_to(verification.requester, card_message(card))
            except DeliveryFailed as failure:
                logger.warning("could not ask about replacing a pass: %s", failure)
            return f"{verification.target_label} received another pass meanwhile: answer the question below."
        return "A verification is needed again; start again."

    # --- delegated writes: the technician's sign-in ---------------------------------------------------------

    async def _ask_sign_in(self, verification: Verification, needed: SignInRequired) -> str:
        """The write needs the technician's own token and the token service has none: nothing was written, the
        verification stays confirmed (the write released it), and the technician, who may be anywhere but in this
        turn (the manager's), gets the sign-in card in their 1:1 chat with a wait that runs the request again."""
        label = verification.target_label
        if self._sign_in is None or needed.user_id.lower() != verification.requester.object_id.lower():
            await self._tell(verification.requester, f"{label} was verified, but no pass was issued: {needed}")
            return f"No pass was issued: {needed.user_message}"
        sent = await self._sign_in.ask_privately(
            verification.requester,
            kind=SignInWaitKind.VERIFICATION,
            ref=verification.id,
            what=f"the verified pass for {label}",
        )
        if not sent:
            return (
                f"{label} was verified, but passes are written with your own Entra rights and I couldn't send you a "
                "sign-in card. Sign in from your personal chat with me; the verified request then runs."
            )
        return (
            f"{label} was verified. Sign in to tapbot to issue the pass (passes are written with your own Entra "
            "rights): the sign-in card is in our personal chat, and the pass follows once you have signed in."
        )

    async def resume_after_sign_in(self, turn: Turn, wait: SignInWait) -> None:
        """The technician signed in: their verified request runs as if just confirmed (every rule again, the
        verification consumed by the write), and the tracking card says how it ended."""
        verification = await self._service.get(wait.ref)
        if verification is None or verification.requester.object_id.lower() != turn.facts.caller.object_id.lower():
            await turn.reply_privately("You're signed in. The verification that waited for it is gone; start again.")
            return
        if verification.state is not VerificationState.CONFIRMED:
            await turn.reply_privately(
                f"You're signed in, but the verification of {verification.target_label} is {verification.state.value}"
                " now, so no pass was issued."
            )
            return
        await turn.reply_privately(f"You're signed in: issuing the verified pass for {verification.target_label}.")
        outcome = await self._issue(verification)
        verification = await self._service.get(verification.id) or verification
        await self._update_tracking(verification, outcome)

    # --- cards --------------------------------------------------------------------------------------------

    async def _tracking(self, verification: Verification, *, tz: ZoneInfo, outcome: str = "") -> CardJson:
        extra: Sequence[CardElement] = ()
        external = self._external.get(verification.method)
        if external is not None and verification.is_pending:
            try:
                extra = await external.card_extra(verification)
            except Exception:
                logger.warning("could not render the extra of verification %s", verification.id, exc_info=True)
        return self._presentation.decorate(tracking_card(verification, tz=tz, outcome=outcome, extra=extra))

    async def _update_tracking(self, verification: Verification, outcome: str = "") -> None:
        if not (verification.card_service_url and verification.card_conversation_id and verification.card_activity_id):
            return
        card = await self._tracking(verification, tz=self._zone(verification), outcome=outcome)
        chat = PrivateChat(verification.card_service_url, verification.card_conversation_id)
        try:
            await self._delivery.update(chat, verification.card_activity_id, card_message(card))
        except Exception:
            logger.warning("could not update the tracking card of verification %s", verification.id, exc_info=True)

    async def _update_prompts(self, verification: Verification, *, except_for: str | None = None) -> None:
        for prompt in await self._service.prompts(verification.id):
            if prompt.activity_id is None or (except_for and prompt.attester_id == except_for.lower()):
                continue
            card = self._presentation.decorate(
                attestation_settled_card(verification, tz=self._presentation.default_timezone)
            )
            try:
                await self._delivery.update(
                    PrivateChat(prompt.service_url, prompt.conversation_id), prompt.activity_id, card_message(card)
                )
            except Exception:
                logger.warning("could not update a question card of verification %s", verification.id, exc_info=True)

    async def _tell(self, recipient: Recipient, text: str) -> None:
        try:
            await self._delivery.send_to(recipient, text_message(self._presentation.text_prefix + text))
        except DeliveryFailed as failure:
            logger.warning("could not tell %s about their verification: %s", recipient.object_id, failure)

    def _zone(self, verification: Verification) -> ZoneInfo:
        if verification.timezone:
            try:
                return ZoneInfo(verification.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self._presentation.default_timezone


async def verification_off(_turn: Turn, _data: object) -> AdaptiveCardInvokeResponse:
    """A verification button while TAPBOT_VERIFICATION is off (a card from before): a sentence, nothing done."""
    return factory.message("Verification of the person is turned off here, so there is nothing to answer.")
