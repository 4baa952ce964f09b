"""Commands: what each one is (command.py), how text becomes one (parser.py, words.py) and back (text.py).

Every name other modules use is importable from `bot.domain.commands`.
"""

from __future__ import annotations

from bot.domain.commands.command import (
    ApprovalsHereCommand,
    AuditExportCommand,
    Command,
    CommandError,
    FormCommand,
    FormWord,
    HelpCommand,
    IssueCommand,
    OnboardCommand,
    PolicyCommand,
    RequestsCommand,
    RevokeCommand,
    RevokeJobCommand,
    StatusCommand,
)
from bot.domain.commands.examples import EXAMPLE_ISSUE, EXAMPLES
from bot.domain.commands.parser import EARLIEST_AUDIT_DAY, MAX_COMMAND_LENGTH, MAX_JOB_ID, parse_command
from bot.domain.commands.text import command_text, iso_utc, names_a_person_by_name, target_of, with_target
from bot.domain.commands.words import MAX_NAME_LENGTH, is_user_reference, parse_duration_minutes
from bot.domain.eligibility import START_PAST_TOLERANCE
from bot.domain.reasons import MAX_REASON_LENGTH

__all__ = [
    "EARLIEST_AUDIT_DAY",
    "EXAMPLES",
    "EXAMPLE_ISSUE",
    "MAX_COMMAND_LENGTH",
    "MAX_JOB_ID",
    "MAX_NAME_LENGTH",
    "MAX_REASON_LENGTH",
    "START_PAST_TOLERANCE",
    "ApprovalsHereCommand",
    "AuditExportCommand",
    "Command",
    "CommandError",
    "FormCommand",
    "FormWord",
    "HelpCommand",
    "IssueCommand",
    "OnboardCommand",
    "PolicyCommand",
    "RequestsCommand",
    "RevokeCommand",
    "RevokeJobCommand",
    "StatusCommand",
    "command_text",
    "is_user_reference",
    "iso_utc",
    "names_a_person_by_name",
    "parse_command",
    "parse_duration_minutes",
    "target_of",
    "with_target",
]
