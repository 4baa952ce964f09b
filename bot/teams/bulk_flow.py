"""Bulk runs in Teams: the attached file, the preflight card, the running job's progress and its private results.

A job runs in the background (the HTTP answer to Teams is immediate); its state is in SQL, so after a restart
`resume_all` picks every unfinished job up again. Pass values exist in memory only: on the result pages, and in the
export vault until the results file is sent or the passes expire.

Every button names a job: only the operator who ran it may press it, in their personal chat. The results file
(pass values) is offered to that operator only; the vault remembers each offer (job, person), so an answer to
an offer this replica never made to this person is refused, and every offer, answer and refusal is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_agents.activity import Activity, AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core import TurnContext, TurnState
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot import telemetry
from bot.domain.approvals import ApprovalRequest
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.bulk import BulkJob, BulkKind, BulkRow, BulkStore, JobStatus, Progress, RowState
from bot.domain.bulk_file import read_bulk_file, write_results_xlsx
from bot.domain.bulk_service import BulkService, Checked, Started, WaitingForApproval
from bot.domain.errors import TapError
from bot.domain.model import Caller, IssuedPass
from bot.domain.ports import AuditLog, Clock, FileTransfers, PassCards
from bot.domain.records import PassCard, RedactionReason
from bot.teams.activity import TurnFacts, turn_facts
from bot.teams.delivery import DeliveryFailed, PrivateChat, PrivateDelivery, card_message, text_message
from bot.teams.file_offer import OFFER_KEY, acknowledge, consent_answer, is_personal, offer_activity, upload_and_show
from bot.teams.presentation import Presentation
from bot.teams.redaction import CardRedactor, ShownPage, entry_card_id
from cards.bulk import final_card, preflight_card, progress_card, results_page_card
from cards.buttons import BadButtonData, ConfirmJobButton, JobButton
from cards.passes import CardJson, heading, render, sentence

logger = logging.getLogger(__name__)

FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"
EXPORT_HEADER = ("userPrincipalName", "displayName", "temporaryAccessPass", "startUtc", "expiresUtc", "oneTime")
VAULT_JOBS = 20
BULK_RESULTS_OFFER = "bulkResults"
PERSONAL_ONLY = "Press this button in our personal chat: bulk jobs and their passes are private."


@dataclass(frozen=True)
class ExportOffer:
    job_id: int
    offered_to: str  # the object id of the operator the file was offered to


@dataclass(frozen=True)
class Attached:
    name: str
    download_url: str


def attached_file(activity: Activity) -> Attached | None:
    for attachment in activity.attachments or []:
        if attachment.content_type != FILE_DOWNLOAD:
            continue
        content = attachment.content if isinstance(attachment.content, dict) else {}
        url = content.get("downloadUrl")
        if isinstance(url, str) and url:
            return Attached(attachment.name or "file", url)
    return None


class ExportVault:
    """Issued passes of recent jobs, in memory only, until exported once or expired. Never persisted."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._jobs: dict[int, list[tuple[str, IssuedPass]]] = {}
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

    def add(self, job_id: int, page: list[tuple[BulkRow, IssuedPass]]) -> None:
        entries = self._jobs.setdefault(job_id, [])
        entries.extend((row.target, issued) for row, issued in page)
        while len(self._jobs) > VAULT_JOBS:
            self._jobs.pop(next(iter(self._jobs)))

    def has(self, job_id: int) -> bool:
        self._forget_expired(job_id)
        return bool(self._jobs.get(job_id))

    def peek(self, job_id: int) -> list[tuple[str, IssuedPass]]:
        self._forget_expired(job_id)
        return list(self._jobs.get(job_id, []))

    def take(self, job_id: int) -> list[tuple[str, IssuedPass]]:
        self._forget_expired(job_id)
        return self._jobs.pop(job_id, [])

    def forget_passes(self, method_ids: set[str]) -> None:
        """Revoked or replaced passes are no longer exported."""
        for job_id, entries in list(self._jobs.items()):
            kept = [(upn, issued) for upn, issued in entries if issued.info.method_id not in method_ids]
            if kept:
                self._jobs[job_id] = kept
            else:
                self._jobs.pop(job_id)

    def _forget_expired(self, job_id: int) -> None:
        now = self._clock.now()
        entries = self._jobs.get(job_id)
        if entries is not None:
            live = [(upn, issued) for upn, issued in entries if issued.info.expires_at > now]
            if live:
                self._jobs[job_id] = live
            else:
                self._jobs.pop(job_id, None)


class BulkFlowStore(BulkStore, PassCards, AuditLog, Protocol):
    """The job journal (progress cards), the results pages' pass cards, and the audit log."""


class BulkFlow:
    def __init__(
        self,
        *,
        bulk: BulkService,
        transfers: FileTransfers,
        delivery: PrivateDelivery,
        store: BulkFlowStore,
        presentation: Presentation,
        clock: Clock,
        max_rows: int,
        announce: Callable[[ApprovalRequest], Awaitable[str]],
        replica: str,
        lease: timedelta,
        redactor: CardRedactor | None = None,
    ) -> None:
        # The app's redactor: it shows results pages again when one of their passes is revoked or replaced.
        self._redactor = redactor or CardRedactor(store, delivery, clock, decorate=presentation.decorate)
        self._replica = replica
        self._lease = lease
        self._announce = announce
        self._bulk = bulk
        self._transfers = transfers
        self._delivery = delivery
        self._store = store
        self._presentation = presentation
        self._clock = clock
        self._max_rows = max_rows
        self._vault = ExportVault(clock)
        self._running: dict[int, asyncio.Task[None]] = {}
        self._pages: dict[int, int] = {}

    # --- a file arrives ------------------------------------------------------------------------------------

    async def on_file(self, context: TurnContext, facts: TurnFacts, attached: Attached) -> None:
        if not facts.is_personal:
            await self._say(context, "Attach bulk files in our personal chat, not here: the results are private.")
            return
        kind = BulkKind.REVOKE if "revoke" in facts.text.lower() else BulkKind.ISSUE
        try:
            data = await self._transfers.fetch(attached.download_url)
            file = await asyncio.to_thread(
                read_bulk_file,
                data,
                attached.name,
                max_rows=self._max_rows,
                now=self._clock.now(),
                tz=facts.timezone,
                default_start_hour=self._presentation.default_start_hour,
            )
            checked = await self._bulk.check_file(
                facts.caller_with_address, kind, file, attached.name, facts.timezone.key
            )
        except TapError as error:
            await self._say(context, error.user_message)
            return
        await self._send_preflight(context, checked)

    async def on_revoke_job(self, context: TurnContext, facts: TurnFacts, job_id: int) -> None:
        if not facts.is_personal:
            await self._say(context, "Run bulk revocations in our personal chat: the results are private.")
            return
        try:
            checked = await self._bulk.check_job_revocation(facts.caller_with_address, job_id)
        except TapError as error:
            await self._say(context, error.user_message)
            return
        await self._send_preflight(context, checked)

    async def _send_preflight(self, context: TurnContext, checked: Checked) -> None:
        card = preflight_card(
            checked.job, checked.counts, checked.problems, checked.duplicates, checked.ignored_columns
        )
        await context.send_activity(card_message(self._presentation.decorate(card)))

    # --- buttons ------------------------------------------------------------------------------------------

    async def on_confirm(self, context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        try:
            button = ConfirmJobButton.parse(data)
        except BadButtonData as bad:
            return factory.message(bad.sentence)
        if not is_personal(context.activity):
            return factory.message(PERSONAL_ONLY)
        try:
            result = await self._bulk.confirm(
                facts.caller_with_address, button.job_id, replace_existing=button.replace_existing
            )
        except TapError as error:
            return factory.message(error.user_message)
        if isinstance(result, WaitingForApproval):
            announcement = await self._announce(result.request)
            return self._card(render(heading(f"Bulk job {result.job.id} waits for approval"), sentence(announcement)))
        await self._remember_progress_card(context, result)
        self.start(result.job)
        counts = await self._bulk.counts(result.job.id)
        progress = Progress(result.job, counts, sum(counts.values()), _done(counts), 0.0, None, 0)
        return self._card(progress_card(progress))

    async def on_cancel(self, context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        try:
            button = JobButton.parse(data)
        except BadButtonData as bad:
            return factory.message(bad.sentence)
        if not is_personal(context.activity):
            return factory.message(PERSONAL_ONLY)
        try:
            job = await self._bulk.cancel(facts.caller, button.job_id)
        except TapError as error:
            return factory.message(error.user_message)
        counts = await self._bulk.counts(job.id)
        if job.status is JobStatus.CANCELLING:
            return self._card(progress_card(Progress(job, counts, sum(counts.values()), _done(counts), 0.0, None, 0)))
        return self._card(final_card(job, counts, [], can_export=False))

    async def on_retry(self, context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        try:
            button = JobButton.parse(data)
        except BadButtonData as bad:
            return factory.message(bad.sentence)
        if not is_personal(context.activity):
            return factory.message(PERSONAL_ONLY)
        try:
            checked = await self._bulk.check_failed_rows(facts.caller_with_address, button.job_id)
        except TapError as error:
            return factory.message(error.user_message)
        await self._send_preflight(context, checked)
        retried = sum(checked.counts.values())
        return factory.message(f"I checked the {retried} failed rows again; confirm on the new card.")

    async def on_export(self, context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        try:
            job_id = JobButton.parse(data).job_id
        except BadButtonData as bad:
            return factory.message(bad.sentence)
        job = await self._bulk.job(job_id)
        if job is None or not _same_person(job.requester.object_id, facts.caller.object_id):
            await self._audit_export(facts.caller, job_id, AuditOutcome.REFUSED, "refused: not the job's requester")
            return factory.message("Only the operator who ran this job can export its results.")
        if not is_personal(context.activity):
            await self._audit_export(facts.caller, job_id, AuditOutcome.REFUSED, "refused: not in the personal chat")
            return factory.message(PERSONAL_ONLY)
        if not self._vault.has(job_id):
            return factory.message(
                "The pass values of this job are no longer available for export (they are never stored; they "
                "expire, or the bot restarted). They are still on the result pages in this chat."
            )
        offer_id = self._vault.offer(job_id, facts.caller.object_id)
        offer = offer_activity(
            name=_export_name(job_id),
            description=f"Temporary Access Passes of bulk job {job_id}. Delete the file after hand-over.",
            size=len(self._export_bytes(self._vault.peek(job_id))),
            context={OFFER_KEY: BULK_RESULTS_OFFER, "jobId": job_id, "offerId": offer_id},
        )
        await context.send_activity(offer)
        await self._audit_export(facts.caller, job_id, AuditOutcome.NEEDS_CONFIRMATION, "offered")
        return factory.message("Accept the file in the next message to receive it; it can be sent once.")

    async def on_file_consent(self, context: TurnContext, _state: TurnState) -> None:
        """An answer to a results-file offer: only from the person it was offered to, who ran the job."""
        facts = turn_facts(context.activity, self._presentation.default_timezone)
        answer = consent_answer(context.activity)
        text = await self._answer_offer(context, facts.caller, answer.context, accepted=answer.accepted)
        await context.send_activity(text_message(self._presentation.text_prefix + text))
        await acknowledge(context)

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
                context, self._transfers, answer, self._export_bytes(entries), default_name=_export_name(job_id)
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
        await self._store.record(
            AuditEvent(
                at=self._clock.now(),
                action=AuditAction.DELIVERY,
                outcome=outcome,
                actor_id=caller.object_id,
                actor_name=caller.display_name,
                detail=f"results file of {job}: {what}",
            )
        )

    def _export_bytes(self, entries: list[tuple[str, IssuedPass]]) -> bytes:
        rows = [
            (
                issued.user.user_principal_name or upn,
                issued.user.display_name,
                issued.secret.reveal(),
                issued.info.start_at.strftime("%Y-%m-%d %H:%M"),
                issued.info.expires_at.strftime("%Y-%m-%d %H:%M"),
                "yes" if issued.info.one_time else "no",
            )
            for upn, issued in entries
        ]
        return write_results_xlsx(rows, EXPORT_HEADER, sheet="Passes")

    # --- running ------------------------------------------------------------------------------------------

    async def approved(self, request: ApprovalRequest) -> str:
        """Called when an operator approved a bulk request: the job starts now."""
        job = await self._bulk.approved(request)
        if job is None:
            return "The job was cancelled meanwhile; nothing runs."
        await self._post_progress_card(job)
        self.start(job)
        return f"Bulk job {job.id} is running; the requester sees its progress in their personal chat."

    def start(self, job: BulkJob) -> None:
        if self._runs(job.id):
            return
        task = asyncio.create_task(self._run(job), name=f"bulk-job-{job.id}")
        self._running[job.id] = task

    def _runs(self, job_id: int) -> bool:
        task = self._running.get(job_id)
        return task is not None and not task.done()

    async def adopt(self) -> int:
        """Runs every active job no live replica holds: after a restart, or when the replica running it died.

        A job is claimed with a lease that its runner renews; a lease nobody renewed is taken over.
        """
        adopted = 0
        for job in await self._bulk.active_jobs():
            if not self._runs(job.id) and await self._bulk.claim(job.id, self._replica, self._lease):
                self.start(job)
                adopted += 1
        return adopted

    async def wait(self, job_id: int) -> None:
        task = self._running.get(job_id)
        if task is not None:
            await task

    async def stop(self) -> None:
        """Stops running jobs where they are and gives their leases back: another replica (or the next start)
        resumes them from the journal."""
        for task in self._running.values():
            task.cancel()
        for task in self._running.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, job: BulkJob) -> None:
        if not await self._bulk.claim(job.id, self._replica, self._lease):
            logger.info("bulk job %s is run by another replica", job.id)
            return
        run = asyncio.create_task(self._bulk.run(job.id, _TeamsSink(self, job)), name=f"bulk-run-{job.id}")
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=self._lease.total_seconds() / 3)
                if not run.done() and not await self._bulk.claim(job.id, self._replica, self._lease):
                    logger.warning("bulk job %s: lease lost to another replica; stopping here", job.id)
                    run.cancel()
                    await asyncio.wait({run})
            if not run.cancelled() and run.exception() is not None:
                logger.error(
                    "bulk job %s stopped with an error; a later round resumes it", job.id, exc_info=run.exception()
                )
        finally:
            if not run.done():
                run.cancel()
                await asyncio.wait({run})
            await asyncio.shield(self._bulk.release(job.id, self._replica))

    async def _remember_progress_card(self, context: TurnContext, result: Started) -> None:
        """The pressed card becomes the progress card; without its id, a new progress message is posted."""
        activity = context.activity
        if activity.reply_to_id and activity.conversation is not None:
            await self._store.set_job_progress_card(
                result.job.id, activity.service_url or "", activity.conversation.id, activity.reply_to_id
            )
        else:
            await self._post_progress_card(result.job)

    async def _post_progress_card(self, job: BulkJob) -> None:
        counts = await self._bulk.counts(job.id)
        card = progress_card(Progress(job, counts, sum(counts.values()), _done(counts), 0.0, None, 0))
        try:
            chat, activity_id = await self._delivery.send_to(
                job.requester, card_message(self._presentation.decorate(card))
            )
        except DeliveryFailed as failure:
            logger.warning("could not post the progress card of job %s: %s", job.id, failure)
            return
        if activity_id:
            await self._store.set_job_progress_card(job.id, chat.service_url, chat.conversation_id, activity_id)

    async def deliver_page(self, job: BulkJob, page: list[tuple[BulkRow, IssuedPass]]) -> str | None:
        tz = _zone(job.timezone)
        number = self._pages[job.id] = self._pages.get(job.id, 0) + 1
        card_id = str(uuid.uuid4())
        card = self._presentation.decorate(results_page_card(job, page, card_id=card_id, page_number=number, tz=tz))
        try:
            chat, activity_id = await self._delivery.send_to(job.requester, card_message(card))
        except DeliveryFailed as failure:
            return str(failure)
        now = self._clock.now()
        expires_at = max(issued.info.expires_at for _, issued in page)
        page_card = PassCard(
            id=card_id,
            requester_id=job.requester.object_id,
            target_id=f"job:{job.id}",
            target_label=f"{len(page)} users (bulk job {job.id}, page {number})",
            pass_method_id=f"job:{job.id}:page:{number}",
            start_at=min(issued.info.start_at for _, issued in page),
            expires_at=expires_at,
            one_time=all(issued.info.one_time for _, issued in page),
            timezone=tz.key,
            service_url=chat.service_url,
            conversation_id=chat.conversation_id,
            activity_id=activity_id,
            created_at=now,
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
            for index, (_, issued) in enumerate(page)
        ]
        await self._store.save_pass_cards([page_card, *entries])
        self._redactor.pages.add(ShownPage(card_id, job, number, tz, list(page)))
        self._vault.add(job.id, page)
        return None

    async def show_progress(self, progress: Progress) -> None:
        job = await self._bulk.job(progress.job.id) or progress.job
        await self._update_progress_card(
            job,
            progress_card(
                Progress(
                    job,
                    progress.counts,
                    progress.total,
                    progress.done,
                    progress.rows_per_second,
                    progress.seconds_left,
                    progress.concurrency,
                )
            ),
        )

    async def show_final(self, job: BulkJob, counts: dict[RowState, int]) -> None:
        if job.kind is BulkKind.REVOKE:
            # Like a single revoke: every results page that showed one of these passes stops showing it.
            revoked = await self._bulk.rows(job.id, (RowState.REVOKED,))
            methods = [row.pass_method_id for row in revoked if row.pass_method_id]
            await self.withdraw_passes(methods, RedactionReason.REVOKED, job.requester.object_id)
        failed = await self._bulk.rows(job.id, (RowState.FAILED,))
        card = final_card(job, counts, failed, can_export=self._vault.has(job.id))
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

    # --- helpers ------------------------------------------------------------------------------------------

    async def _say(self, context: TurnContext, text: str) -> None:
        await context.send_activity(text_message(self._presentation.text_prefix + text))

    def _card(self, card: CardJson) -> AdaptiveCardInvokeResponse:
        return factory.adaptive_card(self._presentation.decorate(card))  # type: ignore[arg-type]


class _TeamsSink:
    def __init__(self, flow: BulkFlow, job: BulkJob) -> None:
        self._flow = flow
        self._job = job

    async def deliver_page(self, job: BulkJob, page: list[tuple[BulkRow, IssuedPass]]) -> str | None:
        return await self._flow.deliver_page(job, page)

    async def progress(self, progress: Progress) -> None:
        await self._flow.show_progress(progress)

    async def finished(self, job: BulkJob, counts: dict[RowState, int]) -> None:
        telemetry.bulk_rows(job.kind.value, {state.value: rows for state, rows in counts.items()})
        await self._flow.show_final(job, counts)


def _same_person(first: str, second: str) -> bool:
    return bool(first) and first.lower() == second.lower()


def _export_name(job_id: int) -> str:
    return f"tapbot-job-{job_id}-passes.xlsx"


def _done(counts: dict[RowState, int]) -> int:
    return sum(count for state, count in counts.items() if state.final)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
