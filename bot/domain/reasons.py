"""Why a pass is wanted: the reason (and ticket number) every issue, revoke, onboarding request and bulk job carries.

A reason is text from the user. It is never interpreted: it is cleaned (control characters and line breaks become
single spaces), capped at MAX_REASON_LENGTH, stored and shown as plain text. Files the bot writes neutralise it like
any other cell.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from bot.domain.errors import TapError

MAX_REASON_LENGTH = 300

EXAMPLE_REASON = "INC0012345 lost phone"


def clean_reason(text: str | None) -> str:
    """The reason as stored and shown: one line, no control or format characters, surrounding spaces trimmed.

    Length is not capped here: a reason that is too long is refused with a sentence (ReasonRules.problem), never
    silently cut.
    """
    if not text:
        return ""
    kept = (" " if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char for char in text)
    return " ".join("".join(kept).split())


def shorten_reason(text: str | None) -> str:
    """A cleaned reason cut to MAX_REASON_LENGTH, for text that did not come from the user as a reason (a message
    quoted into the form as the proposed reason)."""
    cleaned = clean_reason(text)
    if len(cleaned) <= MAX_REASON_LENGTH:
        return cleaned
    return cleaned[: MAX_REASON_LENGTH - 1].rstrip() + "…"


class ReasonRefused(TapError):
    """The reason given does not meet the tenant's reason rules. Nothing was written to Graph."""


@dataclass(frozen=True)
class ReasonRules:
    """The tenant's rules for reasons: TAPBOT_REASON_REQUIRED, TAPBOT_TICKET_PATTERN, TAPBOT_TICKET_EXAMPLE.

    A ticket pattern implies a reason is required: a missing reason does not contain the ticket number.
    """

    required: bool = False
    ticket_pattern: re.Pattern[str] | None = None
    ticket_example: str | None = None  # e.g. "INC0012345": shown in the sentence telling the user what to write

    @property
    def reason_needed(self) -> bool:
        return self.required or self.ticket_pattern is not None

    def example(self) -> str:
        """A reason that would be accepted, for the sentence and the form's placeholder."""
        if self.ticket_pattern is None:
            return EXAMPLE_REASON
        if self.ticket_example:
            return f"{self.ticket_example} lost phone"
        return "<ticket number> lost phone"

    def _ask(self) -> str:
        if self.ticket_pattern is None:
            return "Give a reason"
        if self.ticket_example:
            return f"Give a reason with a ticket number like {self.ticket_example}"
        return f"Give a reason with a ticket number (matching {self.ticket_pattern.pattern})"

    def problem(self, reason: str) -> str | None:
        """None when the reason is acceptable; otherwise one sentence telling the user what to write."""
        cleaned = clean_reason(reason)
        if len(cleaned) > MAX_REASON_LENGTH:
            return (
                f"A reason can be at most {MAX_REASON_LENGTH} characters long; yours has {len(cleaned)}. "
                "Shorten it, e.g. to the ticket number and a few words."
            )
        if not cleaned:
            if not self.reason_needed:
                return None
            return f'{self._ask()}, for example: reason "{self.example()}".'
        if self.ticket_pattern is not None and self.ticket_pattern.search(cleaned) is None:
            return f'{self._ask()}; "{cleaned}" has none. For example: reason "{self.example()}".'
        return None

    def check(self, reason: str) -> str:
        """The cleaned reason, or ReasonRefused with the sentence from problem()."""
        sentence = self.problem(reason)
        if sentence is not None:
            raise ReasonRefused(sentence)
        return clean_reason(reason)


NO_REASON_RULES = ReasonRules()


class PassReasons(Protocol):
    """The reasons kept with the audit log (the store implements it)."""

    async def reason_for_pass(self, pass_method_id: str) -> str | None:
        """The reason the pass was created with; None when the bot has no record of creating it."""
        ...


_REASON_IN_TEXT = re.compile(
    r"(?:^|\s)(?:--)?(?:reason|because)\b\s*[:=]?\s*(?:\"([^\"]*)\"|“([^”]*)”|„([^“”]*)[“”]|(\S.*))?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def split_reason(text: str) -> tuple[str, str]:
    """A message that is not a command (the text a bulk file was attached with), split into what comes before its
    reason and the reason: `reason "INC0012345 migration"` (straight or typographic quotes) or
    `reason INC0012345 migration` (the rest of the message). The reason is cleaned, not checked; "" when the text
    names none. Words inside the reason never count as instructions (a reason may say "revoke")."""
    text = text or ""
    match = _REASON_IN_TEXT.search(text)
    if match is None:
        return text, ""
    reason = next((group for group in match.groups() if group is not None), "")
    return text[: match.start()], clean_reason(reason)
