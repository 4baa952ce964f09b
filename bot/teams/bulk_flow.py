"""Bulk runs in Teams: the attached file, the preflight card, and the buttons of a job (confirm, cancel, retry).

A job runs in the background (the HTTP answer to Teams is immediate) on the domain's `BulkRunner`; its state is in
SQL, so after a restart `adopt` picks every unfinished job up again. What the running job shows (progress, result
pages, the final card) is `bulk_results.py`; the results file is `bulk_export.py`.

Every button names a job: only the operator who ran it may press it, in their personal chat. `Replace these N` on a
final card checks the rows skipped for holding a pass again as a new job, whose confirm card has the replace switch
on. Refusals (`TapError`) and damaged button data are answered by `Turns` (turn.py).

Delegated writes (issue 14): every row is written with the requester's own token. A run that loses it pauses
(`JobStatus.WAITING_SIGN_IN`); its progress card says so and the requester gets a sign-in card in their 1:1 chat
(`SignIns.ask_privately`, a `SignInWait` of kind `bulk` whose ref is the job id). Their sign-in resumes the job
(`resume_after_sign_in`, registered with `SignIns.resumes`); so does the paused card's Resume button, for a sign-in
made after the wait's 10 minutes (a run that still finds no token pauses again and sends a new card). Cancel works
while it waits; housekeeping cancels a job that waited longer than `BulkService.sign_in_patience`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from microsoft_agents.activity import Activity, AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.approvals import ApprovalRequest
from bot.domain.bulk import BulkJob, BulkKind, IssuedRow, JobStatus, Progress, RowState
from bot.domain.bulk_file import read_bulk_file
from bot.domain.bulk_runner import BulkRunner
from bot.domain.bulk_service import BulkService, Checked, Started, WaitingForApproval
from bot.domain.model import Recipient
from bot.domain.ports import Clock, FileTransfers, SignInWaits
from bot.domain.reasons import split_reason
from bot.domain.records import RedactionReason, SignInWait, SignInWaitKind
from bot.teams.bulk_export import BULK_RESULTS_OFFER as BULK_RESULTS_OFFER  # the offer kind agent.py routes
from bot.teams.bulk_export import PERSONAL_ONLY, BulkExport
from bot.teams.bulk_results import BulkResults
from bot.teams.file_offer import is_personal
from bot.teams.presentation import Presentation
from bot.teams.turn import Turn
from cards.bulk import final_card, preflight_card
from cards.buttons import ConfirmJobButton, JobButton
from cards.passes import heading, render, sentence

FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"
logger = logging.getLogger(__name__)


class SignInResumeRegistry(Protocol):
    def register(self, kind: SignInWaitKind, handler: Callable[[Turn, SignInWait], Awaitable[None]]) -> None: ...


class AsksSignInPrivately(Protocol):
    """bot/teams/sign_in.py's `SignIns`, as a paused job uses it."""

    @property
    def resumes(self) -> SignInResumeRegistry: ...

    async def ask_privately(self, recipient: Recipient, *, kind: SignInWaitKind, ref: str, what: str) -> bool: ...


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


class BulkFlow:
    def __init__(
        self,
        *,
        bulk: BulkService,
        runner: BulkRunner,
        results: BulkResults,
        export: BulkExport,
        transfers: FileTransfers,
        presentation: Presentation,
        clock: Clock,
        max_rows: int,
        announce: Callable[[ApprovalRequest], Awaitable[str]],
    ) -> None:
        self._bulk = bulk
        self._runner = runner
        self._results = results
        self._export = export
        self._transfers = transfers
        self._presentation = presentation
        self._clock = clock
        self._max_rows = max_rows
        self._announce = announce
        self._sign_ins: AsksSignInPrivately | None = None
        self._waits: SignInWaits | None = None
        self._sink = _FlowSink(results, self._ask_sign_in)

    def use_sign_in(self, sign_ins: AsksSignInPrivately, waits: SignInWaits) -> None:
        """Delegated writes: a paused job asks its requester to sign in through `sign_ins`, and their sign-in
        resumes it."""
        self._sign_ins = sign_ins
        self._waits = waits
        sign_ins.resumes.register(SignInWaitKind.BULK, self.resume_after_sign_in)

    # --- a file arrives ------------------------------------------------------------------------------------

    async def on_file(self, turn: Turn, attached: Attached) -> None:
        if not turn.is_personal:
            await turn.reply_here("Attach bulk files in our personal chat, not here: the results are private.")
            return
        # The message's text says what to do with the file and, after `reason`, why (for rows without their own).
        instructions, reason = split_reason(turn.facts.text)
        kind = BulkKind.REVOKE if "revoke" in instructions.lower() else BulkKind.ISSUE
        data = await self._transfers.fetch(attached.download_url)
        file = await asyncio.to_thread(
            read_bulk_file,
            data,
            attached.name,
            max_rows=self._max_rows,
            now=self._clock.now(),
            tz=turn.timezone,
            default_start_hour=self._presentation.default_start_hour,
        )
        checked = await self._bulk.check_file(turn.caller, kind, file, attached.name, turn.timezone.key, reason=reason)
        await self._send_preflight(turn, checked)

    async def on_revoke_job(self, turn: Turn, job_id: int, *, reason: str = "") -> None:
        if not turn.is_personal:
            await turn.reply_here("Run bulk revocations in our personal chat: the results are private.")
            return
        await self._send_preflight(turn, await self._bulk.check_job_revocation(turn.caller, job_id, reason=reason))

    async def _send_preflight(self, turn: Turn, checked: Checked) -> None:
        await turn.reply_here(
            card=preflight_card(
                checked.job,
                checked.counts,
                checked.problems,
                checked.duplicates,
                checked.ignored_columns,
                replacing=checked.replacing,
            )
        )

    # --- buttons ------------------------------------------------------------------------------------------

    async def on_confirm(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = ConfirmJobButton.parse(data)
        if not is_personal(turn.context.activity):
            return factory.message(PERSONAL_ONLY)
        result = await self._bulk.confirm(turn.caller, button.job_id, replace_existing=button.replace_existing)
        if isinstance(result, WaitingForApproval):
            announcement = await self._announce(result.request)
            waits = render(heading(f"Bulk job {result.job.id} waits for approval"), sentence(announcement))
            return turn.card_answer(waits)
        await self._remember_progress_card(turn, result)
        self.start(result.job)
        return turn.card_answer(await self._results.first_progress_card(result.job))

    async def on_cancel(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = JobButton.parse(data)
        if not is_personal(turn.context.activity):
            return factory.message(PERSONAL_ONLY)
        job = await self._bulk.cancel(turn.facts.caller, button.job_id)
        await self._forget_wait(job)
        if job.status is JobStatus.CANCELLING:
            return turn.card_answer(await self._results.first_progress_card(job))
        # Cancelled before it ran, or while it waited for a sign-in (its delivered passes can still be exported).
        failed = await self._bulk.rows(job.id, (RowState.FAILED,))
        counts = await self._bulk.counts(job.id)
        held = await self._bulk.rows(job.id, (RowState.SKIPPED,))
        can_export = self._results.can_export(job.id)
        return turn.card_answer(final_card(job, counts, failed, can_export=can_export, held=held))

    async def on_retry(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = JobButton.parse(data)
        if not is_personal(turn.context.activity):
            return factory.message(PERSONAL_ONLY)
        checked = await self._bulk.check_failed_rows(turn.caller, button.job_id)
        await self._send_preflight(turn, checked)
        retried = sum(checked.counts.values())
        return factory.message(f"I checked the {retried} failed rows again; confirm on the new card.")

    async def on_replace_held(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        """Replace these N: the rows the job skipped because their user holds a pass, checked again (the requester
        only, an operator still) as a new job; its confirm card, switch on, says what will be replaced."""
        button = JobButton.parse(data)
        if not is_personal(turn.context.activity):
            return factory.message(PERSONAL_ONLY)
        checked = await self._bulk.check_held_rows(turn.caller, button.job_id)
        await self._send_preflight(turn, checked)
        rows = sum(checked.counts.values())
        return factory.message(f"I checked the {rows} skipped rows again; confirm on the new card.")

    async def on_resume(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        """The paused card's Resume: the job runs again as its requester (still without a token of theirs, it
        pauses again and a new sign-in card comes). The card is updated by the run, not by this answer."""
        button = JobButton.parse(data)
        if not is_personal(turn.context.activity):
            return factory.message(PERSONAL_ONLY)
        return factory.message(await self._resume(turn, button.job_id))

    async def resume_after_sign_in(self, turn: Turn, wait: SignInWait) -> None:
        """`SignInResumes` handler, kind `bulk`: the requester signed in; their paused job goes on."""
        try:
            job_id = int(wait.ref)
        except ValueError:
            logger.warning("a bulk sign-in wait with a ref that is no job id")
            return
        await turn.reply_here(f"You're signed in. {await self._resume(turn, job_id)}")

    async def _resume(self, turn: Turn, job_id: int) -> str:
        job = await self._bulk.resume(turn.caller, job_id)  # the requester only (NotYourJob, UnknownJob)
        if job is None:
            current = await self._bulk.job(job_id)
            state = current.status.value.replace("_", " ") if current else "gone"
            return f"Bulk job {job_id} is not paused (it is {state}); nothing was changed."
        await self._forget_wait(job)
        await self._results.resumed(job)
        await self._runner.resume(job, self._sink)
        return f"Bulk job {job.id} goes on from where it stopped; its card above shows the progress."

    async def on_export(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        return await self._export.on_export(turn, data)

    async def on_file_consent(self, turn: Turn) -> None:
        await self._export.on_file_consent(turn)

    # --- running ------------------------------------------------------------------------------------------

    async def approved(self, request: ApprovalRequest) -> str:
        """Called when an operator approved a bulk request: the job starts now."""
        job = await self._bulk.approved(request)
        if job is None:
            return "The job was cancelled meanwhile; nothing runs."
        await self._results.post_progress_card(job)
        self.start(job)
        return f"Bulk job {job.id} is running; the requester sees its progress in their personal chat."

    def start(self, job: BulkJob) -> None:
        self._runner.start(job, self._sink)

    async def adopt(self) -> int:
        """Housekeeping: runs every active job no live replica holds (after a restart, or when the replica running
        it died), and cancels the jobs that waited too long for their requester's sign-in."""
        adopted = await self._runner.adopt(self._sink)
        await self.expire_waiting()
        return adopted

    async def expire_waiting(self) -> int:
        """Jobs that waited longer than `BulkService.sign_in_patience` for their requester's sign-in end cancelled;
        their card says why, and the requester is told."""
        ended = await self._bulk.expire_waiting()
        for job in ended:
            await self._forget_wait(job)
            await self._results.ended_unresumed(job, self._bulk.sign_in_patience)
        return len(ended)

    async def _ask_sign_in(self, job: BulkJob) -> None:
        """The run paused: the requester gets a sign-in card privately; their sign-in resumes the job."""
        if self._sign_ins is None:
            logger.error("bulk job %s waits for its requester's sign-in, but no sign-in flow is set up", job.id)
            return
        sent = await self._sign_ins.ask_privately(
            job.requester, kind=SignInWaitKind.BULK, ref=str(job.id), what=f"the rest of bulk job {job.id}"
        )
        if not sent:
            logger.warning("bulk job %s: the sign-in card could not be sent; its card's Resume button remains", job.id)

    async def _forget_wait(self, job: BulkJob) -> None:
        if self._waits is not None and job.status is not JobStatus.WAITING_SIGN_IN:
            await self._waits.drop_sign_in_waits(job.requester.object_id.lower(), SignInWaitKind.BULK, str(job.id))

    async def wait(self, job_id: int) -> None:
        await self._runner.wait(job_id)

    async def stop(self) -> None:
        await self._runner.stop()

    async def withdraw_passes(self, method_ids: list[str], reason: RedactionReason, actor_id: str) -> None:
        """Passes revoked or replaced: off their results pages, and out of the export vault."""
        await self._results.withdraw_passes(method_ids, reason, actor_id)

    async def _remember_progress_card(self, turn: Turn, result: Started) -> None:
        """The pressed card becomes the progress card; without its id, a new progress message is posted."""
        activity = turn.context.activity
        if activity.reply_to_id and activity.conversation is not None:
            await self._bulk.remember_progress_card(
                result.job.id, activity.service_url or "", activity.conversation.id, activity.reply_to_id
            )
        else:
            await self._results.post_progress_card(result.job)


class _FlowSink:
    """The running job's sink (`BulkSink`): `BulkResults`, and the sign-in card when the run pauses for it."""

    def __init__(self, results: BulkResults, paused: Callable[[BulkJob], Awaitable[None]]) -> None:
        self._results = results
        self._paused = paused

    async def deliver_page(self, job: BulkJob, page: list[IssuedRow]) -> str | None:
        return await self._results.deliver_page(job, page)

    async def progress(self, progress: Progress) -> None:
        await self._results.progress(progress)

    async def finished(self, job: BulkJob, counts: dict[RowState, int]) -> None:
        await self._results.finished(job, counts)

    async def waiting_sign_in(self, progress: Progress) -> None:
        await self._results.waiting_sign_in(progress)
        await self._paused(progress.job)
