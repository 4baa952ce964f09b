"""Every card the bot can send is shown in a browser by one of the scenarios of ``test_tapbot_in_browser.py``.

Runs without a browser: it compares the card builders of ``cards/`` with what the scenarios declare in
``CARDS_BY_TEST`` (each scenario checks, in the browser, that it showed the cards it declares). A new card builder
fails here until a browser scenario shows it and ``card_catalogue.CLASSIFIERS`` can recognise it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.browser.card_catalogue import CLASSIFIERS, card_builders

SCENARIOS = Path(__file__).with_name("test_tapbot_in_browser.py")


def declared_cards_by_test() -> dict[str, set[str]]:
    """``CARDS_BY_TEST`` read from the scenario module's source (importing it needs Playwright)."""
    for node in ast.parse(SCENARIOS.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "CARDS_BY_TEST" for t in targets) and node.value is not None:
                return ast.literal_eval(node.value)
    raise AssertionError(f"no CARDS_BY_TEST in {SCENARIOS}")


def test_every_card_builder_can_be_recognised_on_the_page() -> None:
    assert card_builders() == set(CLASSIFIERS), "add a classifier to tests/browser/card_catalogue.py"


def test_every_card_builder_is_shown_by_a_browser_scenario() -> None:
    declared = declared_cards_by_test()
    shown = set().union(*declared.values())
    assert card_builders() - shown == set(), "render the missing cards in a test of test_tapbot_in_browser.py"
    assert shown <= card_builders()


def test_every_declaring_scenario_exists() -> None:
    source = SCENARIOS.read_text(encoding="utf-8")
    for name in declared_cards_by_test():
        assert f"async def {name}(" in source
