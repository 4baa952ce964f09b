"""Commands: what each one is (command.py), the one table of them (table.py) that drives parsing (parser.py,
words.py), help, menus and forms (fields.py), and a command back as text (text.py).

Every name other modules use is importable from `bot.domain.commands`.
"""

from __future__ import annotations

from bot.domain.commands.command import (
    AlertsHereCommand,
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
    SignOutCommand,
    StatusCommand,
)
from bot.domain.commands.examples import EXAMPLE_ISSUE, EXAMPLE_ISSUE_BY_NAME
from bot.domain.commands.fields import FieldErrors, command_from_fields
from bot.domain.commands.parser import EARLIEST_AUDIT_DAY, MAX_COMMAND_LENGTH, MAX_JOB_ID
from bot.domain.commands.spec import MENU_SCOPES, CommandSpec, FieldKind, FieldSpec, MenuScope
from bot.domain.commands.table import COMMANDS, EXAMPLES, command_spec, parse_command
from bot.domain.commands.text import command_text, iso_utc, names_a_person_by_name, target_of, with_target
from bot.domain.commands.words import MAX_NAME_LENGTH, is_user_reference, parse_duration_minutes
from bot.domain.eligibility import START_PAST_TOLERANCE
from bot.domain.reasons import MAX_REASON_LENGTH

__all__ = [
    "COMMANDS",
    "EARLIEST_AUDIT_DAY",
    "EXAMPLES",
    "EXAMPLE_ISSUE",
    "EXAMPLE_ISSUE_BY_NAME",
    "MAX_COMMAND_LENGTH",
    "MAX_JOB_ID",
    "MAX_NAME_LENGTH",
    "MAX_REASON_LENGTH",
    "MENU_SCOPES",
    "START_PAST_TOLERANCE",
    "AlertsHereCommand",
    "ApprovalsHereCommand",
    "AuditExportCommand",
    "Command",
    "CommandError",
    "CommandSpec",
    "FieldErrors",
    "FieldKind",
    "FieldSpec",
    "FormCommand",
    "FormWord",
    "HelpCommand",
    "IssueCommand",
    "MenuScope",
    "OnboardCommand",
    "PolicyCommand",
    "RequestsCommand",
    "RevokeCommand",
    "RevokeJobCommand",
    "SignOutCommand",
    "StatusCommand",
    "command_from_fields",
    "command_spec",
    "command_text",
    "is_user_reference",
    "iso_utc",
    "names_a_person_by_name",
    "parse_command",
    "parse_duration_minutes",
    "target_of",
    "with_target",
]
