"""What a parsed command is: one frozen value per command, and the one error a command line can raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.audit import AuditPeriod
from bot.domain.model import OnboardRequest, PassRequest

FormWord = Literal["issue", "onboard"]


@dataclass(frozen=True)
class IssueCommand:
    request: PassRequest


@dataclass(frozen=True)
class RevokeCommand:
    target: str
    reason: str = ""


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
class AlertsHereCommand:
    pass


@dataclass(frozen=True)
class RequestsCommand:
    pass


@dataclass(frozen=True)
class RevokeJobCommand:
    """`/tap revoke job 12`: revoke every pass bulk job 12 delivered."""

    job_id: int
    reason: str = ""  # `/tap revoke job 12 reason "INC…"`: the reason of every row (see bot/domain/reasons.py)


@dataclass(frozen=True)
class AuditExportCommand:
    """`/tap audit export [first day] [last day]`: the audit log of those days as a CSV file (operators)."""

    period: AuditPeriod


@dataclass(frozen=True)
class SignOutCommand:
    """`/tap signout`: forget the technician's sign-in (delegated writes): the next write asks them to sign in."""


@dataclass(frozen=True)
class FormCommand:
    """`/tap`, `/tap issue` or `/tap onboard` without a user: open the form of that command."""

    word: FormWord = "issue"


Command = (
    IssueCommand
    | RevokeCommand
    | StatusCommand
    | PolicyCommand
    | HelpCommand
    | OnboardCommand
    | ApprovalsHereCommand
    | AlertsHereCommand
    | RequestsCommand
    | RevokeJobCommand
    | AuditExportCommand
    | FormCommand
    | SignOutCommand
)


class CommandError(ValueError):
    """The text could not be understood. `reason` is one sentence; `example` a correct command."""

    def __init__(self, reason: str, example: str) -> None:
        super().__init__(f"{reason} Example: {example}")
        self.reason = reason
        self.example = example
