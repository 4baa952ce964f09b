"""A bulk job's results as an .xlsx file, sent once through Teams' file-consent flow to the operator who ran it.

Pass values exist in memory only: the vault keeps each job's issued rows until the file is sent or the passes
expire, and forgets a pass once it is revoked or replaced. It also remembers each offer (job, person), so an answer
to an offer this replica never made to this person is refused; every offer, answer and refusal is audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from microsoft_agents.activity import AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.bulk import IssuedRow
from bot.domain.bulk_file import write_results_xlsx
from bot.domain.bulk_service import BulkService
from bot.domain.errors import TapError
from bot.domain.model import Caller
from bot.domain.ports import AuditLog, Clock, FileTransfers
from bot.teams.file_offer import OFFER_KEY, acknowledge, consent_answer, is_personal, offer_activity, upload_and_show
from bot.teams.turn import Turn
from cards.buttons import BadButtonData, JobButton

EXPORT_HEADER = ("userPrincipalName", "displayName", "temporaryAccessPass", "startUtc", "expiresUtc", "oneTime")
VAULT_JOBS = 20
BULK_RESULTS_OFFER = "bulkResults"
PERSONAL_ONLY = "Press this button in our personal chat: bulk jobs and their passes are private."


@dataclass(frozen=True)
class ExportOffer:
    job_id: int
    offered_to: str  # the object id of the operator the file was offered to


class ExportVault:
    """Issued rows of recent jobs, in memory only, until exported once or expired. Never persisted."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._jobs: dict[int, list[IssuedRow]] = {}
        self._offers: dict[str, ExportOffer] = {}

    def offer(self, job_id: int, offered_to: str) -> str:
        """Remembers an offer of this job's file to this person; its id goes into the offer's context."""
        offer_id = str(uuid.uuid4())
        self._offers[offer_id] = ExportOffer(job_id, offered_to.lower())
        while len(self._offers) > VAULT_JOBS * 5:
            self._offers.pop(next(iter(self._offers)))
        return offer_id

    def offered(self, offer_id: str) -> ExportOffer | None:
        return self._offers.get(offer_id)

    def close_offer(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)

    def add(self, job_id: int, page: list[IssuedRow]) -> None:
        self._jobs.setdefault(job_id, []).extend(page)
        while len(self._jobs) > VAULT_JOBS:
            self._jobs.pop(next(iter(self._jobs)))

    def has(self, job_id: int) -> bool:
        self._forget_expired(job_id)
        return bool(self._jobs.get(job_id))

    def peek(self, job_id: int) -> list[IssuedRow]:
        self._forget_expired(job_id)
        return list(self._jobs.get(job_id, []))

    def take(self, job_id: int) -> list[IssuedRow]:
        self._forget_expired(job_id)
        return self._jobs.pop(job_id, [])

    def forget_passes(self, method_ids: set[str]) -> None:
        """Revoked or replaced passes are no longer exported."""
        for job_id, entries in list(self._jobs.items()):
            kept = [entry for entry in entries if entry.issued.info.method_id not in method_ids]
            if kept:
                self._jobs[job_id] = kept
            else:
                self._jobs.pop(job_id)

    def _forget_expired(self, job_id: int) -> None:
        now = self._clock.now()
        entries = self._jobs.get(job_id)
        if entries is not None:
            live = [entry for entry in entries if entry.issued.info.expires_at > now]
            if live:
                self._jobs[job_id] = live
            else:
                self._jobs.pop(job_id, None)


class BulkExport:
    """The **Send the results as an Excel file** button, and the answer to the file offer it makes."""

    def __init__(
        self,
        *,
        bulk: BulkService,
        vault: ExportVault,
        transfers: FileTransfers,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._bulk = bulk
        self._vault = vault
        self._transfers = transfers
        self._audit = audit
        self._clock = clock

    async def on_export(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        caller = turn.facts.caller
        job_id = JobButton.parse(data).job_id
        job = await self._bulk.job(job_id)
        if job is None or not _same_person(job.requester.object_id, caller.object_id):
            await self._audit_export(caller, job_id, AuditOutcome.REFUSED, "refused: not the job's requester")
            return factory.message("Only the operator who ran this job can export its results.")
        if not is_personal(turn.context.activity):
            await self._audit_export(caller, job_id, AuditOutcome.REFUSED, "refused: not in the personal chat")
            return factory.message(PERSONAL_ONLY)
        if not self._vault.has(job_id):
            return factory.message(
                "The pass values of this job are no longer available for export (they are never stored; they "
                "expire, or the bot restarted). They are still on the result pages in this chat."
            )
        offer_id = self._vault.offer(job_id, caller.object_id)
        offer = offer_activity(
            name=_export_name(job_id),
            description=f"Temporary Access Passes of bulk job {job_id}. Delete the file after hand-over.",
            size=len(_export_bytes(self._vault.peek(job_id))),
            context={OFFER_KEY: BULK_RESULTS_OFFER, "jobId": job_id, "offerId": offer_id},
        )
        await turn.context.send_activity(offer)
        await self._audit_export(caller, job_id, AuditOutcome.NEEDS_CONFIRMATION, "offered")
        return factory.message("Accept the file in the next message to receive it; it can be sent once.")

    async def on_file_consent(self, turn: Turn) -> None:
        """An answer to a results-file offer: only from the person it was offered to, who ran the job."""
        answer = consent_answer(turn.context.activity)
        text = await self._answer_offer(turn.context, turn.facts.caller, answer.context, accepted=answer.accepted)
        await turn.reply_here(text)
        await acknowledge(turn.context)

    async def _answer_offer(
        self, context: TurnContext, caller: Caller, offer: dict[str, Any], *, accepted: bool
    ) -> str:
        try:
            job_id = JobButton.parse(offer).job_id
        except BadButtonData:
            await self._audit_export(caller, None, AuditOutcome.REFUSED, "refused: damaged offer")
            return "This file offer is damaged, so I sent nothing."
        offer_id = offer.get("offerId")
        made = self._vault.offered(offer_id) if isinstance(offer_id, str) else None
        job = await self._bulk.job(job_id)
        if made is None:
            await self._audit_export(caller, job_id, AuditOutcome.REFUSED, "refused: no such offer on record")
            return (
                "I have no record of offering you this file (offers are kept in memory only: a restart, or another "
                "instance of the bot, does not know them), so I sent nothing. The passes remain on the result pages."
            )
        if (
            made.job_id != job_id
            or not _same_person(made.offered_to, caller.object_id)
            or job is None
            or not _same_person(job.requester.object_id, caller.object_id)
            or not is_personal(context.activity)
        ):
            await self._audit_export(caller, job_id, AuditOutcome.REFUSED, "refused: not offered to this person here")
            return "This file was not offered to you here, so I sent nothing."
        assert isinstance(offer_id, str)
        answer = consent_answer(context.activity)
        if not accepted:
            self._vault.close_offer(offer_id)
            await self._audit_export(caller, job_id, AuditOutcome.NOTHING_TO_DO, "declined")
            return "You declined the file; nothing was sent. The passes stay on the result pages."
        entries = self._vault.peek(job_id)
        if not entries:
            self._vault.close_offer(offer_id)
            await self._audit_export(caller, job_id, AuditOutcome.NOTHING_TO_DO, "accepted, but the values are gone")
            return "The pass values are no longer available for export; nothing was sent."
        try:
            await upload_and_show(
                context, self._transfers, answer, _export_bytes(entries), default_name=_export_name(job_id)
            )
        except TapError as error:
            await self._audit_export(caller, job_id, AuditOutcome.FAILED, f"upload failed ({type(error).__name__})")
            return error.user_message
        self._vault.take(job_id)
        self._vault.close_offer(offer_id)
        await self._audit_export(caller, job_id, AuditOutcome.SUCCEEDED, f"sent: {len(entries)} passes")
        return "Here is the file. Delete it once the passes are handed over; it was sent only once."

    async def _audit_export(self, caller: Caller, job_id: int | None, outcome: AuditOutcome, what: str) -> None:
        job = f"bulk job {job_id}" if job_id is not None else "a bulk job"
        await self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                action=AuditAction.DELIVERY,
                outcome=outcome,
                actor_id=caller.object_id,
                actor_name=caller.display_name,
                detail=f"results file of {job}: {what}",
            )
        )


def _same_person(first: str, second: str) -> bool:
    return bool(first) and first.lower() == second.lower()


def _export_name(job_id: int) -> str:
    return f"tapbot-job-{job_id}-passes.xlsx"


def _export_bytes(entries: list[IssuedRow]) -> bytes:
    rows = [
        (
            entry.issued.user.user_principal_name or entry.row.target,
            entry.issued.user.display_name,
            entry.issued.secret.reveal(),
            entry.issued.info.start_at.strftime("%Y-%m-%d %H:%M"),
            entry.issued.info.expires_at.strftime("%Y-%m-%d %H:%M"),
            "yes" if entry.issued.info.one_time else "no",
        )
        for entry in entries
    ]
    return write_results_xlsx(rows, EXPORT_HEADER, sheet="Passes")
