"""Turns what an operator typed into a command, or into one sentence saying what to fix.

The text arrives already cleaned of Teams markup (mentions, HTML entities). Parsing is pure: the current time
and the typist's time zone come in as arguments, so "start tomorrow 08:00" means their tomorrow morning.

A user is an exact reference (user principal name or object id) or a name: one or more words the command does not
otherwise understand (`/tap issue Megan Bowen 2h`), or anything in quotes (`"Megan Bowen"`, “Megan Bowen”). The
command keeps what was typed; the Teams edge resolves a name to one person before the domain sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from bot.domain.audit import DEFAULT_EXPORT_DAYS, MAX_EXPORT_DAYS, AuditPeriod
from bot.domain.commands.command import (
    AlertsHereCommand,
    ApprovalsHereCommand,
    AuditExportCommand,
    Command,
    CommandError,
    FormCommand,
    HelpCommand,
    IssueCommand,
    OnboardCommand,
    PolicyCommand,
    RequestsCommand,
    RevokeCommand,
    RevokeJobCommand,
    SignOutCommand,
    StatusCommand,
)
from bot.domain.commands.examples import (
    EXAMPLE_ALERTS,
    EXAMPLE_APPROVALS,
    EXAMPLE_AUDIT,
    EXAMPLE_HELP,
    EXAMPLE_ISSUE,
    EXAMPLE_ONBOARD,
    EXAMPLE_POLICY,
    EXAMPLE_REQUESTS,
    EXAMPLE_REVOKE,
    EXAMPLE_REVOKE_JOB,
    EXAMPLE_SIGN_OUT,
    EXAMPLE_STATUS,
)
from bot.domain.commands.words import (
    Word,
    checked_name,
    checked_reason,
    is_user_reference,
    iso_date,
    lifetime_value,
    parse_duration_minutes,
    parse_start,
    shorten,
    split_words,
    user_candidate,
)
from bot.domain.model import OnboardRequest, PassRequest
from bot.domain.reasons import MAX_REASON_LENGTH

MAX_COMMAND_LENGTH = 500 + MAX_REASON_LENGTH  # a full command with the longest reason still fits
MAX_JOB_ID = 2**31 - 1  # the largest id the database's integer column holds
EARLIEST_AUDIT_DAY = date(2000, 1, 1)  # older days hold no audit; earlier dates only risk overflowing time zones

ONE_TIME_WORDS = frozenset({"one-time", "onetime", "once", "one_time", "single-use", "--one-time", "--once"})
REPLACE_WORDS = frozenset({"replace", "--replace", "replace=yes", "replace=true"})
START_WORDS = frozenset({"start", "at", "from", "starting", "--start"})
REASON_WORDS = frozenset({"reason", "--reason"})
_LIFETIME_KEYS = ("lifetime=", "--lifetime=", "for=")
_LIFETIME_WORDS = frozenset({"--lifetime", "for", "lifetime"})


@dataclass(frozen=True)
class Line:
    """The words after the command word, with the line they came from (a reason runs to its end)."""

    text: str
    words: list[Word]
    now: datetime
    tz: tzinfo
    default_start_hour: int


def parse_policy(line: Line) -> Command:
    _no_arguments(line, "policy", EXAMPLE_POLICY)
    return PolicyCommand()


def parse_requests(line: Line) -> Command:
    _no_arguments(line, "requests", EXAMPLE_REQUESTS)
    return RequestsCommand()


def parse_sign_out(line: Line) -> Command:
    _no_arguments(line, "signout", EXAMPLE_SIGN_OUT)
    return SignOutCommand()


def _no_arguments(line: Line, word: str, example: str) -> None:
    if line.words:
        raise CommandError(f"'/tap {word}' takes no arguments.", example)


def split_line(text: str) -> list[Word]:
    """The words of a command line; the length check comes first, so no long line is split."""
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandError("That message is too long to be a command.", EXAMPLE_HELP)
    return split_words(text, EXAMPLE_ISSUE)


def parse_help(_line: Line) -> Command:
    return HelpCommand()


def parse_approvals(line: Line) -> Command:
    if [word.text.lower() for word in line.words] != ["here"]:
        raise CommandError(
            "Type '/tap approvals here' in the channel where operators should decide requests.", EXAMPLE_APPROVALS
        )
    return ApprovalsHereCommand()


def parse_alerts(line: Line) -> Command:
    if [word.text.lower() for word in line.words] != ["here"]:
        raise CommandError(
            "Type '/tap alerts here' in the channel where the security team should see alerts.", EXAMPLE_ALERTS
        )
    return AlertsHereCommand()


def parse_issue(line: Line) -> Command:
    if not line.words:
        return FormCommand("issue")
    return IssueCommand(_read_request(line, EXAMPLE_ISSUE))


def parse_onboard(line: Line) -> Command:
    if not line.words:
        return FormCommand("onboard")
    request = _read_request(line, EXAMPLE_ONBOARD)
    if request.one_time or request.replace:
        raise CommandError(
            "'/tap onboard' takes a user, and optionally a start, a lifetime and a reason; one-time use is set by IT.",
            EXAMPLE_ONBOARD,
        )
    return OnboardCommand(OnboardRequest(request.target, request.start_at, request.lifetime_minutes, request.reason))


def parse_revoke(line: Line) -> Command:
    words, reason = _split_reason(line, EXAMPLE_REVOKE)
    if len(words) == 2 and words[0].text.lower() == "job" and words[1].text.lstrip("#").isdigit():
        number = words[1].text.lstrip("#")
        if not number.isascii() or len(number) > 12 or int(number) > MAX_JOB_ID:
            raise CommandError(f"'{shorten(words[1].text)}' is not a job number.", EXAMPLE_REVOKE_JOB)
        return RevokeJobCommand(int(number), reason)
    return RevokeCommand(_one_user(words, "revoke", EXAMPLE_REVOKE), reason)


def parse_status(line: Line) -> Command:
    if any(not word.quoted and word.text.lower() in REASON_WORDS for word in line.words):
        raise CommandError("'/tap status' takes a user only, no reason.", EXAMPLE_STATUS)
    return StatusCommand(_one_user(line.words, "status", EXAMPLE_STATUS))


def _split_reason(line: Line, example: str) -> tuple[list[Word], str]:
    """The words before `reason`, and the reason: the quoted words after it, or the rest of the line."""
    for index, word in enumerate(line.words):
        if not word.quoted and word.text.lower() in REASON_WORDS:
            reason, used = _read_reason(line, index + 1, example)
            rest = line.words[index + 1 + used :]
            if rest:
                raise CommandError(f"I don't understand '{shorten(rest[0].text)}' in this command.", example)
            return line.words[:index], reason
    return line.words, ""


def _read_reason(line: Line, index: int, example: str) -> tuple[str, int]:
    """The reason starting at word `index` and how many words it used: one quoted word, or all the rest."""
    if index >= len(line.words):
        return checked_reason("", example), 0
    first = line.words[index]
    if first.quoted:
        return checked_reason(first.text, example), 1
    return checked_reason(line.text[first.start :], example), len(line.words) - index


def _one_user(words: list[Word], word: str, example: str) -> str:
    if not words:
        raise CommandError(f"Tell me whose pass to {'look up' if word == 'status' else word}.", example)
    if len(words) == 1 and words[0].quoted:
        return checked_name([words[0].text], example)
    references = [w for w in words if not w.quoted and is_user_reference(user_candidate(w.text))]
    if len(words) > 1 and (references or any(w.quoted for w in words)):
        raise CommandError(f"'/tap {word}' takes exactly one user.", example)
    if references:
        return user_candidate(references[0].text)
    return checked_name([w.text for w in words], example)


def _read_request(line: Line, example: str) -> PassRequest:
    """The user, lifetime, one-time, start, replace and reason of `/tap issue` (and `/tap onboard`)."""
    words = line.words
    target: str | None = None
    name: list[str] = []  # the words of a name being read; a name is one unbroken run of words
    lifetime: int | None = None
    one_time = False
    replace = False
    start_at: datetime | None = None
    reason = ""
    index = 0
    while index < len(words):
        word = words[index]
        token = word.text
        lowered = token.lower()
        index += 1
        if word.quoted:
            if target is not None or name:
                raise CommandError(f"I don't understand '{shorten(token)}' in this command.", example)
            target = checked_name([token], example)
            continue
        if name and not _is_keyword(lowered):
            if is_user_reference(user_candidate(token)):
                raise CommandError(f"Give one user: '{shorten(' '.join(name))}' or '{shorten(token)}'.", example)
            name.append(token)
            continue
        if name:
            target = checked_name(name, example)
            name = []
        if lowered in ONE_TIME_WORDS:
            one_time = True
        elif lowered in REPLACE_WORDS:
            replace = True
        elif lowered in REASON_WORDS:
            reason, used = _read_reason(line, index, example)
            index += used
        elif lowered in START_WORDS or lowered.startswith(("start=", "--start=")):
            inline = token.split("=", 1)[1] if "=" in token else None
            following = [w.text for w in words[index : index + 2]]
            start_at, used = parse_start(
                ([inline] if inline else []) + following,
                now=line.now,
                tz=line.tz,
                default_start_hour=line.default_start_hour,
            )
            index += used - (1 if inline else 0)
        elif lowered.startswith(_LIFETIME_KEYS) or lowered in _LIFETIME_WORDS:
            if "=" in token:
                value = token.split("=", 1)[1]
            elif index < len(words):
                value = words[index].text
                index += 1
            else:
                value = ""
            lifetime = lifetime_value(value, example)
        elif parse_duration_minutes(lowered) is not None:
            if lifetime is not None:
                raise CommandError("Give the lifetime only once.", example)
            lifetime = lifetime_value(lowered, example)
        elif target is None and is_user_reference(user_candidate(token)):
            target = user_candidate(token)
        elif target is None:
            name.append(token)
        else:
            raise CommandError(f"I don't understand '{shorten(token)}' in this command.", example)
    if name:
        target = checked_name(name, example)
    if target is None:
        raise CommandError("Tell me who the pass is for.", example)
    return PassRequest(
        target=target, lifetime_minutes=lifetime, one_time=one_time, start_at=start_at, replace=replace, reason=reason
    )


def _is_keyword(lowered: str) -> bool:
    """A word that ends a name: it means something to `/tap issue` (a duration, a flag, a keyword)."""
    return (
        lowered in ONE_TIME_WORDS
        or lowered in REPLACE_WORDS
        or lowered in REASON_WORDS
        or lowered in START_WORDS
        or lowered in _LIFETIME_WORDS
        or lowered.startswith(("start=", "--start=", *_LIFETIME_KEYS))
        or parse_duration_minutes(lowered) is not None
    )


def parse_audit(line: Line) -> Command:
    """`export`, then no date (the last 7 days), a first day (until today), or a first and a last day."""
    arguments = [word.text for word in line.words]
    now, tz, example = line.now, line.tz, EXAMPLE_AUDIT
    if not arguments or arguments[0].lower() != "export":
        raise CommandError(
            "Type '/tap audit export', optionally with the first and the last day (YYYY-MM-DD).", example
        )
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo("UTC")
    days: list[date] = []
    for token in arguments[1:]:
        if token.lower() in {"from", "to", "until", "-", "–", ".."}:
            continue
        day = iso_date(token)
        if day is None:
            raise CommandError(f"'{shorten(token)}' is not a date (YYYY-MM-DD).", example)
        if day < EARLIEST_AUDIT_DAY:
            raise CommandError(f"The audit log starts in {EARLIEST_AUDIT_DAY.year}; give a later first day.", example)
        days.append(day)
    if len(days) > 2:
        raise CommandError("Give at most two dates: the first and the last day.", example)
    if not days:
        return AuditExportCommand(AuditPeriod.last_days(DEFAULT_EXPORT_DAYS, now=now, timezone=zone))
    today = now.astimezone(zone).date()
    first, last = days[0], days[1] if len(days) == 2 else max(days[0], today)
    if first > today:
        raise CommandError(f"{first.isoformat()} has not come yet; give a first day in the past.", example)
    if last < first:
        raise CommandError("The last day comes before the first day.", example)
    if (last - first).days + 1 > MAX_EXPORT_DAYS:
        raise CommandError(f"Export at most {MAX_EXPORT_DAYS} days at a time.", example)
    return AuditExportCommand(AuditPeriod(first, last, zone))
