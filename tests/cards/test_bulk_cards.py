"""The bulk cards read right in every case: singular and plural, the replace switch on or off, passes withdrawn."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.bulk import BulkJob, BulkKind, IssuedRow, JobStatus, JournalRow, RowState
from bot.domain.model import DirectoryUser, IssuedPass, PassInfo, PassSecret, Recipient, UsabilityReason
from cards import verbs
from cards.bulk import final_card, preflight_card, results_page_card
from cards.passes import CardJson, with_banner
from tests.harness.card_schema import assert_valid_card

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
REQUESTER = Recipient("a", "t", "Adele Vance", "29:a", "https://smba.example/", "28:bot")


def job(kind: BulkKind = BulkKind.ISSUE) -> BulkJob:
    return BulkJob(7, kind, JobStatus.CHECKED, REQUESTER, "users.csv", "Europe/Berlin", NOW)


def texts(card: CardJson) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "title") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def confirm(card: CardJson) -> dict[str, Any]:
    [action] = [action for action in card["actions"] if action["verb"] == verbs.BULK_CONFIRM]
    return action


def switch(card: CardJson) -> dict[str, Any] | None:
    return next((element for element in card["body"] if element.get("type") == "Input.Toggle"), None)


def preflight(ready: int, kind: BulkKind = BulkKind.ISSUE, duplicates: int = 0, *, replacing: bool = False) -> CardJson:
    counts = {RowState.READY: ready} if ready else {}
    card = preflight_card(job(kind), counts, [], duplicates, replacing=replacing)
    assert_valid_card(card)
    assert_valid_card(with_banner(card))
    return card


@pytest.mark.parametrize(("ready", "button"), [(13, "Issue 13 passes"), (1, "Issue 1 pass")])
def test_the_issue_button_and_the_replace_switch_on_every_issue_file(ready: int, button: str) -> None:
    card = preflight(ready)
    assert confirm(card)["title"] == button
    assert "replaceExisting" not in confirm(card)["data"], "off unless the switch is turned on"
    toggle = switch(card)
    assert toggle is not None and (toggle["id"], toggle["value"]) == ("replaceExisting", "false")
    # Who holds a pass is read by the run: the switch says what it does, with the check's time, not how many.
    assert toggle["title"] == (
        "Replace a pass a user already holds if it was created before this check (Thu 26 Nov 2026, 14:00 "
        "(Europe/Berlin) · 13:00 UTC); it stops working at once"
    )
    assert any("A pass created after this check is never replaced" in text for text in texts(card))


def test_rows_asked_for_again_to_replace_their_passes_have_the_switch_on() -> None:
    toggle = switch(preflight(4, replacing=True))
    assert toggle is not None and toggle["value"] == "true"
    assert "replaceExisting" not in confirm(preflight(4, replacing=True))["data"], "the switch decides, as shown"


def test_revoke_and_duplicates_in_the_singular() -> None:
    card = preflight(1, BulkKind.REVOKE, duplicates=1)
    assert confirm(card)["title"] == "Revoke 1 pass"
    assert switch(card) is None, "a revoke file replaces nothing"
    assert "1 duplicate row counted once." in texts(card)
    assert "2 duplicate rows counted once." in texts(preflight(2, duplicates=2))


def test_nothing_to_confirm_leaves_only_cancel() -> None:
    card = preflight_card(job(), {RowState.REFUSED: 2}, [], 0)
    assert [action["verb"] for action in card["actions"]] == [verbs.BULK_CANCEL]


def issued(number: int, secret: str) -> IssuedRow:
    user = DirectoryUser(f"u{number}", f"user{number}@contoso.com", f"User {number}")
    info = PassInfo(f"method-{number}", NOW, NOW, 480, False, True, UsabilityReason.ENABLED_BY_POLICY)
    return IssuedRow(
        row=JournalRow(7, number, user.user_principal_name, RowState.CREATED, user_label=user.label),
        issued=IssuedPass(user, info, PassSecret(secret)),
    )


def test_a_results_page_shows_withdrawn_passes_without_their_values() -> None:
    page = [issued(1, "=Secret1"), issued(2, "+Secret2"), issued(3, "@Secret3")]
    tz = ZoneInfo("Asia/Tokyo")
    full = results_page_card(job(), page, card_id="c", page_number=1, tz=tz)
    shown = results_page_card(job(), page, card_id="c", page_number=1, tz=tz, withdrawn={"method-2": "revoked"})
    for card in (full, shown):
        assert_valid_card(card)
        assert_valid_card(with_banner(card))
    assert all(secret in json.dumps(full) for secret in ("=Secret1", "+Secret2", "@Secret3"))
    assert "+Secret2" not in json.dumps(shown) and "=Secret1" in json.dumps(shown) and "@Secret3" in json.dumps(shown)
    assert any(text.endswith("revoked") for text in texts(shown))
    assert "Passes, job 7, page 1 (3 users)" in texts(full)
    assert "Passes, job 7, page 1 (1 user)" in texts(
        results_page_card(job(), page[:1], card_id="c", page_number=1, tz=tz)
    )


def test_the_final_card_offers_to_replace_the_passes_of_skipped_rows() -> None:
    held = [
        JournalRow(
            7, line, f"u{line}@contoso.com", RowState.SKIPPED, reason="Holds a pass created 2026-11-26 13:05 UTC"
        )
        for line in (2, 3)
    ]
    card = final_card(job(), {RowState.DELIVERED: 3, RowState.SKIPPED: 2}, [], can_export=False, held=held)
    assert_valid_card(card)
    [action] = card["actions"]
    assert (action["title"], action["verb"], action["data"]) == (
        "Replace these 2",
        verbs.BULK_REPLACE_HELD,
        {"jobId": 7},
    )
    assert "Skipped: they hold a pass" in texts(card)
    assert "Holds a pass created 2026-11-26 13:05 UTC" in json.dumps(card)
    assert not final_card(job(), {RowState.DELIVERED: 3}, [], can_export=False).get("actions"), "none held: no button"


def test_the_final_card_counts_failed_rows_in_the_singular() -> None:
    failed = [JournalRow(7, 2, "x@contoso.com", RowState.FAILED, reason="Graph said no.")]
    card = final_card(job(), {RowState.DELIVERED: 3, RowState.FAILED: 1}, failed, can_export=True)
    assert_valid_card(card)
    titles = [action["title"] for action in card["actions"]]
    assert titles == ["Retry 1 failed row", "Send the results as an Excel file"]
