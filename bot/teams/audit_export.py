"""`/tap audit export [first day] [last day]` in Teams: the audit log as a CSV file, offered privately.

The command is checked and the file built (bot/domain/audit_export.py), then offered through Teams' file-consent
flow (bot/teams/file_offer.py) in the operator's personal chat. Nothing is kept in memory between offer and
answer: the offer's context names the days and a cutoff moment, and on accept the file is built again from the
append-only log — identical, and on whichever replica receives the answer. The context names the operator it
was offered to: only that person, in their personal chat, can accept it, and their right is checked again then.
Every answer is audited (sent, declined, failed, refused).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext, TurnState

from bot.domain.audit import MAX_EXPORT_DAYS, AuditPeriod
from bot.domain.audit_export import AuditExportService, AuditFile
from bot.domain.commands import AuditExportCommand
from bot.domain.errors import TapError
from bot.domain.model import Caller
from bot.domain.ports import Clock, FileTransfers
from bot.teams.activity import TurnFacts, turn_facts
from bot.teams.delivery import INSTALL_ADVICE, DeliveryFailed, PrivateDelivery, text_message
from bot.teams.file_offer import (
    OFFER_KEY,
    ConsentAnswer,
    acknowledge,
    consent_answer,
    is_personal,
    offer_activity,
    upload_and_show,
)
from bot.teams.presentation import Presentation

logger = logging.getLogger(__name__)

AUDIT_EXPORT_OFFER = "auditExport"
SENT_PRIVATELY = "Sent to you privately: look in your personal chat with me."


class AuditExportFlow:
    def __init__(
        self,
        *,
        exports: AuditExportService,
        transfers: FileTransfers,
        delivery: PrivateDelivery,
        presentation: Presentation,
        clock: Clock,
    ) -> None:
        self._exports = exports
        self._transfers = transfers
        self._delivery = delivery
        self._presentation = presentation
        self._clock = clock

    async def on_command(self, context: TurnContext, facts: TurnFacts, command: AuditExportCommand) -> None:
        """Checks the caller, builds the file, offers it privately. A TapError (refusal) reaches the handler."""
        caller = facts.caller_with_address
        file = await self._exports.prepare(caller, command.period)
        note = self._text(
            f"The audit log of {file.period.label}: {file.events} events. Accept the file to receive it; "
            "it holds user names and ids, never a pass."
        )
        offer = offer_activity(
            name=file.name,
            description=f"tapbot audit log, {file.period.label}, {file.events} events.",
            size=len(file.data),
            context=_offer_context(file, caller.object_id),
        )
        if facts.is_personal:
            await context.send_activity(note)
            await context.send_activity(offer)
        else:
            try:
                await self._delivery.send_privately(context, facts, note)
                await self._delivery.send_privately(context, facts, offer)
            except DeliveryFailed as failure:
                await context.send_activity(
                    self._text(f"I couldn't answer you privately ({failure}). {INSTALL_ADVICE}")
                )
                return
            await context.send_activity(self._text(SENT_PRIVATELY))
        await self._exports.offered(caller, file)

    async def on_file_consent(self, context: TurnContext, _state: TurnState) -> None:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        caller = facts.caller_with_address
        answer = consent_answer(context.activity)
        offer = _read_offer(answer.context, self._clock.now())
        offered_to = answer.context.get("offeredTo")
        if offer is None:
            await self._exports.refused(caller, "damaged offer")
            text = "This file offer is damaged; type /tap audit export again."
        elif not _offered_to(offered_to, caller) or not is_personal(context.activity):
            await self._exports.refused(caller, f"offered to someone else: {offer[0].label}")
            text = "This file was offered to someone else, or not in our personal chat, so I sent nothing."
        elif not answer.accepted:
            await self._exports.declined(caller, offer[0].label)
            text = "You declined the file; nothing was sent."
        else:
            text = await self._send(context, caller, offer, answer)
        await context.send_activity(self._text(text))
        await acknowledge(context)

    async def _send(
        self, context: TurnContext, caller: Caller, offer: tuple[AuditPeriod, datetime], answer: ConsentAnswer
    ) -> str:
        period, cutoff = offer
        try:
            file = await self._exports.prepare(caller, period, cutoff=cutoff)
        except TapError as error:
            return error.user_message
        try:
            await upload_and_show(context, self._transfers, answer, file.data, default_name=file.name)
        except TapError as error:
            await self._exports.failed(caller, file, type(error).__name__)
            return error.user_message
        await self._exports.sent(caller, file)
        return f"Here is the audit log of {period.label}: {file.events} events."

    def _text(self, text: str) -> Activity:
        return text_message(self._presentation.text_prefix + text)


def _offered_to(offered_to: object, caller: Caller) -> bool:
    return isinstance(offered_to, str) and bool(caller.object_id) and offered_to.lower() == caller.object_id.lower()


def _offer_context(file: AuditFile, offered_to: str) -> dict[str, Any]:
    return {
        OFFER_KEY: AUDIT_EXPORT_OFFER,
        "offeredTo": offered_to,
        "firstDay": file.period.first_day.isoformat(),
        "lastDay": file.period.last_day.isoformat(),
        "timezone": file.period.timezone.key,
        "cutoff": file.cutoff.astimezone(UTC).isoformat(),
    }


def _read_offer(context: dict[str, Any], now: datetime) -> tuple[AuditPeriod, datetime] | None:
    """The offer's days and cutoff, validated: the context came back through the client."""
    try:
        first = date.fromisoformat(str(context["firstDay"]))
        last = date.fromisoformat(str(context["lastDay"]))
        zone = ZoneInfo(str(context["timezone"]))
        cutoff = datetime.fromisoformat(str(context["cutoff"]))
    except (KeyError, ValueError, TypeError, ZoneInfoNotFoundError):
        return None
    if cutoff.tzinfo is None or not first <= last or (last - first).days >= MAX_EXPORT_DAYS:
        return None
    return AuditPeriod(first, last, zone), min(cutoff, now)
