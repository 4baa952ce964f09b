"""THE command table: one row per command word. Parsing, the help card (cards/reference.py), Teams' command menus
(manifest/content.py), the examples and the form fields all come from here.

A new command is one row here (its word, usage, help, menu, example, parser) and one handler in bot/teams/handlers.py.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

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
    EXAMPLE_SIGN_OUT,
    EXAMPLE_STATUS,
)
from bot.domain.commands.parser import (
    Line,
    parse_alerts,
    parse_approvals,
    parse_audit,
    parse_help,
    parse_issue,
    parse_onboard,
    parse_policy,
    parse_requests,
    parse_revoke,
    parse_sign_out,
    parse_status,
    split_line,
)
from bot.domain.commands.spec import CommandSpec, FieldSpec, everywhere
from bot.domain.reasons import EXAMPLE_REASON, MAX_REASON_LENGTH

PREFIXES = frozenset({"/tap", "tap", "@tap", "tapbot"})

PERSON = FieldSpec("person", "Person", "person", required=True, placeholder="Type a name, mail address or UPN")
LIFETIME = FieldSpec("lifetime", "Lifetime", "lifetime", placeholder="The policy's default")
ONE_TIME = FieldSpec("oneTime", "One-time use", "toggle")
START_DATE = FieldSpec("startDate", "Start date (empty: today)", "date")
START_TIME = FieldSpec("startTime", "Start time (empty: now)", "time")
REASON = FieldSpec("reason", "Reason", "text", placeholder=EXAMPLE_REASON, max_length=MAX_REASON_LENGTH)

# The message action (Teams manifest `composeExtensions`, bot/teams/message_action.py): "Issue a Temporary Access
# Pass" on any message opens the issue form, prefilled from the message.
MESSAGE_ACTION_ID = "issueTapFromMessage"
MESSAGE_ACTION_TITLE = "Issue a Temporary Access Pass"  # Teams allows 32 characters

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        word="issue",
        aliases=("create", "new"),
        usage="/tap issue USER [LIFETIME] [one-time] [start WHEN] [replace] [reason TEXT]",
        summary="Issue a pass. USER: a name (in quotes if more words follow), name@domain or object id. "
        "LIFETIME: minutes or 90m, 8h, 2d. WHEN: now, +2h, 08:00, tomorrow 08:00, 2026-12-01T08:00 (your time "
        "zone). 'replace' confirms replacing a pass the user already holds. TEXT: why, e.g. a ticket number; "
        "the rest of the line, or in quotes. '/tap issue' alone opens a form.",
        example=EXAMPLE_ISSUE,
        parse=parse_issue,
        produces=(IssueCommand, FormCommand),
        menu=everywhere("<user> [8h] [one-time] [start tomorrow 08:00] [reason …]: a pass, sent to you privately"),
        fields=(PERSON, LIFETIME, ONE_TIME, START_DATE, START_TIME, REASON),
    ),
    CommandSpec(
        word="revoke",
        aliases=("delete", "remove"),
        usage="/tap revoke USER [reason TEXT]",
        summary="Delete the user's pass.",
        example=EXAMPLE_REVOKE,
        parse=parse_revoke,
        produces=(RevokeCommand, RevokeJobCommand),
        menu=everywhere("<user> [reason …]: delete the user's pass and hide any card showing it"),
    ),
    CommandSpec(
        word="status",
        aliases=("show", "get"),
        usage="/tap status USER",
        summary="Show whether the user holds a pass, when it starts and expires (never its value).",
        example=EXAMPLE_STATUS,
        parse=parse_status,
        produces=(StatusCommand,),
        menu=everywhere("<user>: whether the user holds a pass, its start, expiry and state; never the value"),
    ),
    CommandSpec(
        word="policy",
        usage="/tap policy",
        summary="Show the tenant's pass policy: allowed lifetimes, one-time rule, who is in scope.",
        example=EXAMPLE_POLICY,
        parse=parse_policy,
        produces=(PolicyCommand,),
        menu=everywhere("The tenant's TAP policy: allowed lifetimes, default, one-time rule, who is in scope"),
    ),
    CommandSpec(
        word="onboard",
        usage="/tap onboard USER [start WHEN] [LIFETIME] [reason TEXT]",
        summary="Managers: a first-day pass for your own new hire, from the hire date; an operator may have to "
        "approve. '/tap onboard' alone opens a form.",
        example=EXAMPLE_ONBOARD,
        parse=parse_onboard,
        produces=(OnboardCommand, FormCommand),
        menu=everywhere("<user>: managers request an onboarding pass for a new direct report"),
        fields=(PERSON, START_DATE, START_TIME, LIFETIME, REASON),
    ),
    CommandSpec(
        word="requests",
        aliases=("request", "pending"),
        usage="/tap requests",
        summary="Operators: the pending requests. Everyone else: your own requests.",
        example=EXAMPLE_REQUESTS,
        parse=parse_requests,
        produces=(RequestsCommand,),
        menu=everywhere("Approval requests: yours, and (operators) those waiting for a decision"),
    ),
    CommandSpec(
        word="audit",
        usage="/tap audit export [FIRST DAY] [LAST DAY]",
        summary="Operators: the audit log as a CSV file, sent privately. Days as YYYY-MM-DD in your time zone; "
        "default the last 7 days.",
        example=EXAMPLE_AUDIT,
        parse=parse_audit,
        produces=(AuditExportCommand,),
        menu=everywhere("export [first day] [last day]: operators get the audit log as a CSV file, privately"),
    ),
    CommandSpec(
        word="approvals",
        aliases=("approval",),
        usage="/tap approvals here",
        summary="Operators, in a channel: post approval requests to this channel.",
        example=EXAMPLE_APPROVALS,
        parse=parse_approvals,
        produces=(ApprovalsHereCommand,),
        menu=(("team", "here: operators make this channel the one where requests are decided"),),
    ),
    CommandSpec(
        word="alerts",
        aliases=("alert",),
        usage="/tap alerts here",
        summary="Operators, in a channel: post security alerts to this channel (never a pass).",
        example=EXAMPLE_ALERTS,
        parse=parse_alerts,
        produces=(AlertsHereCommand,),
        menu=(("team", "here: operators make this channel the security channel that receives alerts"),),
    ),
    CommandSpec(
        word="signout",
        aliases=("sign-out", "logout"),
        usage="/tap signout",
        summary="Where passes are written with your own Entra rights: forget your sign-in; the next pass you issue "
        "or revoke asks you to sign in again.",
        example=EXAMPLE_SIGN_OUT,
        parse=parse_sign_out,
        produces=(SignOutCommand,),
        menu=(),  # typed only: Teams' command menus stay as they are
    ),
    CommandSpec(
        word="help",
        aliases=("?",),
        usage="/tap help",
        summary="This list.",
        example=EXAMPLE_HELP,
        parse=parse_help,
        produces=(HelpCommand,),
        menu=(
            ("personal", "All commands. To issue passes in bulk, attach a CSV of users here."),
            ("team", "All commands. Bulk: attach a CSV of users in your personal chat with me."),
            ("groupChat", "All commands. Bulk: attach a CSV of users in your personal chat with me."),
        ),
    ),
)

_BY_WORD = {spec.word: spec for spec in COMMANDS} | {alias: spec for spec in COMMANDS for alias in spec.aliases}
EXAMPLES = {spec.word: spec.example for spec in COMMANDS}


def command_spec(word: str) -> CommandSpec | None:
    """The row of a command word or alias, any case, with or without a leading slash."""
    return _BY_WORD.get(word.lower().lstrip("/"))


def parse_command(text: str, *, now: datetime, tz: tzinfo, default_start_hour: int = 8) -> Command:
    """Parses a cleaned command line. Raises CommandError with a reason and a correct example."""
    words = split_line(text)
    if not words:
        return HelpCommand()  # a message that was only a mention, or nothing the cleaning left
    if not words[0].quoted and words[0].text.lower() in PREFIXES:
        words = words[1:]
    if not words:
        return FormCommand("issue")
    spec = None if words[0].quoted else command_spec(words[0].text)
    if spec is None:
        return HelpCommand(unknown_word=words[0].text or None)
    return spec.parse(Line(text, words[1:], now, tz, default_start_hour))
