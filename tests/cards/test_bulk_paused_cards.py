"""The progress card of a run paused for its requester's sign-in, and the final card of one that ended unresumed."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.bulk import JobStatus, Progress, RowState
from cards import verbs
from cards.bulk import final_card, progress_card
from cards.passes import with_banner
from tests.cards.test_bulk_cards import job, texts
from tests.harness.card_schema import assert_valid_card


def test_a_paused_run_says_why_how_far_and_keeps_cancel() -> None:
    paused = replace(job(), status=JobStatus.WAITING_SIGN_IN)
    counts = {RowState.DELIVERED: 12, RowState.PENDING: 18}
    card = progress_card(Progress(paused, counts, 30, 12, 0.0, None, 0))
    assert_valid_card(card)
    assert_valid_card(with_banner(card))
    shown = texts(card)
    assert "Bulk issue from users.csv (job 7): paused" in shown
    assert "Your sign-in to tapbot has lapsed; sign in again to continue — 12 of 30 done." in shown
    assert [action["verb"] for action in card["actions"]] == [verbs.BULK_RESUME, verbs.BULK_CANCEL]
    assert [action["data"]["jobId"] for action in card["actions"]] == [7, 7]
    assert not any("rows/s" in text for text in shown), "no rate or time left while nothing runs"


def test_a_job_that_waited_too_long_says_so_on_its_final_card() -> None:
    ended = replace(job(), status=JobStatus.CANCELLED)
    note = "Cancelled: you did not sign in again within 24 hours of the pause; 18 rows were not run."
    card = final_card(ended, {RowState.DELIVERED: 12, RowState.CANCELLED: 18}, [], can_export=False, note=note)
    assert_valid_card(card)
    assert "Bulk issue from users.csv (job 7): cancelled" in texts(card) and note in texts(card)
