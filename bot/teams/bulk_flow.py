"""Bulk runs in Teams: the attached file, the preflight card, and the buttons of a job (confirm, cancel, retry).

A job runs in the background (the HTTP answer to Teams is immediate) on the domain's `BulkRunner`; its state is in
SQL, so after a restart `adopt` picks every unfinished job up again. What the running job shows (progress, result
pages, the final card) is `bulk_results.py`; the results file is `bulk_export.py`.

Every button names a job: only the operator who ran it may press it, in their personal chat. Refusals (`TapError`)
and damaged button data are answered by `Turns` (turn.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from microsoft_agents.activity import Activity, AdaptiveCardInvokeResponse
from microsoft_agents.hosting.core.app.adaptive_card import factory

from bot.domain.approvals import ApprovalRequest
from bot.domain.bulk import BulkJob, BulkKind, JobStatus
from bot.domain.bulk_file import read_bulk_file
from bot.domain.bulk_runner import BulkRunner
from bot.domain.bulk_service import BulkService, Checked, Started, WaitingForApproval
from bot.domain.ports import Clock, FileTransfers
from bot.domain.reasons import split_reason
from bot.domain.records import RedactionReason
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
                checked.job, checked.counts, checked.problems, checked.duplicates, checked.ignored_columns
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
        if job.status is JobStatus.CANCELLING:
            return turn.card_answer(await self._results.first_progress_card(job))
        return turn.card_answer(final_card(job, await self._bulk.counts(job.id), [], can_export=False))

    async def on_retry(self, turn: Turn, data: object) -> AdaptiveCardInvokeResponse:
        button = JobButton.parse(data)
        if not is_personal(turn.context.activity):
            return factory.message(PERSONAL_ONLY)
        checked = await self._bulk.check_failed_rows(turn.caller, button.job_id)
        await self._send_preflight(turn, checked)
        retried = sum(checked.counts.values())
        return factory.message(f"I checked the {retried} failed rows again; confirm on the new card.")

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
        self._runner.start(job, self._results)

    async def adopt(self) -> int:
        """Runs every active job no live replica holds: after a restart, or when the replica running it died."""
        return await self._runner.adopt(self._results)

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
