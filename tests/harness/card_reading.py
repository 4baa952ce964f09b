"""Reading what a person would read on the bot's cards (the pass values included) in tests."""

from __future__ import annotations

from typing import Any


def _text_of(element: dict[str, Any]) -> str:
    if element.get("type") == "RichTextBlock":
        return "".join(run.get("text", "") for run in element.get("inlines", []))
    return str(element.get("text", ""))


def pass_value(card: dict[str, Any]) -> str:
    """The pass on a single pass card."""
    for container in card["body"]:
        for item in container.get("items", []):
            if item.get("id") == "passValue":
                return _text_of(item)
    raise AssertionError("no pass on this card")


def page_secrets(page: dict[str, Any]) -> dict[str, str]:
    """user label → pass value, as printed on a bulk results page."""
    found: dict[str, str] = {}
    for element in page["body"]:
        if element.get("type") == "ColumnSet":
            label = _text_of(element["columns"][0]["items"][0])
            found[label] = _text_of(element["columns"][1]["items"][0])
    return found
