"""A command from a submitted form: the same rules as typed text, each problem told next to its field.

Field names (the keys of `values`): person, lifetime (minutes or 90m, 8h, 2d), oneTime ("true"/"false"), startDate
(YYYY-MM-DD), startTime (HH:MM), reason. A field the command's form does not have is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TypeVar

from bot.domain.commands.command import Command, CommandError, IssueCommand, OnboardCommand
from bot.domain.commands.spec import CommandSpec
from bot.domain.commands.table import command_spec
from bot.domain.commands.words import (
    QUOTES,
    check_start,
    checked_name,
    clock_time,
    is_user_reference,
    iso_date,
    lifetime_value,
    user_candidate,
)
from bot.domain.eligibility import START_MAX_AHEAD, START_PAST_TOLERANCE
from bot.domain.model import OnboardRequest, PassRequest
from bot.domain.reasons import MAX_REASON_LENGTH, clean_reason

T = TypeVar("T")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


class FieldErrors(ValueError):
    """Fields of a form that cannot be used: field name → one sentence saying what to change."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


def command_from_fields(
    word: str, values: Mapping[str, object], *, now: datetime, tz: tzinfo, default_start_hour: int = 8
) -> Command:
    """The command the form of `word` ("issue" or "onboard") asks for. Raises FieldErrors naming every bad field."""
    spec = command_spec(word)
    if spec is None or not spec.fields:
        raise ValueError(f"'{word}' has no form")
    reader = _Reader(spec, values)
    target = reader.read("person", _person)
    lifetime = reader.read("lifetime", lambda text: lifetime_value(text, spec.example) if text else None)
    one_time = reader.read("oneTime", _toggle) or False
    start_at = reader.start(now=now, tz=tz, default_start_hour=default_start_hour)
    reason = reader.read("reason", _reason) or ""
    if reader.errors:
        raise FieldErrors(reader.errors)
    assert target is not None  # a required field: _person raised for an empty one
    if spec.word == "onboard":
        return OnboardCommand(OnboardRequest(target, start_at, lifetime, reason))
    return IssueCommand(
        PassRequest(target=target, lifetime_minutes=lifetime, one_time=one_time, start_at=start_at, reason=reason)
    )


class _Reader:
    """Reads the form's fields one by one, collecting a sentence per bad field instead of stopping at the first."""

    def __init__(self, spec: CommandSpec, values: Mapping[str, object]) -> None:
        self.spec = spec
        self.values = values
        self.errors: dict[str, str] = {}

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int):
            return str(value).strip()
        self.errors[name] = "This value is not one I can read."
        return ""

    def read(self, name: str, convert: Callable[[str], T]) -> T | None:
        if self.spec.field(name) is None:
            return None
        text = self.text(name)
        if name in self.errors:
            return None
        try:
            return convert(text)
        except CommandError as error:
            self.errors[name] = error.reason
            return None

    def start(self, *, now: datetime, tz: tzinfo, default_start_hour: int) -> datetime | None:
        """Empty date and time: now. A date only: that day at the default hour. A time only: its next occurrence."""
        day_text, clock_text = self.text("startDate"), self.text("startTime")
        if "startDate" in self.errors or "startTime" in self.errors:
            return None
        day = iso_date(day_text) if day_text else None
        if day_text and day is None:
            self.errors["startDate"] = f"'{day_text[:20]}' is not a date (YYYY-MM-DD)."
        try:
            clock = clock_time(clock_text) if clock_text else None
            if clock_text and clock is None:
                raise CommandError(f"'{clock_text[:20]}' is not a time of day (HH:MM).", self.spec.example)
        except CommandError as error:
            self.errors["startTime"] = error.reason
            return None
        if self.errors.get("startDate") or (day is None and clock is None):
            return None
        try:
            start = _combine(day, clock, now=now, tz=tz, default_start_hour=default_start_hour)
            return check_start(start, now=now, example=self.spec.example)
        except OverflowError:  # a date at the end of the calendar, in a zone west of UTC
            self.errors["startDate"] = f"A pass can start at most {START_MAX_AHEAD.days} days from now."
        except CommandError as error:
            on_time = clock is not None and (day is None or day == now.astimezone(tz).date())
            self.errors["startTime" if on_time else "startDate"] = error.reason
        return None


def _combine(day: date | None, clock: time | None, *, now: datetime, tz: tzinfo, default_start_hour: int) -> datetime:
    local_now = now.astimezone(tz)
    if day is None:  # a time only: today, or tomorrow once it has passed (as typed `start 08:00`)
        start = datetime.combine(local_now.date(), clock or time(default_start_hour), tzinfo=tz)
        if start < now - START_PAST_TOLERANCE:
            start = datetime.combine(local_now.date() + timedelta(days=1), clock or time(default_start_hour), tzinfo=tz)
        return start
    return datetime.combine(day, clock or time(default_start_hour), tzinfo=tz)


def _person(text: str) -> str:
    if not text:
        raise CommandError("Choose the person the pass is for.", "")
    candidate = user_candidate(text)
    return candidate if is_user_reference(candidate) else checked_name([text], "")


def _toggle(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CommandError("Choose on or off.", "")


def _reason(text: str) -> str:
    reason = clean_reason(text)
    if len(reason) > MAX_REASON_LENGTH:
        raise CommandError(f"A reason can be at most {MAX_REASON_LENGTH} characters long; yours has {len(reason)}.", "")
    if reason and reason[0] in QUOTES and '"' in reason and "”" in reason:
        # The one shape typed text cannot hold (text.py): straight quotes keep it sayable, and its meaning.
        reason = reason.replace("“", '"').replace("”", '"')
    return reason
