"""Cards of a bulk run: the preflight summary, the progress card, result pages (with passes), the final report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_teams.cards.core import (
    ActionStyle,
    CardElement,
    Column,
    ColumnSet,
    ExecuteAction,
    TextBlock,
    ToggleInput,
)

from bot.domain.bulk import BulkJob, BulkKind, IssuedRow, JobStatus, JournalRow, Progress, RowState
from cards import verbs
from cards.buttons import ConfirmJobButton, HandedOverButton, JobButton
from cards.formatting import format_minutes, local_and_utc
from cards.passes import CardJson, facts, heading, literal_pass, render, sentence
from cards.reasons import reason_block

STATE_WORDS = {
    RowState.READY: "Ready",
    RowState.HOLDS_PASS: "Already hold a pass",  # jobs checked before the run read the passes itself
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
    RowState.SKIPPED: "Skipped: hold a pass",
    RowState.CANCELLED: "Cancelled",
}
MAX_PROBLEMS_SHOWN = 10
WITHDRAWN_TEXT = "••••••••"


def _counts(counts: dict[RowState, int]) -> CardElement:
    return facts(*((STATE_WORDS[state], str(count)) for state, count in sorted(counts.items()) if count))


def preflight_card(
    job: BulkJob,
    counts: dict[RowState, int],
    problems: Sequence[JournalRow],
    duplicates: int,
    ignored_columns: Sequence[str] = (),
    *,
    replacing: bool = False,
) -> CardJson:
    """`replacing`: the rows of an earlier job that were skipped for holding a pass (Replace these N): the replace
    switch starts on."""
    ready = counts.get(RowState.READY, 0)
    body: list[CardElement] = [
        heading(f"Bulk {job.kind.value} from {job.file_name} (job {job.id})"),
        sentence("I checked every row with the same rules as a single command. Nothing has been written yet."),
        _counts(counts),
    ]
    if job.reason:
        body.append(reason_block(job.reason, label="Reason for rows without their own"))
    if duplicates:
        body.append(sentence(f"{_number(duplicates, 'duplicate row')} counted once.", subtle=True))
    if ignored_columns:
        shown = ", ".join(f"'{name[:40]}'" for name in ignored_columns[:8])
        body.append(sentence(f"Columns I ignored (check the spelling if one was meant): {shown}.", subtle=True))
    if problems:
        body.extend(_rows_with_reasons("Problems", problems))
    actions: list[ExecuteAction] = []
    if ready and job.kind is BulkKind.ISSUE:
        # Who holds a pass is read by the run, right before each create (under the user's lock), so the card cannot
        # count them: the switch says what it does to any pass it finds.
        checked = local_and_utc(job.created_at, _zone(job.timezone))
        # Replace these N: the cutoff is when the earlier job ended (the passes its final card listed).
        before = f"the earlier job ended ({checked})" if replacing else f"this check ({checked})"
        body.append(
            ToggleInput(
                id="replaceExisting",
                title=f"Replace a pass a user already holds if it was created before {before}; "
                "it stops working at once",
                value="true" if replacing else "false",
                value_on="true",
                value_off="false",
                wrap=True,
            )
        )
        body.append(
            sentence(
                f"A pass created after {'that' if replacing else 'this check'} is never replaced. With the switch off, "
                "users who hold a pass are skipped, and the job's final card offers to replace theirs.",
                subtle=True,
            )
        )
        actions.append(_confirm(f"Issue {_number(ready, 'pass')}", ConfirmJobButton(job.id)))
    elif ready:
        actions.append(_confirm(f"Revoke {_number(ready, 'pass')}", ConfirmJobButton(job.id)))
    actions.append(ExecuteAction(title="Cancel", verb=verbs.BULK_CANCEL, data=JobButton(job.id).data()))
    return render(*body, actions=actions)


def _confirm(title: str, button: ConfirmJobButton, style: ActionStyle = "positive") -> ExecuteAction:
    return ExecuteAction(title=title, verb=verbs.BULK_CONFIRM, data=button.data(), style=style)


def _number(count: int, noun: str) -> str:
    """'1 pass', '13 passes', '1 duplicate row', '2 duplicate rows'."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}es" if noun.endswith("s") else f"{count} {noun}s"


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _rows_with_reasons(title: str, rows: Sequence[JournalRow]) -> list[CardElement]:
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
    if job.status is JobStatus.WAITING_SIGN_IN:
        return _paused_card(progress)
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
        actions=[]
        if cancelling
        else [ExecuteAction(title="Cancel", verb=verbs.BULK_CANCEL, data=JobButton(job.id).data())],
    )


SIGN_IN_LAPSED = "Your sign-in to tapbot has lapsed; sign in again to continue"


def _paused_card(progress: Progress) -> CardJson:
    """The progress card of a run waiting for its requester's sign-in (delegated writes): why, how far, Cancel."""
    job = progress.job
    share = progress.done / progress.total if progress.total else 1.0
    return render(
        heading(f"Bulk {job.kind.value} from {job.file_name} (job {job.id}): paused"),
        TextBlock(text=_bar(share), font_type="Monospace", wrap=False),
        sentence(f"{SIGN_IN_LAPSED} — {progress.done} of {progress.total} done."),
        _counts(progress.counts),
        sentence(
            "I sent you a sign-in card in this chat. Once you sign in, the job goes on from where it stopped: the rows "
            "not yet written wait, none is written twice. Signed in some other way since? Press Resume.",
            subtle=True,
        ),
        actions=[
            ExecuteAction(title="Resume", verb=verbs.BULK_RESUME, data=JobButton(job.id).data(), style="positive"),
            ExecuteAction(title="Cancel", verb=verbs.BULK_CANCEL, data=JobButton(job.id).data()),
        ],
    )


def final_card(
    job: BulkJob,
    counts: dict[RowState, int],
    failed: Sequence[JournalRow],
    *,
    can_export: bool,
    note: str | None = None,
    held: Sequence[JournalRow] = (),
) -> CardJson:
    """`held`: the rows skipped because their user holds a pass this job could not replace; the card lists them and
    offers to replace those passes in a new job (checked again, confirmed on its own card)."""
    title = {
        JobStatus.FINISHED: "finished",
        JobStatus.CANCELLED: "cancelled",
        JobStatus.DISCARDED: "cancelled before it started",
    }.get(job.status, job.status.value)
    body: list[CardElement] = [
        heading(f"Bulk {job.kind.value} from {job.file_name} (job {job.id}): {title}"),
        _counts(counts),
    ]
    if note:
        body.append(sentence(note))
    if failed:
        body.extend(_rows_with_reasons("Failed rows", failed))
    if held:
        body.extend(_rows_with_reasons("Skipped: they hold a pass", held))
    if job.kind is BulkKind.ISSUE and counts.get(RowState.DELIVERED):
        body.append(sentence(f"To revoke these passes later: /tap revoke job {job.id}", subtle=True))
    actions: list[ExecuteAction] = []
    if failed:
        actions.append(
            ExecuteAction(
                title=f"Retry {_number(len(failed), 'failed row')}",
                verb=verbs.BULK_RETRY,
                data=JobButton(job.id).data(),
            )
        )
    if held and job.kind is BulkKind.ISSUE:
        actions.append(
            ExecuteAction(
                title=f"Replace these {len(held)}",
                verb=verbs.BULK_REPLACE_HELD,
                data=JobButton(job.id).data(),
            )
        )
    if can_export:
        actions.append(
            ExecuteAction(
                title="Send the results as an Excel file", verb=verbs.BULK_EXPORT, data=JobButton(job.id).data()
            )
        )
    return render(*body, actions=actions or None)


def results_page_card(
    job: BulkJob,
    page: Sequence[IssuedRow],
    *,
    card_id: str,
    page_number: int,
    tz: tzinfo,
    withdrawn: Mapping[str, str] | None = None,
) -> CardJson:
    """The only place bulk pass values are written: one private page of up to 50 passes.

    `withdrawn` maps the pass method ids that were revoked or replaced since to that word: their rows stay, marked,
    without the value.
    """
    withdrawn = withdrawn or {}
    rows: list[CardElement] = []
    for entry in sorted(page, key=lambda entry: entry.row.line):
        row, issued = entry.row, entry.issued
        info = issued.info
        details = f"{local_and_utc(info.start_at, tz)} → {local_and_utc(info.expires_at, tz)}"
        if info.one_time:
            details += ", one-time"
        gone = withdrawn.get(info.method_id)
        shown: CardElement = (
            TextBlock(text=f"{WITHDRAWN_TEXT} {gone}", font_type="Monospace", is_subtle=True, wrap=True)
            if gone
            else literal_pass(issued.secret.reveal(), element_id=None)
        )
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
                    Column(width="auto", items=[shown]),
                ],
            )
        )
    return render(
        heading(f"Passes, job {job.id}, page {page_number} ({_number(len(page), 'user')})"),
        *rows,
        sentence(
            f"Hand each pass over through a verified channel. This card hides {'it' if len(page) == 1 else 'them'} "
            f"when you press the button below, and by itself when {'it expires' if len(page) == 1 else 'they expire'} "
            f"(lifetimes: {_lifetimes(page)}).",
            subtle=True,
        ),
        actions=[
            ExecuteAction(
                title="I have handed them over",
                verb=verbs.HANDED_OVER,
                data=HandedOverButton(card_id).data(),
            )
        ],
    )


def _bar(share: float, width: int = 30) -> str:
    """A progress bar in text: Adaptive Cards 1.5 has no progress element."""
    filled = round(max(0.0, min(1.0, share)) * width)
    return "█" * filled + "░" * (width - filled) + f" {share:.0%}"


def _lifetimes(page: Sequence[IssuedRow]) -> str:
    values = sorted({entry.issued.info.lifetime_minutes for entry in page})
    return ", ".join(format_minutes(value) for value in values)
