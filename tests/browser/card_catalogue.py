"""Which card builder produced a card the browser showed, and the size rule every card must keep.

Pure functions (no Playwright), so the coverage check in ``test_card_coverage.py`` runs without a browser.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Callable, Iterator
from typing import Any

import cards
from cards import verbs
from cards.approvals import KIND_TITLES
from cards.forms import TITLES as FORM_TITLES
from cards.verification import STATE_HEADINGS

CardJson = dict[str, Any]

MAX_CARD_BYTES_UTF16 = 80_000
"""Teams takes about 100 KB per message, counted in UTF-16; the bot's cards must stay below 80 KB."""

REDACTED_PASS_TEXT = "••••••••"


def card_builders() -> set[str]:
    """Every public ``*_card`` function defined in the ``cards`` package: the cards the bot can send."""
    names: set[str] = set()
    for module_info in pkgutil.iter_modules(cards.__path__, f"{cards.__name__}."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                name.endswith("_card")
                and not name.startswith("_")
                and inspect.isfunction(value)
                and value.__module__ == module.__name__
            ):
                names.add(name)
    return names


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def texts(card: CardJson) -> list[str]:
    return [str(element["text"]) for element in _walk(card) if isinstance(element.get("text"), str)]


def _verbs(card: CardJson) -> set[str]:
    return {str(action.get("verb")) for action in card.get("actions") or [] if isinstance(action, dict)}


def _any_text(card: CardJson, test: Callable[[str], bool]) -> bool:
    return any(test(text) for text in texts(card))


def _form_word(card: CardJson) -> str | None:
    """Which command's form this is, from its submit button (an Action.Submit naming the form in a dialog)."""
    for action in card.get("actions") or []:
        if isinstance(action, dict) and (
            action.get("verb") == verbs.SUBMIT_FORM
            or (action.get("type") == "Action.Submit" and "form" in (action.get("data") or {}))
        ):
            return (action.get("data") or {}).get("form")
    return None


_BULK_HEADING = re.compile(r"^Bulk (issue|revoke) from .+ \(job \d+\)")

CLASSIFIERS: dict[str, Callable[[CardJson], bool]] = {
    "pass_card": lambda card: any(element.get("id") == "passValue" for element in _walk(card)),
    "redacted_pass_card": lambda card: (
        _any_text(card, lambda t: t == REDACTED_PASS_TEXT)
        and _any_text(card, lambda t: t.startswith("Temporary Access Pass for"))
    ),
    "status_card": lambda card: _any_text(card, lambda t: t.startswith("Pass status for")),
    "replace_question_card": lambda card: verbs.CONFIRM_REPLACE in _verbs(card),
    "replace_settled_card": lambda card: _any_text(card, lambda t: t.startswith("Existing pass for")),
    "policy_card": lambda card: _any_text(card, lambda t: t == "Temporary Access Pass policy"),
    "help_card": lambda card: _any_text(card, lambda t: t.startswith("tapbot: Temporary Access Passes")),
    "approval_request_card": lambda card: verbs.APPROVE in _verbs(card),
    "decided_request_card": lambda card: _any_text(
        card, lambda t: any(t.startswith(f"{title}: ") for title in KIND_TITLES.values())
    ),
    "requests_card": lambda card: _any_text(card, lambda t: t in ("Pending requests", "Your requests")),
    "preflight_card": lambda card: _any_text(card, lambda t: bool(_BULK_HEADING.match(t)) and ": " not in t),
    "progress_card": lambda card: _any_text(
        card, lambda t: bool(_BULK_HEADING.match(t)) and t.endswith((": running", ": cancelling", ": paused"))
    ),
    "final_card": lambda card: _any_text(
        card,
        lambda t: (
            bool(_BULK_HEADING.match(t)) and ": " in t and not t.endswith((": running", ": cancelling", ": paused"))
        ),
    ),
    "results_page_card": lambda card: _any_text(card, lambda t: t.startswith("Passes, job ")),
    "people_choice_card": lambda card: any(element.get("verb") == verbs.CHOOSE_PERSON for element in _walk(card)),
    "chosen_card": lambda card: _any_text(card, lambda t: t.startswith("Chose ")),
    "issue_form_card": lambda card: _form_word(card) == "issue",
    "onboard_form_card": lambda card: _form_word(card) == "onboard",
    "form_settled_card": lambda card: _any_text(
        card, lambda t: t.endswith(": sent") and t.removesuffix(": sent") in FORM_TITLES.values()
    ),
    "tracking_card": lambda card: _any_text(
        card, lambda t: any(t.startswith(f"{heading}: ") for heading in STATE_HEADINGS.values())
    ),
    "attestation_card": lambda card: verbs.VERIFY_CONFIRM in _verbs(card),
    "alert_card": lambda card: _any_text(card, lambda t: t.startswith("Security alert: ")),
    "magic_code_card": lambda card: _any_text(card, lambda t: "then type the 6-digit code here" in t),
    "attestation_settled_card": lambda card: (
        _any_text(card, lambda t: t.startswith("Is this really ")) and verbs.VERIFY_CONFIRM not in _verbs(card)
    ),
}
"""How to tell, from the JSON the page rendered, which builder of ``cards/`` made a card."""


def kinds_of(card: CardJson) -> set[str]:
    return {name for name, matches in CLASSIFIERS.items() if matches(card)}


def utf16_size(card: CardJson) -> int:
    """Bytes of the card's JSON in UTF-16, the unit Teams counts a message's size in."""
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-16-le"))
