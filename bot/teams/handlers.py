"""What the bot does with each typed command and pass button: domain → card → private delivery.

A command's whole path: bot/domain/commands/table.py (its row and parser) → this file (its handler, one shape:
`async (turn, command) -> None`, listed in `TapHandlers.command_handlers`) → bot/domain/service.py (the rules).
Messages reach the handlers through bot/teams/commands.py (`TypedCommands`, `CommandRunner`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from microsoft_agents.activity import Activity, ActivityTypes, AdaptiveCardInvokeResponse, InvokeResponse
from microsoft_agents.hosting.core import TurnContext, TurnState
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.commands import (
    ApprovalsHereCommand,
    AuditExportCommand,
    HelpCommand,
    IssueCommand,
    OnboardCommand,
    PolicyCommand,
    RequestsCommand,
    RevokeCommand,
    RevokeJobCommand,
    StatusCommand,
)
from bot.domain.errors import GraphUnavailable, SignInRequired, TapError
from bot.domain.model import Caller
from bot.domain.onboarding import OnboardingService
from bot.domain.ports import Clock, PassCards
from bot.domain.records import RedactionReason
from bot.domain.service import AwaitingApproval, Issued, NothingToRevoke, ReplaceNeeded, Revoked, TapService
from bot.domain.verification import VerificationNeeded
from bot.teams.activity import ConversationKind
from bot.teams.approval_flow import ApprovalAnnouncer
from bot.teams.audit_export import AuditExportFlow
from bot.teams.bulk_flow import BulkFlow
from bot.teams.commands import CommandHandlers
from bot.teams.delivery import INSTALL_ADVICE, PrivateDelivery, text_message
from bot.teams.pass_delivery import PassDelivery
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor
from bot.teams.turn import SENT_PRIVATELY, Turn
from cards import verbs
from cards.approvals import requests_card
from cards.buttons import BadButtonData, HandedOverButton, KeepButton, ReplaceButton
from cards.passes import replace_question_card, replace_settled_card, status_card
from cards.reference import help_card, policy_card

logger = logging.getLogger(__name__)

CARD_ACTION_INVOKE = "adaptiveCard/action"
SOMETHING_WENT_WRONG = (
    "Something went wrong on my side and nothing was changed. Try again; if it keeps happening, "
    "tell IT and quote reference {reference}."
)


class TapHandlers:
    """The typed commands' handlers and the pass buttons. Each gets its `Turn` from `Turns`, which answers refusals."""

    def __init__(
        self,
        *,
        service: TapService,
        onboarding: OnboardingService,
        desk: ApprovalDesk,
        announcer: ApprovalAnnouncer,
        passes: PassDelivery,
        bulk: BulkFlow,
        delivery: PrivateDelivery,
        redactor: CardRedactor,
        store: PassCards,
        clock: Clock,
        presentation: Presentation,
        audit_export: AuditExportFlow,
        verifications: StartsVerification | None = None,
    ) -> None:
        self._verifications = verifications
        self._audit_export = audit_export
        self._service = service
        self._onboarding = onboarding
        self._desk = desk
        self._announcer = announcer
        self._passes = passes
        self._bulk = bulk
        self._delivery = delivery
        self._redactor = redactor
        self._store = store
        self._clock = clock
        self._presentation = presentation

    # --- typed commands: one handler per command type, each `async (turn, command) -> None` ------------------

    def command_handlers(self) -> CommandHandlers:
        """The handlers of the command types these handlers own; the composition root adds the form
        (bot/teams/forms.py) and the security channel (bot/teams/alert_channel.py)."""
        return (
            CommandHandlers()
            .add(HelpCommand, self.on_help)
            .add(IssueCommand, self.on_issue)
            .add(OnboardCommand, self.on_onboard)
            .add(RevokeCommand, self.on_revoke)
            .add(RevokeJobCommand, self.on_revoke_job)
            .add(StatusCommand, self.on_status)
            .add(PolicyCommand, self.on_policy)
            .add(RequestsCommand, self.on_requests)
            .add(ApprovalsHereCommand, self.on_approvals_here)
            .add(AuditExportCommand, self._audit_export.on_command)
        )

    async def on_help(self, turn: Turn, command: HelpCommand) -> None:
        await turn.reply_here(card=help_card(unknown_word=command.unknown_word))

    async def on_issue(self, turn: Turn, command: IssueCommand) -> None:
        result = await self._service.issue(turn.caller, command.request)
        if isinstance(result, ReplaceNeeded):
            await turn.reply_privately(card=replace_question_card(result, tz=turn.timezone))
        else:
            await self._issued_or_awaiting(turn, result)

    async def on_onboard(self, turn: Turn, command: OnboardCommand) -> None:
        await self._issued_or_awaiting(turn, await self._onboarding.onboard(turn.caller, command.request))

    async def on_revoke(self, turn: Turn, command: RevokeCommand) -> None:
        outcome = await self._service.revoke(turn.caller, command.target, reason=command.reason)
        await turn.reply_privately(await self._revoke_sentence(turn.caller, outcome))

    async def on_revoke_job(self, turn: Turn, command: RevokeJobCommand) -> None:
        await self._bulk.on_revoke_job(turn, command.job_id, reason=command.reason)

    async def on_status(self, turn: Turn, command: StatusCommand) -> None:
        status = await self._service.status(turn.caller, command.target)
        await turn.reply_privately(card=status_card(status, tz=turn.timezone))

    async def on_policy(self, turn: Turn, _command: PolicyCommand) -> None:
        policy = await self._service.policy(turn.caller)
        names = await self._service.group_names(policy.target_group_ids)
        await turn.reply_privately(card=policy_card(policy, group_names=names))

    async def on_requests(self, turn: Turn, _command: RequestsCommand) -> None:
        operator = await self._service.is_operator(turn.caller)
        listed = await self._desk.requests_for(turn.caller, operator=operator)
        card = requests_card(listed, tz=turn.timezone, operator=operator, now=self._clock.now())
        await turn.reply_privately(card=card)

    async def on_approvals_here(self, turn: Turn, _command: ApprovalsHereCommand) -> None:
        await self._register_approvals_channel(turn)

    async def _revoke_sentence(self, caller: Caller, outcome: Revoked | NothingToRevoke) -> str:
        if isinstance(outcome, NothingToRevoke):
            return f"{outcome.user.label} holds no Temporary Access Pass; nothing to revoke."
        # Hides its pass card, or takes it off the bulk results page that showed it (and out of the export vault).
        await self._bulk.withdraw_passes([outcome.revoked.method_id], RedactionReason.REVOKED, caller.object_id)
        return f"Revoked the Temporary Access Pass of {outcome.user.label}. It no longer works."

    async def _issued_or_awaiting(self, turn: Turn, result: Issued | AwaitingApproval | VerificationNeeded) -> None:
        if isinstance(result, VerificationNeeded):
            await self._start_verification(turn, result)
        elif isinstance(result, AwaitingApproval):
            request = await self._desk.remember_timezone(result.request, turn.timezone.key)
            await turn.reply_privately(await self._announcer.announce(request))
        else:
            await self._deliver_pass(turn, result)

    async def _start_verification(self, turn: Turn, needed: VerificationNeeded) -> str:
        """A recovery pass (or a first pass, when configured) waits for a verification of the person: the tracking
        card goes privately to the caller, the question to whoever must confirm (bot/teams/verification_flow.py)."""
        if self._verifications is None:  # TapService only asks for one when verification is configured
            raise LookupError("a verification is needed but no verification flow is wired")
        return await self._verifications.start(turn, needed)

    async def _deliver_pass(self, turn: Turn, result: Issued) -> None:
        """The pass goes to the requester's 1:1 chat only; if that fails, the pass is revoked at once."""
        issued = result.issued
        facts = turn.facts
        undelivered = await self._passes.deliver(
            issued, facts.recipient, facts.timezone, context=turn.context, current=facts
        )
        if undelivered is not None:
            # Said where they acted: the 1:1 chat is what failed. A pass that could not be deleted is said to be live.
            await turn.reply_here(
                f"I couldn't deliver the pass for {issued.user.label} privately ({undelivered.reason})"
                f"{undelivered.outcome(turn.timezone)} {INSTALL_ADVICE}",
            )
            return
        if not turn.is_personal:
            await turn.reply_here(SENT_PRIVATELY)

    async def _register_approvals_channel(self, turn: Turn) -> None:
        facts = turn.facts
        if facts.kind is not ConversationKind.CHANNEL:
            await turn.reply_here(
                "Type /tap approvals here in a team channel: approval requests are posted to a channel."
            )
            return
        await self._service.require_operator(facts.caller)
        thread = facts.conversation_id.split(";messageid=")[0]  # the channel itself, not this one thread
        await self._desk.register_channel(facts.caller, facts.service_url, thread)
        await turn.reply_here(
            "This channel now receives approval requests. Operators decide them here with Approve or Deny; "
            "nobody may decide their own request.",
        )

    # --- card buttons (Action.Execute) --------------------------------------------------------------------

    async def on_handed_over(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = HandedOverButton.parse(data)
        caller = turn.facts.caller
        card = await self._store.pass_card(button.card_id)
        if card is None:
            return factory.message("This card is no longer known to me.")
        if card.requester_id.lower() != caller.object_id.lower():
            return factory.message("Only the person who requested this pass can hide it.")
        await self._redactor.claim(card, RedactionReason.HANDED_OVER, caller.object_id)
        settled = await self._store.pass_card(card.id) or card
        # The redactor's card is decorated already.
        return factory.adaptive_card(self._redactor.redacted_card(settled, RedactionReason.HANDED_OVER))  # type: ignore[arg-type]

    async def on_confirm_replace(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        """Whoever presses must be an operator allowed to issue for this user now: the service checks it all again."""
        try:
            button = ReplaceButton.parse(data)
        except BadButtonData as bad:
            return factory.message(f"{bad.sentence} Run the issue command again.")
        label = button.label
        try:
            result = await self._service.issue(turn.caller, button.request())
        except SignInRequired as needed:  # delegated writes: the replacement runs once the presser has signed in
            return turn.card_answer(
                replace_settled_card(label, await turn.ask_sign_in(needed, IssueCommand(button.request())))
            )
        except TapError as error:  # the question card is settled with the refusal, not left open
            return turn.card_answer(replace_settled_card(label, error.user_message))
        if isinstance(result, ReplaceNeeded):
            # Someone issued another pass meanwhile: ask again about the pass that is there now.
            return turn.card_answer(replace_question_card(result, tz=turn.timezone))
        if isinstance(result, AwaitingApproval):
            request = await self._desk.remember_timezone(result.request, turn.timezone.key)
            announcement = await self._announcer.announce(request)
            return turn.card_answer(replace_settled_card(request.target_label, announcement))
        if isinstance(result, VerificationNeeded):
            started = await self._start_verification(turn, result)
            return turn.card_answer(replace_settled_card(result.user.label, started))
        await self._deliver_pass(turn, result)
        return turn.card_answer(
            replace_settled_card(
                result.issued.user.label,
                "Replaced: the new pass is in the next message. The old one no longer works.",
            )
        )

    async def on_keep_existing(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        label = KeepButton.parse(data).label
        return turn.card_answer(replace_settled_card(label, "Kept the existing pass; nothing was changed."))

    async def on_unknown_action(self, context: TurnContext, _state: TurnState) -> None:
        """A card action no verb route should take (see `is_unhandled_card_action`): one sentence, nothing done."""
        response = factory.message("This button is not one I know, or its data is damaged, so I did nothing.")
        await context.send_activity(
            Activity(
                type=ActivityTypes.invoke_response,
                value=InvokeResponse(
                    status=200, body=response.model_dump(mode="json", by_alias=True, exclude_none=True)
                ),
            )
        )

    # --- install and errors -------------------------------------------------------------------------------

    async def on_members_added(self, turn: Turn) -> None:
        activity = turn.context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if not any(member.id == bot_id for member in activity.members_added or []):
            return
        await self._delivery.remember_personal_chat(turn.facts)
        if turn.is_personal:
            welcome = (
                "Hi, I'm tapbot. IT operators use me to issue and revoke Temporary Access Passes; passes only ever "
                "arrive in this personal chat. Type /tap help to see the commands."
            )
        else:
            welcome = (
                "Hi, I'm tapbot. @mention me here with a tap command (try: tap help). Passes and answers never "
                "appear in this chat: they go to your personal chat with me."
            )
        await turn.reply_here(welcome)

    async def on_turn_error(self, context: TurnContext, error: Exception) -> None:
        """Logs the failure with a reference and tells the user only that reference: no exception text."""
        reference = uuid.uuid4().hex[:8]
        logger.error("unhandled error in turn (reference %s): %s", reference, type(error).__name__, exc_info=error)
        if isinstance(error, GraphUnavailable):
            message = error.user_message
        else:
            message = SOMETHING_WENT_WRONG.format(reference=reference)
        try:
            await context.send_activity(text_message(self._presentation.text_prefix + message))
        except Exception:
            logger.warning("could not tell the user about error %s", reference, exc_info=True)


class StartsVerification(Protocol):
    async def start(self, turn: Turn, needed: VerificationNeeded) -> str: ...


def is_unhandled_card_action(context: TurnContext) -> bool:
    """A card action the verb routes would not take, or would answer with the SDK's 400/501: not an
    Action.Execute, a verb the bot never puts on a card, or data that is not an object."""
    activity = context.activity
    if activity.type != ActivityTypes.invoke or activity.name != CARD_ACTION_INVOKE:
        return False
    value = activity.value
    action = value.get("action") if isinstance(value, dict) else None
    if not isinstance(action, dict):
        return True
    data = action.get("data")
    return action.get("type") != "Action.Execute" or action.get("verb") not in verbs.ALL or not isinstance(data, dict)
