"""Turns what an operator typed into a command, or into one sentence saying what to fix.

The text arrives already cleaned of Teams markup (mentions, HTML entities). Parsing is pure: the current time
and the typist's time zone come in as arguments, so "start tomorrow 08:00" means their tomorrow morning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bot.domain.audit import DEFAULT_EXPORT_DAYS, MAX_EXPORT_DAYS, AuditPeriod
from bot.domain.eligibility import GRAPH_MAX_LIFETIME_MINUTES, START_MAX_AHEAD, format_minutes
from bot.domain.eligibility import START_PAST_TOLERANCE as START_PAST_TOLERANCE  # the bulk file reader's too
from bot.domain.model import OnboardRequest, PassRequest

EXAMPLE_ISSUE = "/tap issue megan@contoso.com 8h one-time start tomorrow 08:00"
EXAMPLES = {
    "issue": EXAMPLE_ISSUE,
    "revoke": "/tap revoke megan@contoso.com",
    "status": "/tap status megan@contoso.com",
    "policy": "/tap policy",
    "help": "/tap help",
    "onboard": "/tap onboard LeeG@contoso.com start 2027-01-11",
    "approvals": "/tap approvals here",
    "requests": "/tap requests",
    "audit": "/tap audit export 2026-05-01 2026-05-07",
}

MAX_COMMAND_LENGTH = 500
MAX_JOB_ID = 2**31 - 1  # the largest id the database's integer column holds
EARLIEST_AUDIT_DAY = date(2000, 1, 1)  # older days hold no audit; earlier dates only risk overflowing time zones


@dataclass(frozen=True)
class IssueCommand:
    request: PassRequest


@dataclass(frozen=True)
class RevokeCommand:
    target: str


@dataclass(frozen=True)
class StatusCommand:
    target: str


@dataclass(frozen=True)
class PolicyCommand:
    pass


@dataclass(frozen=True)
class HelpCommand:
    unknown_word: str | None = None


@dataclass(frozen=True)
class OnboardCommand:
    request: OnboardRequest


@dataclass(frozen=True)
class ApprovalsHereCommand:
    pass


@dataclass(frozen=True)
class RequestsCommand:
    pass


@dataclass(frozen=True)
class RevokeJobCommand:
    """`/tap revoke job 12`: revoke every pass bulk job 12 delivered."""

    job_id: int


@dataclass(frozen=True)
class AuditExportCommand:
    """`/tap audit export [first day] [last day]`: the audit log of those days as a CSV file (operators)."""

    period: AuditPeriod


Command = (
    IssueCommand
    | RevokeCommand
    | StatusCommand
    | PolicyCommand
    | HelpCommand
    | OnboardCommand
    | ApprovalsHereCommand
    | RequestsCommand
    | RevokeJobCommand
    | AuditExportCommand
)


class CommandError(ValueError):
    """The text could not be understood. `reason` is one sentence; `example` a correct command."""

    def __init__(self, reason: str, example: str) -> None:
        super().__init__(f"{reason} Example: {example}")
        self.reason = reason
        self.example = example


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_UPN = re.compile(r"^[^\s@<>\"']+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DURATION_PART = re.compile(r"(\d+)\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?)", re.IGNORECASE)
_DURATION = re.compile(r"^(?:\d+\s*(?:d|days?|h|hrs?|hours?|m|mins?|minutes?))+$|^\d+$", re.IGNORECASE)
_UNIT_MINUTES = {"d": 1440, "h": 60, "m": 1}
_ONE_TIME_WORDS = {"one-time", "onetime", "once", "one_time", "single-use", "--one-time", "--once"}
_REPLACE_WORDS = {"replace", "--replace", "replace=yes", "replace=true"}
_START_WORDS = {"start", "at", "from", "starting", "--start"}
_LIFETIME_KEYS = ("lifetime=", "--lifetime=", "for=")
_COMMAND_WORDS = {"issue", "revoke", "status", "policy", "help", "onboard", "approvals", "requests", "audit"}
_COMMAND_ALIASES = {
    "create": "issue",
    "new": "issue",
    "delete": "revoke",
    "remove": "revoke",
    "show": "status",
    "get": "status",
    "?": "help",
    "request": "requests",
    "pending": "requests",
    "approval": "approvals",
}


def is_user_reference(token: str) -> bool:
    return bool(_GUID.match(token) or _UPN.match(token))


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


def parse_command(text: str, *, now: datetime, tz: tzinfo, default_start_hour: int = 8) -> Command:
    """Parses a cleaned command line. Raises CommandError with a reason and a correct example."""
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandError("That message is too long to be a command.", EXAMPLES["help"])
    tokens = text.split()
    if tokens and tokens[0].lower() in {"/tap", "tap", "@tap", "tapbot"}:
        tokens = tokens[1:]
    if not tokens:
        return HelpCommand()
    word = tokens[0].lower().lstrip("/")
    word = _COMMAND_ALIASES.get(word, word)
    arguments = tokens[1:]
    if word not in _COMMAND_WORDS:
        return HelpCommand(unknown_word=tokens[0])
    if word == "help":
        return HelpCommand()
    if word in ("policy", "requests"):
        if arguments:
            raise CommandError(f"'/tap {word}' takes no arguments.", EXAMPLES[word])
        return PolicyCommand() if word == "policy" else RequestsCommand()
    if word == "approvals":
        if [argument.lower() for argument in arguments] != ["here"]:
            raise CommandError(
                "Type '/tap approvals here' in the channel where operators should decide requests.",
                EXAMPLES["approvals"],
            )
        return ApprovalsHereCommand()
    if word == "audit":
        return AuditExportCommand(_parse_audit_export(arguments, now=now, tz=tz))
    if word == "onboard":
        request = _parse_issue_arguments(arguments, now=now, tz=tz, default_start_hour=default_start_hour)
        if request.one_time or request.replace:
            raise CommandError(
                "'/tap onboard' takes a user, and optionally a start and a lifetime; one-time use is set by IT.",
                EXAMPLES["onboard"],
            )
        return OnboardCommand(OnboardRequest(request.target, request.start_at, request.lifetime_minutes))
    if word == "revoke" and len(arguments) == 2 and arguments[0].lower() == "job":
        number = arguments[1].lstrip("#")
        if not _JOB_NUMBER.match(number) or int(number) > MAX_JOB_ID:
            raise CommandError(f"'{_shorten(arguments[1])}' is not a job number.", "/tap revoke job 12")
        return RevokeJobCommand(int(number))
    if word in ("revoke", "status"):
        target = _single_user_argument(word, arguments)
        return RevokeCommand(target) if word == "revoke" else StatusCommand(target)
    return IssueCommand(_parse_issue_arguments(arguments, now=now, tz=tz, default_start_hour=default_start_hour))


def _parse_audit_export(arguments: list[str], *, now: datetime, tz: tzinfo) -> AuditPeriod:
    """`export`, then no date (the last 7 days), a first day (until today), or a first and a last day."""
    example = EXAMPLES["audit"]
    if not arguments or arguments[0].lower() != "export":
        raise CommandError(
            "Type '/tap audit export', optionally with the first and the last day (YYYY-MM-DD).", example
        )
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo("UTC")
    days: list[date] = []
    for token in arguments[1:]:
        if token.lower() in {"from", "to", "until", "-", "–", ".."}:
            continue
        day = _iso_date(token)
        if day is None:
            raise CommandError(f"'{_shorten(token)}' is not a date (YYYY-MM-DD).", example)
        if day < EARLIEST_AUDIT_DAY:
            raise CommandError(f"The audit log starts in {EARLIEST_AUDIT_DAY.year}; give a later first day.", example)
        days.append(day)
    if len(days) > 2:
        raise CommandError("Give at most two dates: the first and the last day.", example)
    if not days:
        return AuditPeriod.last_days(DEFAULT_EXPORT_DAYS, now=now, timezone=zone)
    today = now.astimezone(zone).date()
    first, last = days[0], days[1] if len(days) == 2 else max(days[0], today)
    if first > today:
        raise CommandError(f"{first.isoformat()} has not come yet; give a first day in the past.", example)
    if last < first:
        raise CommandError("The last day comes before the first day.", example)
    if (last - first).days + 1 > MAX_EXPORT_DAYS:
        raise CommandError(f"Export at most {MAX_EXPORT_DAYS} days at a time.", example)
    return AuditPeriod(first, last, zone)


def _iso_date(token: str) -> date | None:
    if not _DATE.match(token):
        return None
    try:
        return date.fromisoformat(token)
    except ValueError:
        return None


def _single_user_argument(word: str, arguments: list[str]) -> str:
    if not arguments:
        raise CommandError(f"Tell me whose pass to {_verb(word)}.", EXAMPLES[word])
    if len(arguments) > 1:
        raise CommandError(f"'/tap {word}' takes exactly one user.", EXAMPLES[word])
    return _user_argument(arguments[0], word)


def _verb(word: str) -> str:
    return {"revoke": "revoke", "status": "look up"}.get(word, word)


def _user_argument(token: str, word: str) -> str:
    candidate = token.strip().strip(",;")
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[len("mailto:") :]
    if not is_user_reference(candidate):
        raise CommandError(
            f"'{_shorten(token)}' is not a user principal name (name@domain) or an object id.",
            EXAMPLES[word],
        )
    return candidate


def _shorten(token: str, limit: int = 60) -> str:
    return token if len(token) <= limit else token[: limit - 1] + "…"


def _parse_issue_arguments(arguments: list[str], *, now: datetime, tz: tzinfo, default_start_hour: int) -> PassRequest:
    target: str | None = None
    lifetime: int | None = None
    one_time = False
    replace = False
    start_at: datetime | None = None
    index = 0
    while index < len(arguments):
        token = arguments[index]
        lowered = token.lower()
        index += 1
        if lowered in _ONE_TIME_WORDS:
            one_time = True
        elif lowered in _REPLACE_WORDS:
            replace = True
        elif lowered in _START_WORDS or lowered.startswith(("start=", "--start=")):
            inline = token.split("=", 1)[1] if "=" in token else None
            words = [inline] if inline else []
            words.extend(arguments[index : index + 2])
            start_at, used = _parse_start(words, now=now, tz=tz, default_start_hour=default_start_hour)
            index += used - (1 if inline else 0)
        elif lowered.startswith(_LIFETIME_KEYS) or lowered in {"--lifetime", "for", "lifetime"}:
            if "=" in token:
                value = token.split("=", 1)[1]
            elif index < len(arguments):
                value = arguments[index]
                index += 1
            else:
                value = ""
            lifetime = _lifetime_value(value)
        elif parse_duration_minutes(lowered) is not None:
            if lifetime is not None:
                raise CommandError("Give the lifetime only once.", EXAMPLE_ISSUE)
            lifetime = _lifetime_value(lowered)
        elif target is None and is_user_reference(_user_candidate(token)):
            target = _user_argument(token, "issue")
        elif target is None:
            raise CommandError(
                f"'{_shorten(token)}' is not a user principal name (name@domain) or an object id.",
                EXAMPLE_ISSUE,
            )
        else:
            raise CommandError(f"I don't understand '{_shorten(token)}' in this command.", EXAMPLE_ISSUE)
    if target is None:
        raise CommandError("Tell me who the pass is for.", EXAMPLE_ISSUE)
    return PassRequest(target=target, lifetime_minutes=lifetime, one_time=one_time, start_at=start_at, replace=replace)


def _user_candidate(token: str) -> str:
    candidate = token.strip().strip(",;")
    return candidate[len("mailto:") :] if candidate.lower().startswith("mailto:") else candidate


def _lifetime_value(value: str) -> int:
    minutes = parse_duration_minutes(value)
    if minutes is None or minutes <= 0:
        raise CommandError(f"'{_shorten(value)}' is not a lifetime. Use minutes (90), or 90m, 8h, 2d.", EXAMPLE_ISSUE)
    if minutes > GRAPH_MAX_LIFETIME_MINUTES:
        raise CommandError(
            f"'{_shorten(value)}' is longer than any pass can last ({format_minutes(GRAPH_MAX_LIFETIME_MINUTES)}).",
            EXAMPLE_ISSUE,
        )
    return minutes


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_JOB_NUMBER = re.compile(r"^[0-9]{1,12}$")
_RELATIVE = re.compile(r"^\+(\S+)$")


def _parse_start(words: list[str], *, now: datetime, tz: tzinfo, default_start_hour: int) -> tuple[datetime, int]:
    """Reads a start time from the next one or two words; returns it in UTC and how many words it used."""
    try:
        start, used = _read_start(words, now=now, tz=tz, default_start_hour=default_start_hour)
    except OverflowError:  # +99999999d, or a date at the end of the calendar in a zone west of UTC
        start, used = now + START_MAX_AHEAD + timedelta(days=1), 1
    if start < now - START_PAST_TOLERANCE:
        raise CommandError("That start time has already passed; give a time in the future.", EXAMPLE_ISSUE)
    if start > now + START_MAX_AHEAD:
        raise CommandError(
            f"A pass can start at most {START_MAX_AHEAD.days} days from now; give an earlier start.", EXAMPLE_ISSUE
        )
    return start.astimezone(now.tzinfo), used


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
    elif first in ("today", "tomorrow") or _DATE.match(first):
        day = _day_from_word(first, local_now.date())
        clock = _clock(second)
        if clock is not None:
            used = 2
        start = _local(day, clock or time(default_start_hour), tz)
    elif (clock := _clock(first)) is not None:
        start = _local(local_now.date(), clock, tz)
        if start < now - START_PAST_TOLERANCE:
            start = _local(local_now.date() + timedelta(days=1), clock, tz)
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


def _clock(word: str) -> time | None:
    match = _CLOCK.match(word)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise CommandError(f"'{word}' is not a time of day (HH:MM).", EXAMPLE_ISSUE)
    return time(hour, minute)


def _local(day: date, clock: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz)


def _iso_datetime(word: str, tz: tzinfo) -> datetime:
    try:
        parsed = datetime.fromisoformat(word.replace("z", "Z"))
    except ValueError:
        raise CommandError(
            f"'{_shorten(word)}' is not a start time. Use now, +2h, 08:00, tomorrow 08:00 or 2026-12-01T08:00.",
            EXAMPLE_ISSUE,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
