"""What a running bulk job shows its requester, privately: the progress card, the result pages, the final card.

`BulkResults` is the job's sink (`bot.domain.bulk.BulkSink`): the row runner hands it each page of issued rows.
A page is a card in the requester's 1:1 chat, recorded as pass cards (one for the page, one entry per pass) so it
hides itself after hand-over or expiry and shows a pass as revoked once it is revoked or replaced (redaction.py);
its rows also go to the export vault, the only other place pass values stay.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

from bot import telemetry
from bot.domain.bulk import BulkJob, BulkKind, IssuedRow, Progress, RowState
from bot.domain.bulk_service import BulkService
from bot.domain.ports import Clock, PassCards
from bot.domain.records import PassCard, RedactionReason
from bot.teams.bulk_export import ExportVault
from bot.teams.delivery import DeliveryFailed, PrivateChat, PrivateDelivery, card_message, text_message
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor, ShownPage, entry_card_id, zone_or_utc
from cards.bulk import final_card, progress_card, results_page_card
from cards.passes import CardJson

logger = logging.getLogger(__name__)


class BulkResults:
    def __init__(
        self,
        *,
        bulk: BulkService,
        delivery: PrivateDelivery,
        cards: PassCards,
        presentation: Presentation,
        clock: Clock,
        redactor: CardRedactor,
        vault: ExportVault,
    ) -> None:
        self._bulk = bulk
        self._delivery = delivery
        self._cards = cards
        self._presentation = presentation
        self._clock = clock
        # The app's redactor: it shows results pages again when one of their passes is revoked or replaced.
        self._redactor = redactor
        self._vault = vault
        self._pages: dict[int, int] = {}

    # --- the sink of a running job --------------------------------------------------------------------------

    async def deliver_page(self, job: BulkJob, page: list[IssuedRow]) -> str | None:
        tz = zone_or_utc(job.timezone)
        number = self._pages[job.id] = self._pages.get(job.id, 0) + 1
        card_id = str(uuid.uuid4())
        card = self._presentation.decorate(results_page_card(job, page, card_id=card_id, page_number=number, tz=tz))
        try:
            chat, activity_id = await self._delivery.send_to(job.requester, card_message(card))
        except DeliveryFailed as failure:
            return str(failure)
        passes = [entry.issued for entry in page]
        page_card = PassCard(
            id=card_id,
            requester_id=job.requester.object_id,
            target_id=f"job:{job.id}",
            target_label=f"{len(page)} users (bulk job {job.id}, page {number})",
            pass_method_id=f"job:{job.id}:page:{number}",
            start_at=min(issued.info.start_at for issued in passes),
            expires_at=max(issued.info.expires_at for issued in passes),
            one_time=all(issued.info.one_time for issued in passes),
            timezone=tz.key,
            service_url=chat.service_url,
            conversation_id=chat.conversation_id,
            activity_id=activity_id,
            created_at=self._clock.now(),
        )
        # One entry per pass, under its method id: revoking or replacing that pass finds this page (redaction.py).
        entries = [
            replace(
                page_card,
                id=entry_card_id(card_id, index),
                target_id=issued.user.object_id,
                target_label=issued.user.label,
                pass_method_id=issued.info.method_id,
                start_at=issued.info.start_at,
                one_time=issued.info.one_time,
            )
            for index, issued in enumerate(passes)
        ]
        await self._cards.save_pass_cards([page_card, *entries])
        self._redactor.pages.add(ShownPage(card_id, job, number, tz, list(page)))
        self._vault.add(job.id, page)
        return None

    async def progress(self, progress: Progress) -> None:
        job = await self._bulk.job(progress.job.id) or progress.job
        await self._update_progress_card(job, progress_card(replace(progress, job=job)))

    async def waiting_sign_in(self, progress: Progress) -> None:
        """The run paused for the requester's sign-in: the progress card says so in place (a new one when it cannot
        be updated), with the journal's counts; the sign-in card itself is the flow's (`BulkFlow`)."""
        job = await self._bulk.job(progress.job.id) or progress.job
        counts = await self._bulk.counts(job.id)
        done = sum(count for state, count in counts.items() if state.final)
        card = progress_card(replace(progress, job=job, counts=counts, done=done, total=sum(counts.values())))
        if await self._update_progress_card(job, card):
            return
        try:
            await self._delivery.send_to(job.requester, card_message(self._presentation.decorate(card)))
        except DeliveryFailed as failure:
            logger.warning("could not show that job %s is paused: %s", job.id, failure)

    async def finished(self, job: BulkJob, counts: dict[RowState, int]) -> None:
        telemetry.bulk_rows(job.kind.value, {state.value: rows for state, rows in counts.items()})
        if job.kind is BulkKind.REVOKE:
            # Like a single revoke: every results page that showed one of these passes stops showing it.
            revoked = await self._bulk.rows(job.id, (RowState.REVOKED,))
            methods = [row.pass_method_id for row in revoked if row.pass_method_id]
            await self.withdraw_passes(methods, RedactionReason.REVOKED, job.requester.object_id)
        failed = await self._bulk.rows(job.id, (RowState.FAILED,))
        held = await self._bulk.rows(job.id, (RowState.SKIPPED,))
        card = final_card(job, counts, failed, can_export=self._vault.has(job.id), held=held)
        summary = ", ".join(f"{count} {state.value.replace('_', ' ')}" for state, count in sorted(counts.items()))
        if await self._update_progress_card(job, card):
            # The progress card sits above the result pages: say at the bottom of the chat that it is done.
            where = (
                " The summary card is above the passes."
                if job.kind is BulkKind.ISSUE and counts.get(RowState.DELIVERED)
                else " The job's card above shows the details."
            )
            message = text_message(
                f"{self._presentation.text_prefix}Bulk job {job.id} {job.status.value}: {summary}.{where}"
            )
        else:
            message = card_message(self._presentation.decorate(card))
        try:
            await self._delivery.send_to(job.requester, message)
        except DeliveryFailed as failure:
            logger.warning("could not report the end of job %s: %s", job.id, failure)

    def can_export(self, job_id: int) -> bool:
        """Whether this replica still holds the job's passes for the results file."""
        return self._vault.has(job_id)

    async def resumed(self, job: BulkJob) -> None:
        """A paused job goes on: its card shows it running again before its first row (the run updates it later)."""
        await self._update_progress_card(job, await self.first_progress_card(job))

    async def ended_unresumed(self, job: BulkJob, patience: timedelta) -> None:
        """A paused job nobody resumed was cancelled: its card says why, and the requester is told at the bottom of
        the chat."""
        counts = await self._bulk.counts(job.id)
        not_run = counts.get(RowState.CANCELLED, 0)
        hours = round(patience.total_seconds() / 3600, 2)
        within = f"{hours:g} hour{'' if hours == 1 else 's'}"
        note = (
            f"Cancelled: you did not sign in again within {within} of the pause; {not_run} "
            f"row{'' if not_run == 1 else 's'} were not run."
        )
        failed = await self._bulk.rows(job.id, (RowState.FAILED,))
        held = await self._bulk.rows(job.id, (RowState.SKIPPED,))
        card = final_card(job, counts, failed, can_export=self._vault.has(job.id), note=note, held=held)
        updated = await self._update_progress_card(job, card)
        message = (
            text_message(f"{self._presentation.text_prefix}Bulk job {job.id}: {note}")
            if updated
            else card_message(self._presentation.decorate(card))
        )
        try:
            await self._delivery.send_to(job.requester, message)
        except DeliveryFailed as failure:
            logger.warning("could not report the end of job %s: %s", job.id, failure)

    # --- the progress card, and passes that went --------------------------------------------------------------

    async def post_progress_card(self, job: BulkJob) -> None:
        """A new progress message in the requester's chat (a job approved by someone else, or no card to reuse)."""
        card = await self.first_progress_card(job)
        try:
            chat, activity_id = await self._delivery.send_to(
                job.requester, card_message(self._presentation.decorate(card))
            )
        except DeliveryFailed as failure:
            logger.warning("could not post the progress card of job %s: %s", job.id, failure)
            return
        if activity_id:
            await self._bulk.remember_progress_card(job.id, chat.service_url, chat.conversation_id, activity_id)

    async def first_progress_card(self, job: BulkJob) -> CardJson:
        """The progress card before the runner reported anything: the journal's counts, no rate yet."""
        counts = await self._bulk.counts(job.id)
        done = sum(count for state, count in counts.items() if state.final)
        return progress_card(Progress(job, counts, sum(counts.values()), done, 0.0, None, 0))

    async def withdraw_passes(self, method_ids: list[str], reason: RedactionReason, actor_id: str) -> None:
        """Passes revoked or replaced: off their results pages, and out of the export vault."""
        self._vault.forget_passes(set(method_ids))
        await self._redactor.redact_cards_of_passes(method_ids, reason, actor_id)

    async def _update_progress_card(self, job: BulkJob, card: CardJson) -> bool:
        fresh = await self._bulk.job(job.id) or job
        if not (fresh.progress_activity_id and fresh.progress_conversation_id and fresh.progress_service_url):
            return False
        chat = PrivateChat(fresh.progress_service_url, fresh.progress_conversation_id)
        try:
            await self._delivery.update(
                chat, fresh.progress_activity_id, card_message(self._presentation.decorate(card))
            )
        except Exception:
            logger.warning("could not update the progress card of job %s", job.id, exc_info=True)
            return False
        return True
