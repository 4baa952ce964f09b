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

from microsoft_agents.hosting.core import TurnContext

from bot.domain.audit import MAX_EXPORT_DAYS, AuditPeriod
from bot.domain.audit_export import AuditExportService, AuditFile
from bot.domain.commands import AuditExportCommand
from bot.domain.errors import TapError
from bot.domain.model import Caller
from bot.domain.ports import Clock, FileTransfers
from bot.teams.file_offer import (
    OFFER_KEY,
    ConsentAnswer,
    acknowledge,
    consent_answer,
    is_personal,
    offer_activity,
    upload_and_show,
)
from bot.teams.turn import Turn

logger = logging.getLogger(__name__)

AUDIT_EXPORT_OFFER = "auditExport"


class AuditExportFlow:
    def __init__(
        self,
        *,
        exports: AuditExportService,
        transfers: FileTransfers,
        clock: Clock,
    ) -> None:
        self._exports = exports
        self._transfers = transfers
        self._clock = clock

    async def on_command(self, turn: Turn, command: AuditExportCommand) -> None:
        """Checks the caller, builds the file, offers it privately. A refusal (TapError) is answered by `Turns`."""
        caller = turn.caller
        file = await self._exports.prepare(caller, command.period)
        note = turn.text(
            f"The audit log of {file.period.label}: {file.events} events. Accept the file to receive it; "
            "it holds user names and ids, never a pass."
        )
        offer = offer_activity(
            name=file.name,
            description=f"tapbot audit log, {file.period.label}, {file.events} events.",
            size=len(file.data),
            context=_offer_context(file, caller.object_id),
        )
        if await turn.send_privately(note, offer):
            await self._exports.offered(caller, file)

    async def on_file_consent(self, turn: Turn) -> None:
        caller = turn.caller
        answer = consent_answer(turn.context.activity)
        offer = _read_offer(answer.context, self._clock.now())
        offered_to = answer.context.get("offeredTo")
        if offer is None:
            await self._exports.refused(caller, "damaged offer")
            text = "This file offer is damaged; type /tap audit export again."
        elif not _offered_to(offered_to, caller) or not is_personal(turn.context.activity):
            await self._exports.refused(caller, f"offered to someone else: {offer[0].label}")
            text = "This file was offered to someone else, or not in our personal chat, so I sent nothing."
        elif not answer.accepted:
            await self._exports.declined(caller, offer[0].label)
            text = "You declined the file; nothing was sent."
        else:
            text = await self._send(turn.context, caller, offer, answer)
        await turn.reply_here(text)
        await acknowledge(turn.context)

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
