"""A command back as the text that means it, and the same command naming a person found by name.

`parse_command(command_text(c), now=..., tz=...) == c` for every command the parser or the form can produce (with
the same `now` and time zone): a button can carry a command as text and run it again exactly as if typed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.domain.commands.command import (
    AlertsHereCommand,
    ApprovalsHereCommand,
    AuditExportCommand,
    Command,
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
from bot.domain.commands.table import command_spec
from bot.domain.commands.words import QUOTES, is_user_reference


def target_of(command: Command) -> str | None:
    """The user the command names, as typed (an exact reference or a name); None for commands about nobody."""
    if isinstance(command, IssueCommand | OnboardCommand):
        return command.request.target
    if isinstance(command, RevokeCommand | StatusCommand):
        return command.target
    return None


def names_a_person_by_name(command: Command) -> bool:
    """True when the command's user is a name still to be resolved to one person."""
    target = target_of(command)
    return target is not None and not is_user_reference(target)


def with_target(command: Command, object_id: str) -> Command:
    """The same command naming `object_id` instead of what was typed (a name resolved to one person)."""
    if not is_user_reference(object_id):
        raise ValueError("with_target needs an object id or a user principal name")
    if isinstance(command, IssueCommand | OnboardCommand):
        return replace(command, request=replace(command.request, target=object_id))
    if isinstance(command, RevokeCommand | StatusCommand):
        return replace(command, target=object_id)
    raise ValueError(f"{type(command).__name__} names no user")


def command_text(command: Command) -> str:
    """The canonical text of the command; see the module docstring."""
    if isinstance(command, IssueCommand):
        request = command.request
        parts = ["/tap issue", _user(request.target)]
        if request.lifetime_minutes is not None:
            parts.append(f"{request.lifetime_minutes}m")
        if request.one_time:
            parts.append("one-time")
        if request.start_at is not None:
            parts.append(f"start {iso_utc(request.start_at)}")
        if request.replace:
            parts.append("replace")
        return " ".join(parts) + _reason(request.reason)
    if isinstance(command, OnboardCommand):
        request = command.request
        parts = ["/tap onboard", _user(request.target)]
        if request.lifetime_minutes is not None:
            parts.append(f"{request.lifetime_minutes}m")
        if request.start_at is not None:
            parts.append(f"start {iso_utc(request.start_at)}")
        return " ".join(parts) + _reason(request.reason)
    if isinstance(command, RevokeCommand):
        return f"/tap revoke {_user(command.target)}{_reason(command.reason)}"
    if isinstance(command, StatusCommand):
        return f"/tap status {_user(command.target)}"
    if isinstance(command, RevokeJobCommand):
        return f"/tap revoke job {command.job_id}{_reason(command.reason)}"
    if isinstance(command, AuditExportCommand):
        period = command.period
        return f"/tap audit export {period.first_day.isoformat()} {period.last_day.isoformat()}"
    if isinstance(command, FormCommand):
        return f"/tap {command.word}"
    if isinstance(command, HelpCommand):
        return f"/tap {_unknown_word(command.unknown_word)}" if command.unknown_word else "/tap help"
    if isinstance(command, PolicyCommand):
        return "/tap policy"
    if isinstance(command, RequestsCommand):
        return "/tap requests"
    if isinstance(command, ApprovalsHereCommand):
        return "/tap approvals here"
    if isinstance(command, AlertsHereCommand):
        return "/tap alerts here"
    if isinstance(command, SignOutCommand):
        return "/tap signout"
    raise TypeError(f"no text for {type(command).__name__}")


def iso_utc(moment: datetime) -> str:
    """2026-12-01T08:00Z: the instant in UTC, seconds and microseconds only when there are any."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M")
    if utc.second or utc.microsecond:
        text += utc.strftime(":%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def _unknown_word(word: str) -> str:
    """The word as typed, in quotes when it would otherwise read as a command or as more than one word."""
    if word[0] not in QUOTES and not any(char.isspace() for char in word) and command_spec(word) is None:
        return word
    return f'"{word}"' if '"' not in word else f"“{word}”"


def _user(target: str) -> str:
    return target if is_user_reference(target) else f'"{target}"'  # a name never contains quotes


def _reason(reason: str) -> str:
    """` reason "…"` at the end of the line, in quotes the reason does not contain (or as the rest of the line)."""
    if not reason:
        return ""
    if '"' not in reason:
        return f' reason "{reason}"'
    if "”" not in reason:
        return f" reason “{reason}”"
    if reason[0] not in QUOTES:
        return f" reason {reason}"
    raise ValueError("a reason that starts with a quote and holds both kinds of quote has no text form")
