"""Cards of a bulk run: the preflight summary, the progress card, result pages (with passes), the final report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from microsoft_teams.cards.core import (
    CardElement,
    Column,
    ColumnSet,
    ExecuteAction,
    TextBlock,
    ToggleInput,
)

from bot.domain.bulk import BulkJob, BulkKind, BulkRow, JobStatus, Progress, RowState
from bot.domain.model import IssuedPass
from cards import verbs
from cards.formatting import format_minutes, local_and_utc
from cards.passes import CardJson, facts, heading, literal_pass, render, sentence

STATE_WORDS = {
    RowState.READY: "Ready",
    RowState.HOLDS_PASS: "Already hold a pass",
    RowState.REFUSED: "Refused",
    RowState.NOT_FOUND: "Not found",
    RowState.NO_PASS: "Hold no pass",
    RowState.PENDING: "Waiting",
    RowState.CREATING: "In progress",
    RowState.CREATED: "Created",
    RowState.DELIVERED: "Issued and sent to you",
    RowState.REVOKING: "In progress",
    RowState.REVOKED: "Revoked",
    RowState.FAILED: "Failed",
    RowState.SKIPPED: "Skipped",
    RowState.CANCELLED: "Cancelled",
}
MAX_PROBLEMS_SHOWN = 10


def _counts(counts: dict[RowState, int]) -> CardElement:
    return facts(*((STATE_WORDS[state], str(count)) for state, count in sorted(counts.items()) if count))


def preflight_card(
    job: BulkJob,
    counts: dict[RowState, int],
    problems: Sequence[BulkRow],
    duplicates: int,
    ignored_columns: Sequence[str] = (),
) -> CardJson:
    verb_word = "Issue" if job.kind is BulkKind.ISSUE else "Revoke"
    ready = counts.get(RowState.READY, 0)
    holding = counts.get(RowState.HOLDS_PASS, 0)
    body: list[CardElement] = [
        heading(f"Bulk {job.kind.value} from {job.file_name} (job {job.id})"),
        sentence("I checked every row with the same rules as a single command. Nothing has been written yet."),
        _counts(counts),
    ]
    if duplicates:
        body.append(sentence(f"{duplicates} duplicate rows were counted once.", subtle=True))
    if ignored_columns:
        shown = ", ".join(f"'{name[:40]}'" for name in ignored_columns[:8])
        body.append(sentence(f"Columns I ignored (check the spelling if one was meant): {shown}.", subtle=True))
    if problems:
        body.extend(_rows_with_reasons("Problems", problems))
    if holding:
        body.append(
            ToggleInput(
                id="replaceExisting",
                title=f"Also replace the passes {holding} users already hold (they stop working at once)",
                value="false",
                value_on="true",
                value_off="false",
            )
        )
    actions: list[ExecuteAction] = []
    if ready or holding:
        actions.append(
            ExecuteAction(
                title=f"{verb_word} {ready} passes" + (f" (+{holding})" if holding else ""),
                verb=verbs.BULK_CONFIRM,
                data={"jobId": job.id},
                style="positive",
            )
        )
    actions.append(ExecuteAction(title="Cancel", verb=verbs.BULK_CANCEL, data={"jobId": job.id}))
    return render(*body, actions=actions)


def _rows_with_reasons(title: str, rows: Sequence[BulkRow]) -> list[CardElement]:
    """The first rows that did not go through, each with its line and reason; a count of the rest."""
    shown = facts(
        *((f"Line {row.line}: {row.user_label or row.target}", row.reason) for row in rows[:MAX_PROBLEMS_SHOWN])
    )
    elements: list[CardElement] = [TextBlock(text=title, weight="Bolder", wrap=True), shown]
    if len(rows) > MAX_PROBLEMS_SHOWN:
        elements.append(sentence(f"… and {len(rows) - MAX_PROBLEMS_SHOWN} more.", subtle=True))
    return elements


def progress_card(progress: Progress) -> CardJson:
    job = progress.job
    share = progress.done / progress.total if progress.total else 1.0
    left = (
        f"about {format_minutes(max(1, round(progress.seconds_left / 60)))} left"
        if progress.seconds_left is not None and progress.seconds_left >= 60
        else (f"about {round(progress.seconds_left)} s left" if progress.seconds_left is not None else "estimating…")
    )
    cancelling = job.status is JobStatus.CANCELLING
    return render(
        heading(
            f"Bulk {job.kind.value} from {job.file_name} (job {job.id}): {'cancelling' if cancelling else 'running'}"
        ),
        TextBlock(text=_bar(share), font_type="Monospace", wrap=False),
        ColumnSet(
            columns=[
                Column(items=[TextBlock(text=f"{progress.done} of {progress.total} rows ({share:.0%})", wrap=True)]),
                Column(items=[TextBlock(text=f"{progress.rows_per_second:.1f} rows/s, {left}", wrap=True)]),
            ]
        ),
        _counts(progress.counts),
        sentence("Passes arrive in this chat in pages as they are issued.", subtle=True)
        if job.kind is BulkKind.ISSUE
        else sentence("Revoked passes stop working at once.", subtle=True),
        actions=[] if cancelling else [ExecuteAction(title="Cancel", verb=verbs.BULK_CANCEL, data={"jobId": job.id})],
    )


def final_card(job: BulkJob, counts: dict[RowState, int], failed: Sequence[BulkRow], *, can_export: bool) -> CardJson:
    title = {
        JobStatus.FINISHED: "finished",
        JobStatus.CANCELLED: "cancelled",
        JobStatus.DISCARDED: "cancelled before it started",
    }.get(job.status, job.status.value)
    body: list[CardElement] = [
        heading(f"Bulk {job.kind.value} from {job.file_name} (job {job.id}): {title}"),
        _counts(counts),
    ]
    if failed:
        body.extend(_rows_with_reasons("Failed rows", failed))
    if job.kind is BulkKind.ISSUE and counts.get(RowState.DELIVERED):
        body.append(sentence(f"To revoke these passes later: /tap revoke job {job.id}", subtle=True))
    actions: list[ExecuteAction] = []
    if failed:
        actions.append(
            ExecuteAction(title=f"Retry {len(failed)} failed rows", verb=verbs.BULK_RETRY, data={"jobId": job.id})
        )
    if can_export:
        actions.append(
            ExecuteAction(title="Send the results as a CSV file", verb=verbs.BULK_EXPORT, data={"jobId": job.id})
        )
    return render(*body, actions=actions or None)


def results_page_card(
    job: BulkJob,
    page: Sequence[tuple[BulkRow, IssuedPass]],
    *,
    card_id: str,
    page_number: int,
    tz: tzinfo,
) -> CardJson:
    """The only place bulk pass values are written: one private page of up to 50 passes."""
    rows: list[CardElement] = []
    for row, issued in sorted(page, key=lambda item: item[0].line):
        info = issued.info
        details = f"{local_and_utc(info.start_at, tz)} → {local_and_utc(info.expires_at, tz)}"
        if info.one_time:
            details += ", one-time"
        rows.append(
            ColumnSet(
                separator=True,
                columns=[
                    Column(
                        width="stretch",
                        items=[
                            TextBlock(text=row.user_label or issued.user.label, wrap=True, weight="Bolder"),
                            TextBlock(text=details, wrap=True, is_subtle=True, size="Small"),
                        ],
                    ),
                    Column(
                        width="auto",
                        items=[literal_pass(issued.secret.reveal(), element_id=None)],
                    ),
                ],
            )
        )
    return render(
        heading(f"Passes, job {job.id}, page {page_number} ({len(page)} users)"),
        *rows,
        sentence(
            "Hand each pass over through a verified channel. This card hides the passes when you press the button "
            f"below, and by itself when they expire (lifetimes: {_lifetimes(page)}).",
            subtle=True,
        ),
        actions=[ExecuteAction(title="I have handed them over", verb=verbs.HANDED_OVER, data={"cardId": card_id})],
    )


def _bar(share: float, width: int = 30) -> str:
    """A progress bar in text: Adaptive Cards 1.5 has no progress element."""
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled) + f" {share:.0%}"


def _lifetimes(page: Sequence[tuple[BulkRow, IssuedPass]]) -> str:
    values = sorted({issued.info.lifetime_minutes for _, issued in page})
    return ", ".join(format_minutes(value) for value in values)
