"""How a reason someone typed appears on a card (approval requests, status, the replace question, bulk preflight)."""

from __future__ import annotations

from microsoft_teams.cards.core import RichTextBlock, TextRun


def reason_block(reason: str, *, label: str = "Reason") -> RichTextBlock:
    """A reason shown as plain text: a TextBlock or a fact would read '[x](…)' as a link and '**x**' as bold, and a
    reason is never interpreted. An empty reason reads "None given"."""
    return RichTextBlock(inlines=[TextRun(text=f"{label}: ", weight="Bolder"), TextRun(text=reason or "None given")])
