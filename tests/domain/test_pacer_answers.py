"""Answers that arrive out of admission order: each finds its own entry in a long window, wherever it is."""

from __future__ import annotations

from bot.domain.pacer import Dimension, Limit

WINDOW_S = 150.0


def dimension() -> Dimension:
    return Dimension(Limit("writes", WINDOW_S, 3_000))


def test_an_old_request_answered_late_counts_from_its_answer_and_the_rest_keep_their_admission() -> None:
    writes = dimension()
    for second in range(100):  # a bulk job's window: one admitted per second
        writes.take(float(second), 1)
    writes.restamp(3.0, 1, 120.0)  # admitted early, answered late
    writes.refund(50.0, 1)  # refused: counts against nothing
    assert writes.used(120.0) == 99
    # At 153 s the entries admitted up to 3 s have left the window, except the restamped one.
    assert writes.used(153.0) == 99 - 3
    assert writes.used(269.9) == 1
    assert writes.used(270.0) == 0


def test_entries_admitted_at_the_same_moment_go_one_per_answer() -> None:
    writes = dimension()
    for _ in range(3):
        writes.take(10.0, 2)
    writes.take(11.0, 2)
    writes.refund(10.0, 2)
    assert writes.used(11.0) == 6
    writes.restamp(10.0, 2, 12.0)
    writes.restamp(10.0, 2, 13.0)
    assert writes.used(160.5) == 6  # the two restamped and the one admitted at 11 s
    assert writes.used(161.0) == 4
    writes.refund(10.0, 2)  # nothing admitted at 10 s is left: changes nothing
    assert writes.used(161.0) == 4
    assert writes.used(163.0) == 0


def test_an_answer_for_an_entry_no_longer_in_the_window_changes_nothing() -> None:
    writes = dimension()
    writes.take(0.0, 1)
    writes.take(100.0, 1)
    assert writes.used(200.0) == 1  # the first slid out
    writes.restamp(0.0, 1, 200.0)
    writes.refund(0.0, 1)
    assert writes.used(200.0) == 1
    assert writes.used(250.0) == 0
