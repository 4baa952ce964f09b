"""Button data is built and parsed in one place: what a card carries parses back, anything else is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cards.buttons import (
    MAX_ID,
    BadButtonData,
    ConfirmJobButton,
    DecisionButton,
    HandedOverButton,
    JobButton,
    KeepButton,
    ReplaceButton,
)

CARD_ID = "0b7f7a7e-54d4-4a39-9a43-1f5a0b0f2f11"
REPLACE = {"target": "a@b.c", "lifetimeMinutes": 60, "replaceMethodId": "m"}
BUTTONS: list[Any] = [
    JobButton(5),
    JobButton(MAX_ID),
    ConfirmJobButton(5),
    ConfirmJobButton(5, replace_existing=True),
    HandedOverButton(CARD_ID),
    DecisionButton(CARD_ID),
    KeepButton("Megan Bowen (MeganB@contoso.onmicrosoft.com)"),
    ReplaceButton(
        "MeganB@contoso.onmicrosoft.com", "Megan", 120, True, "a1b2-c3", datetime(2026, 12, 1, 8, tzinfo=UTC)
    ),
    ReplaceButton("6832c635-8862-4324-872b-4990d834254a", "Megan", 60, False, "m1"),
]


@pytest.mark.parametrize("button", BUTTONS, ids=repr)
def test_what_a_card_carries_parses_back(button: Any) -> None:
    assert type(button).parse(button.data()) == button


def test_the_switch_and_the_note_come_from_the_card_inputs() -> None:
    assert ConfirmJobButton.parse({"jobId": 5, "replaceExisting": "true"}) == ConfirmJobButton(5, True)
    assert ConfirmJobButton.parse({"jobId": "5", "replaceExisting": "false"}) == ConfirmJobButton(5, False)
    assert DecisionButton.parse({"requestId": CARD_ID, "note": "welcome"}).note == "welcome"
    assert len(DecisionButton.parse({"requestId": CARD_ID, "note": "x" * 9000}).note) == 500


@pytest.mark.parametrize(
    ("parser", "data"),
    [
        (JobButton.parse, [1]),
        (JobButton.parse, {"jobId": [1]}),
        (JobButton.parse, {"jobId": {"a": 1}}),
        (JobButton.parse, {"jobId": MAX_ID + 1}),
        (JobButton.parse, {"jobId": 2**63}),
        (JobButton.parse, {"jobId": "9" * 30}),
        (JobButton.parse, {"jobId": 0}),
        (JobButton.parse, {"jobId": True}),
        (JobButton.parse, {"jobId": "١٢"}),
        (JobButton.parse, {}),
        (ConfirmJobButton.parse, {"jobId": 1, "replaceExisting": ["true"]}),
        (HandedOverButton.parse, {"cardId": "../../etc"}),
        (HandedOverButton.parse, {"cardId": None}),
        (DecisionButton.parse, {"requestId": CARD_ID, "note": 5}),
        (ReplaceButton.parse, {"target": "not a user", "lifetimeMinutes": 60, "replaceMethodId": "m"}),
        (ReplaceButton.parse, {"target": "a@b.c", "lifetimeMinutes": 0, "replaceMethodId": "m"}),
        (ReplaceButton.parse, {"target": "a@b.c", "lifetimeMinutes": 60}),
        (ReplaceButton.parse, {**REPLACE, "startAt": "now"}),
        (
            ReplaceButton.parse,
            {**REPLACE, "startAt": "2026-12-01T08:00"},
        ),
        (
            ReplaceButton.parse,
            {**REPLACE, "startAt": "0001-01-01T00:00Z"},
        ),
    ],
)
def test_anything_else_is_refused_with_a_sentence(parser: Any, data: Any) -> None:
    with pytest.raises(BadButtonData) as refused:
        parser(data)
    assert "damaged" in refused.value.sentence
