"""The "Which Megan?" card, its button data, and the sentences about finding a person."""

from __future__ import annotations

import pytest

from bot.domain.model import DirectoryUser
from bot.domain.people import NoPerson
from cards import verbs
from cards.buttons import BadButtonData, ChoosePersonButton
from cards.passes import status_card
from cards.people import chosen_card, no_person_sentence, people_choice_card, person_line
from tests.harness.card_schema import assert_valid_card

ADELE_ID = "884f0a7d-eeec-4d58-b136-0634982d6c8f"
BOWEN = DirectoryUser(
    "6832c635-8862-4324-872b-4990d834254a", "MeganB@contoso.test", "Megan Bowen", department="Marketing",
    job_title="Marketing Manager",
)  # fmt: skip
FISCHER = DirectoryUser("b7d3c2a1-5e4f-4a8b-9c6d-2f1e0a9b8c7d", "MeganF@contoso.test", "Megan Fischer")


def buttons(card: dict[str, object]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("verb") == verbs.CHOOSE_PERSON:
                found.append(node)  # type: ignore[arg-type]
            for value in node.values():  # type: ignore[union-attr]
                walk(value)
        elif isinstance(node, list):
            for item in node:  # type: ignore[union-attr]
                walk(item)

    walk(card)
    return found


def test_the_choice_card_has_one_button_per_candidate_carrying_the_command() -> None:
    commands = [f"/tap issue {BOWEN.object_id} 120m", f"/tap issue {FISCHER.object_id} 120m"]
    card = people_choice_card("Megan", [BOWEN, FISCHER], commands, more=False, offered_to=ADELE_ID)
    assert_valid_card(card)
    pressed = [ChoosePersonButton.parse(button["data"]) for button in buttons(card)]
    assert [button.command for button in pressed] == commands
    assert pressed[0].label == "Megan Bowen (MeganB@contoso.test) · Marketing · Marketing Manager"
    assert {button.offered_to for button in pressed} == {ADELE_ID}
    assert "Narrow it down" not in str(card)
    assert "Narrow it down" in str(people_choice_card("M", [BOWEN], commands[:1], more=True, offered_to=ADELE_ID))
    assert_valid_card(chosen_card(pressed[0].label))


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"command": "/tap issue x"},
        {"command": "", "offeredTo": ADELE_ID},
        {"command": "x" * 601, "offeredTo": ADELE_ID},
        {"command": "/tap issue x", "offeredTo": "adele"},
        {"command": ["/tap"], "offeredTo": ADELE_ID},
    ],
)
def test_damaged_choice_data_is_refused(data: object) -> None:
    with pytest.raises(BadButtonData):
        ChoosePersonButton.parse(data)


def test_no_person_sentences_say_what_was_searched() -> None:
    assert "Check the spelling" in no_person_sentence("Zed", NoPerson(()))
    by_word = no_person_sentence("Megan Smith", NoPerson((BOWEN,), "Megan"))
    assert "has the word 'Megan'" in by_word and person_line(BOWEN) in by_word
    assert "starts with 'Meg'" in no_person_sentence("Meggan", NoPerson((BOWEN,), "Meg", prefix=True))
    reports = no_person_sentence("Adele", NoPerson((BOWEN,), among_reports=True))
    assert reports.startswith("None of your direct reports is called 'Adele'")
    assert "…" in no_person_sentence("x" * 100, NoPerson(()))


def test_cards_about_a_pass_name_the_department_and_job_title() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.domain.service import PassStatus

    card = status_card(PassStatus(BOWEN, None, datetime(2026, 11, 26, tzinfo=UTC)), tz=ZoneInfo("UTC"))
    assert "Marketing · Marketing Manager" in str(card)
    assert " · " not in str(status_card(PassStatus(FISCHER, None, datetime(2026, 11, 26, tzinfo=UTC)), tz=UTC))
