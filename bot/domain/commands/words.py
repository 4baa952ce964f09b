"""The pieces of a command line: quoted and plain words, users, lifetimes, start times and reasons.

Every reader here is pure: the current time and the typist's time zone come in as arguments, so "start tomorrow
08:00" means their tomorrow morning. A word that cannot be read raises CommandError with the command's example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from bot.domain.commands.command import CommandError
from bot.domain.commands.examples import EXAMPLE_ISSUE
from bot.domain.eligibility import GRAPH_MAX_LIFETIME_MINUTES, START_MAX_AHEAD, START_PAST_TOLERANCE, format_minutes
from bot.domain.reasons import EXAMPLE_REASON, MAX_REASON_LENGTH, clean_reason

MAX_NAME_LENGTH = 256  # Entra's longest display name

# An opening quote and the quote that closes it: straight quotes, and the “smart quotes” phones and Word type.
QUOTES = {'"': '"', "“": "”", "”": "”"}
QUOTE_CHARACTERS = frozenset('"“”')

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_UPN = re.compile(r"^[^\s@<>\"']+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DURATION_PART = re.compile(r"(\d+)\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?)", re.IGNORECASE)
_DURATION = re.compile(r"^(?:\d+\s*(?:d|days?|h|hrs?|hours?|m|mins?|minutes?))+$|^\d+$", re.IGNORECASE)
_UNIT_MINUTES = {"d": 1440, "h": 60, "m": 1}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_RELATIVE = re.compile(r"^\+(\S+)$")


@dataclass(frozen=True)
class Word:
    """One word of the line, or one quoted stretch (without its quotes); `start` is its offset in the line."""

    text: str
    quoted: bool
    start: int


def split_words(line: str, example: str) -> list[Word]:
    """Splits at white space; a word starting with a quote runs to the closing quote, spaces and all."""
    words: list[Word] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char.isspace():
            index += 1
            continue
        if char in QUOTES:
            closing = line.find(QUOTES[char], index + 1)
            if closing < 0:
                raise CommandError(f"A quote is not closed: {shorten(line[index:])}", example)
            words.append(Word(line[index + 1 : closing], True, index))
            index = closing + 1
            continue
        end = index
        while end < len(line) and not line[end].isspace():
            end += 1
        words.append(Word(line[index:end], False, index))
        index = end
    return words


def is_user_reference(token: str) -> bool:
    """An exact reference to one user: a user principal name or an object id (anything else is a name)."""
    return bool(_GUID.match(token) or _UPN.match(token))


def user_candidate(token: str) -> str:
    candidate = token.strip().strip(",;")
    return candidate[len("mailto:") :] if candidate.lower().startswith("mailto:") else candidate


def checked_name(words: list[str], example: str) -> str:
    """A person's name as typed, one or more words: what the directory search is given."""
    name = " ".join(" ".join(words).split()).strip(",; ")
    if not name:
        raise CommandError("Tell me who: a name, a user principal name (name@domain) or an object id.", example)
    if QUOTE_CHARACTERS.intersection(name):
        raise CommandError("A name cannot contain quotes.", example)
    if len(name) > MAX_NAME_LENGTH:
        raise CommandError(f"'{shorten(name)}' is too long to be a name.", example)
    return name


def shorten(token: str, limit: int = 60) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"


def parse_duration_minutes(token: str) -> int | None:
    """'90' → 90, '90m' → 90, '8h' → 480, '2d' → 2880, '1h30m' → 90; None when it is not a duration."""
    compact = token.strip().lower()
    if not _DURATION.match(compact):
        return None
    if compact.isdigit():
        return int(compact)
    total = 0
    for amount, unit in _DURATION_PART.findall(compact):
        total += int(amount) * _UNIT_MINUTES[unit[0]]
    return total


def lifetime_value(value: str, example: str = EXAMPLE_ISSUE) -> int:
    minutes = parse_duration_minutes(value)
    if minutes is None or minutes <= 0:
        raise CommandError(f"'{shorten(value)}' is not a lifetime. Use minutes (90), or 90m, 8h, 2d.", example)
    if minutes > GRAPH_MAX_LIFETIME_MINUTES:
        raise CommandError(
            f"'{shorten(value)}' is longer than any pass can last ({format_minutes(GRAPH_MAX_LIFETIME_MINUTES)}).",
            example,
        )
    return minutes


def checked_reason(text: str, example: str) -> str:
    """The reason as the domain stores it (one clean line); empty or too long is a sentence, never cut."""
    reason = clean_reason(text)
    if not reason:
        raise CommandError(f"Say why after 'reason', for example: reason \"{EXAMPLE_REASON}\".", example)
    if len(reason) > MAX_REASON_LENGTH:
        raise CommandError(
            f"A reason can be at most {MAX_REASON_LENGTH} characters long; yours has {len(reason)}.", example
        )
    return reason


def parse_start(words: list[str], *, now: datetime, tz: tzinfo, default_start_hour: int) -> tuple[datetime, int]:
    """Reads a start time from the next one or two words; returns it in UTC and how many words it used."""
    try:
        start, used = _read_start(words, now=now, tz=tz, default_start_hour=default_start_hour)
    except OverflowError:  # +99999999d, or a date at the end of the calendar in a zone west of UTC
        start, used = now + START_MAX_AHEAD + timedelta(days=1), 1
    return check_start(start, now=now), used


def check_start(start: datetime, *, now: datetime, example: str = EXAMPLE_ISSUE) -> datetime:
    """The start, in `now`'s zone, if it is neither past nor more than START_MAX_AHEAD away."""
    if start < now - START_PAST_TOLERANCE:
        raise CommandError("That start time has already passed; give a time in the future.", example)
    if start > now + START_MAX_AHEAD:
        raise CommandError(
            f"A pass can start at most {START_MAX_AHEAD.days} days from now; give an earlier start.", example
        )
    return start.astimezone(now.tzinfo)


def _read_start(words: list[str], *, now: datetime, tz: tzinfo, default_start_hour: int) -> tuple[datetime, int]:
    if not words:
        raise CommandError("Say when the pass should start.", EXAMPLE_ISSUE)
    first = words[0].lower()
    second = words[1].lower() if len(words) > 1 else ""
    local_now = now.astimezone(tz)
    used = 1
    if first == "now":
        start = now
    elif first == "in" and parse_duration_minutes(second) is not None:
        start = now + timedelta(minutes=parse_duration_minutes(second) or 0)
        used = 2
    elif (relative := _RELATIVE.match(first)) and parse_duration_minutes(relative.group(1)) is not None:
        start = now + timedelta(minutes=parse_duration_minutes(relative.group(1)) or 0)
    elif first in ("today", "tomorrow") or DATE.match(first):
        day = _day_from_word(first, local_now.date())
        clock = clock_time(second)
        if clock is not None:
            used = 2
        start = datetime.combine(day, clock or time(default_start_hour), tzinfo=tz)
    elif (clock := clock_time(first)) is not None:
        start = datetime.combine(local_now.date(), clock, tzinfo=tz)
        if start < now - START_PAST_TOLERANCE:
            start = datetime.combine(local_now.date() + timedelta(days=1), clock, tzinfo=tz)
    else:
        start = _iso_datetime(words[0], tz)
    return start, used


def _day_from_word(word: str, today: date) -> date:
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise CommandError(f"'{word}' is not a date (YYYY-MM-DD).", EXAMPLE_ISSUE) from None


def clock_time(word: str, example: str = EXAMPLE_ISSUE) -> time | None:
    """'08:00' → 08:00; None when the word is not shaped like a time; an error for 25:00."""
    match = _CLOCK.match(word)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise CommandError(f"'{word}' is not a time of day (HH:MM).", example)
    return time(hour, minute)


def _iso_datetime(word: str, tz: tzinfo) -> datetime:
    """2026-12-01T08:00 in the typist's zone; with Z or an offset (2026-12-01T08:00Z, …+01:00) as written."""
    try:
        parsed = datetime.fromisoformat(word.replace("z", "Z"))
    except ValueError:
        raise CommandError(
            f"'{shorten(word)}' is not a start time. Use now, +2h, 08:00, tomorrow 08:00 or 2026-12-01T08:00.",
            EXAMPLE_ISSUE,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def iso_date(token: str) -> date | None:
    if not DATE.match(token):
        return None
    try:
        return date.fromisoformat(token)
    except ValueError:
        return None
