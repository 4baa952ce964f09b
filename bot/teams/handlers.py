"""What the bot does with each message and card button: parse → domain → card → private delivery.

A command's whole path: bot/domain/commands.py (parser) → this file (handler) → bot/domain/service.py (rules).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Protocol

from microsoft_agents.activity import Activity, ActivityTypes, AdaptiveCardInvokeResponse, InvokeResponse
from microsoft_agents.hosting.core import TurnContext, TurnState
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.approval_desk import ApprovalDesk
from bot.domain.commands import (
    ApprovalsHereCommand,
    AuditExportCommand,
    Command,
    CommandError,
    HelpCommand,
    IssueCommand,
    OnboardCommand,
    PolicyCommand,
    RequestsCommand,
    RevokeCommand,
    RevokeJobCommand,
    StatusCommand,
    parse_command,
)
from bot.domain.errors import GraphUnavailable, TapError
from bot.domain.model import Caller
from bot.domain.onboarding import OnboardingService
from bot.domain.ports import Clock, PassCards, ProcessedActivities
from bot.domain.records import RedactionReason
from bot.domain.service import AwaitingApproval, Issued, NothingToRevoke, ReplaceNeeded, Revoked, TapService
from bot.teams.activity import ConversationKind, TurnFacts, turn_facts
from bot.teams.approval_flow import ApprovalFlow
from bot.teams.audit_export import AuditExportFlow
from bot.teams.bulk_flow import BulkFlow, attached_file
from bot.teams.delivery import INSTALL_ADVICE, DeliveryFailed, PrivateDelivery, card_message, text_message
from bot.teams.pass_delivery import PassDelivery
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor
from cards import verbs
from cards.approvals import requests_card
from cards.buttons import BadButtonData, HandedOverButton, KeepButton, ReplaceButton
from cards.passes import (
    CardJson,
    replace_question_card,
    replace_settled_card,
    status_card,
)
from cards.reference import help_card, policy_card

logger = logging.getLogger(__name__)

DEDUPE_WINDOW = timedelta(days=1)
CARD_ACTION_INVOKE = "adaptiveCard/action"
SENT_PRIVATELY = "Sent to you privately: look in your personal chat with me."
SOMETHING_WENT_WRONG = (
    "Something went wrong on my side and nothing was changed. Try again; if it keeps happening, "
    "tell IT and quote reference {reference}."
)


class HandlerStore(PassCards, ProcessedActivities, Protocol):
    """What the handlers read directly: pass cards (hand-over) and activities already handled (retries)."""


class TapHandlers:
    def __init__(
        self,
        *,
        service: TapService,
        onboarding: OnboardingService,
        desk: ApprovalDesk,
        approvals: ApprovalFlow,
        passes: PassDelivery,
        bulk: BulkFlow,
        delivery: PrivateDelivery,
        redactor: CardRedactor,
        store: HandlerStore,
        clock: Clock,
        presentation: Presentation,
        audit_export: AuditExportFlow,
    ) -> None:
        self._audit_export = audit_export
        self._service = service
        self._onboarding = onboarding
        self._desk = desk
        self._approvals = approvals
        self._passes = passes
        self._bulk = bulk
        self._delivery = delivery
        self._redactor = redactor
        self._store = store
        self._clock = clock
        self._presentation = presentation

    # --- messages -----------------------------------------------------------------------------------------

    async def on_message(self, context: TurnContext, _state: TurnState) -> None:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        if not await self._first_delivery(context):
            logger.info("ignoring a repeated delivery of activity %s", context.activity.id)
            return
        await self._delivery.remember_personal_chat(facts)
        attached = attached_file(context.activity)
        if attached is not None:
            await self._bulk.on_file(context, facts, attached)
            return
        try:
            command = parse_command(
                facts.text,
                now=self._clock.now(),
                tz=facts.timezone,
                default_start_hour=self._presentation.default_start_hour,
            )
        except CommandError as error:
            await self._reply_here(context, f"{error.reason} Example: {error.example}")
            return
        try:
            await self._run(context, facts, command)
        except TapError as error:
            await self._reply_privately(context, facts, text=error.user_message)

    async def _run(self, context: TurnContext, facts: TurnFacts, command: Command) -> None:
        caller = facts.caller_with_address
        if isinstance(command, HelpCommand):
            await self._reply_here(context, card=help_card(unknown_word=command.unknown_word))
        elif isinstance(command, IssueCommand):
            result = await self._service.issue(caller, command.request)
            if isinstance(result, ReplaceNeeded):
                question = replace_question_card(result, tz=facts.timezone)
                await self._reply_privately(context, facts, card=question)
            else:
                await self._issued_or_awaiting(context, facts, result)
        elif isinstance(command, OnboardCommand):
            await self._issued_or_awaiting(context, facts, await self._onboarding.onboard(caller, command.request))
        elif isinstance(command, ApprovalsHereCommand):
            await self._register_approvals_channel(context, facts)
        elif isinstance(command, RevokeJobCommand):
            await self._bulk.on_revoke_job(context, facts, command.job_id)
        elif isinstance(command, RequestsCommand):
            operator = await self._service.is_operator(caller)
            listed = await self._desk.requests_for(caller, operator=operator)
            card = requests_card(listed, tz=facts.timezone, operator=operator, now=self._clock.now())
            await self._reply_privately(context, facts, card=card)
        elif isinstance(command, RevokeCommand):
            outcome = await self._service.revoke(caller, command.target)
            await self._reply_privately(context, facts, text=await self._revoke_sentence(caller, outcome))
        elif isinstance(command, StatusCommand):
            status = await self._service.status(caller, command.target)
            await self._reply_privately(context, facts, card=status_card(status, tz=facts.timezone))
        elif isinstance(command, AuditExportCommand):
            await self._audit_export.on_command(context, facts, command)
        elif isinstance(command, PolicyCommand):
            policy = await self._service.policy(caller)
            names = await self._service.group_names(policy.target_group_ids)
            await self._reply_privately(context, facts, card=policy_card(policy, group_names=names))

    async def _revoke_sentence(self, caller: Caller, outcome: Revoked | NothingToRevoke) -> str:
        if isinstance(outcome, NothingToRevoke):
            return f"{outcome.user.label} holds no Temporary Access Pass; nothing to revoke."
        # Hides its pass card, or takes it off the bulk results page that showed it (and out of the export vault).
        await self._bulk.withdraw_passes([outcome.revoked.method_id], RedactionReason.REVOKED, caller.object_id)
        return f"Revoked the Temporary Access Pass of {outcome.user.label}. It no longer works."

    async def _issued_or_awaiting(
        self, context: TurnContext, facts: TurnFacts, result: Issued | AwaitingApproval
    ) -> None:
        if isinstance(result, AwaitingApproval):
            request = await self._desk.remember_timezone(result.request, facts.timezone.key)
            await self._reply_privately(context, facts, text=await self._approvals.announce(request))
        else:
            await self._deliver_pass(context, facts, result)

    async def _deliver_pass(self, context: TurnContext, facts: TurnFacts, result: Issued) -> None:
        """The pass goes to the requester's 1:1 chat only; if that fails, the pass is revoked at once."""
        issued = result.issued
        undelivered = await self._passes.deliver(
            issued, facts.recipient, facts.timezone, context=context, current=facts
        )
        if undelivered is not None:
            await self._reply_here(
                context,
                f"I couldn't deliver the pass for {issued.user.label} privately ({undelivered.reason}), so I "
                f"revoked it right away and nobody can use it. {INSTALL_ADVICE}",
            )
            return
        if not facts.is_personal:
            await self._reply_here(context, SENT_PRIVATELY)

    async def _register_approvals_channel(self, context: TurnContext, facts: TurnFacts) -> None:
        if facts.kind is not ConversationKind.CHANNEL:
            await self._reply_here(
                context, "Type /tap approvals here in a team channel: approval requests are posted to a channel."
            )
            return
        await self._service.require_operator(facts.caller)
        thread = facts.conversation_id.split(";messageid=")[0]  # the channel itself, not this one thread
        await self._desk.register_channel(facts.caller, facts.service_url, thread)
        await self._reply_here(
            context,
            "This channel now receives approval requests. Operators decide them here with Approve or Deny; "
            "nobody may decide their own request.",
        )

    async def _first_delivery(self, context: TurnContext) -> bool:
        """Teams retries a delivery it believes failed, with the same activity id: act on it only once."""
        activity = context.activity
        if not activity.id:
            return True
        conversation = activity.conversation.id if activity.conversation else ""
        return await self._store.first_delivery(f"{conversation}|{activity.id}", self._clock.now(), DEDUPE_WINDOW)

    # --- card buttons (Action.Execute) --------------------------------------------------------------------

    async def on_handed_over(self, context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        try:
            button = HandedOverButton.parse(data)
        except BadButtonData as bad:
            return factory.message(bad.sentence)
        card = await self._store.pass_card(button.card_id)
        if card is None:
            return factory.message("This card is no longer known to me.")
        if card.requester_id.lower() != facts.caller.object_id.lower():
            return factory.message("Only the person who requested this pass can hide it.")
        await self._redactor.claim(card, RedactionReason.HANDED_OVER, facts.caller.object_id)
        settled = await self._store.pass_card(card.id) or card
        return factory.adaptive_card(self._redactor.redacted_card(settled, RedactionReason.HANDED_OVER))  # type: ignore[arg-type]

    async def on_confirm_replace(
        self, context: TurnContext, _state: TurnState, data: object
    ) -> AdaptiveCardInvokeResponse:
        """Whoever presses must be an operator allowed to issue for this user now: the service checks it all again."""
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        try:
            button = ReplaceButton.parse(data)
        except BadButtonData as bad:
            return factory.message(f"{bad.sentence} Run the issue command again.")
        label = button.label
        try:
            result = await self._service.issue(facts.caller_with_address, button.request())
        except TapError as error:
            return self._settled(label, error.user_message)
        if isinstance(result, ReplaceNeeded):
            # Someone issued another pass meanwhile: ask again about the pass that is there now.
            card = self._presentation.decorate(replace_question_card(result, tz=facts.timezone))
            return factory.adaptive_card(card)  # type: ignore[arg-type]
        if isinstance(result, AwaitingApproval):
            request = await self._desk.remember_timezone(result.request, facts.timezone.key)
            announcement = await self._approvals.announce(request)
            return self._settled(request.target_label, announcement)
        await self._deliver_pass(context, facts, result)
        return self._settled(
            result.issued.user.label,
            "Replaced: the new pass is in the next message. The old one no longer works.",
        )

    async def on_keep_existing(
        self, context: TurnContext, _state: TurnState, data: object
    ) -> AdaptiveCardInvokeResponse:
        try:
            label = KeepButton.parse(data).label
        except BadButtonData as bad:
            return factory.message(bad.sentence)
        return self._settled(label, "Kept the existing pass; nothing was changed.")

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

    def _settled(self, target: str, outcome: str) -> AdaptiveCardInvokeResponse:
        card = self._presentation.decorate(replace_settled_card(target, outcome))
        return factory.adaptive_card(card)  # type: ignore[arg-type]

    # --- install and errors -------------------------------------------------------------------------------

    async def on_members_added(self, context: TurnContext, _state: TurnState) -> None:
        activity = context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if not any(member.id == bot_id for member in activity.members_added or []):
            return
        facts = turn_facts(activity, self._presentation.default_timezone)
        await self._delivery.remember_personal_chat(facts)
        if facts.is_personal:
            welcome = (
                "Hi, I'm tapbot. IT operators use me to issue and revoke Temporary Access Passes; passes only ever "
                "arrive in this personal chat. Type /tap help to see the commands."
            )
        else:
            welcome = (
                "Hi, I'm tapbot. @mention me here with a tap command (try: tap help). Passes and answers never "
                "appear in this chat: they go to your personal chat with me."
            )
        await self._reply_here(context, welcome)

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

    # --- replies ------------------------------------------------------------------------------------------

    async def _reply_here(self, context: TurnContext, text: str | None = None, *, card: CardJson | None = None) -> None:
        if card is not None:
            await context.send_activity(card_message(self._presentation.decorate(card)))
        if text is not None:
            await context.send_activity(text_message(self._presentation.text_prefix + text))

    async def _reply_privately(
        self, context: TurnContext, facts: TurnFacts, *, text: str | None = None, card: CardJson | None = None
    ) -> None:
        """Answers in the 1:1 chat; a channel or group chat only learns that an answer was sent privately."""
        if facts.is_personal:
            await self._reply_here(context, text, card=card)
            return
        activity = (
            card_message(self._presentation.decorate(card))
            if card is not None
            else text_message(self._presentation.text_prefix + (text or ""))
        )
        try:
            await self._delivery.send_privately(context, facts, activity)
        except DeliveryFailed as failure:
            await self._reply_here(context, f"I couldn't answer you privately ({failure}). {INSTALL_ADVICE}")
            return
        await self._reply_here(context, SENT_PRIVATELY)


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
