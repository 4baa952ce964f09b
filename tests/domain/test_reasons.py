"""The reason rules (bot/domain/reasons.py): what a reason must hold, and how it is cleaned."""

from __future__ import annotations

import re

import pytest

from bot.domain.reasons import MAX_REASON_LENGTH, ReasonRefused, ReasonRules, clean_reason, split_reason

TICKETS = ReasonRules(ticket_pattern=re.compile(r"INC\d{7}"), ticket_example="INC0012345")


def test_no_rules_accept_anything_up_to_the_length_cap() -> None:
    rules = ReasonRules()
    assert rules.problem("") is None and rules.problem("x" * MAX_REASON_LENGTH) is None
    assert rules.problem("x" * (MAX_REASON_LENGTH + 1)) == (
        f"A reason can be at most {MAX_REASON_LENGTH} characters long; yours has {MAX_REASON_LENGTH + 1}. "
        "Shorten it, e.g. to the ticket number and a few words."
    )


def test_required_reasons_and_ticket_numbers_say_what_to_write() -> None:
    assert ReasonRules(required=True).problem("  \n ") == 'Give a reason, for example: reason "INC0012345 lost phone".'
    assert TICKETS.problem("") == (
        'Give a reason with a ticket number like INC0012345, for example: reason "INC0012345 lost phone".'
    )
    assert TICKETS.problem("lost phone") == (
        'Give a reason with a ticket number like INC0012345; "lost phone" has none. '
        'For example: reason "INC0012345 lost phone".'
    )
    assert TICKETS.problem("lost phone, INC0012345") is None
    no_example = ReasonRules(ticket_pattern=re.compile(r"RITM\d+"))
    assert no_example.problem("x") == (
        r'Give a reason with a ticket number (matching RITM\d+); "x" has none. '
        'For example: reason "<ticket number> lost phone".'
    )


def test_check_returns_the_cleaned_reason_or_refuses() -> None:
    assert TICKETS.check("  INC0012345\tlost\r\nphone\u202e ") == "INC0012345 lost phone"
    with pytest.raises(ReasonRefused, match="ticket number"):
        TICKETS.check("lost phone")


def test_cleaning_keeps_the_text_and_drops_what_could_break_a_card_or_a_line() -> None:
    assert clean_reason("=1+1 **bold** [x](http://e)") == "=1+1 **bold** [x](http://e)", "never interpreted"
    assert clean_reason("a\x00b\u2028c\u200bd") == "a b c d"
    assert clean_reason(None) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('revoke reason "INC0012345 left"', ("revoke", "INC0012345 left")),
        ("reason INC0012345 migration wave 2", ("", "INC0012345 migration wave 2")),
        ("Reason: “INC0012345 move”", ("", "INC0012345 move")),
        ("here is the file", ("here is the file", "")),
        ("the reasonable list", ("the reasonable list", "")),
        ('reason "revoke everyone later"', ("", "revoke everyone later")),
    ],
)
def test_split_reason_of_a_file_message(text: str, expected: tuple[str, str]) -> None:
    assert split_reason(text) == expected
