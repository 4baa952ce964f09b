"""The audit log as a CSV file for operators: a range of days in the operator's time zone, formulas neutralised.

Operators only (deny by default), and the export itself is audited: offered (waiting for the operator to accept the
file), sent, declined or failed. The file never holds a pass: the audit table has no column that could.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.domain.audit import AuditAction, AuditOutcome, AuditPeriod
from bot.domain.auditing import Auditor, Subject
from bot.domain.bulk_file import write_results_csv
from bot.domain.errors import TapError
from bot.domain.model import Caller
from bot.domain.ports import AuditLog, Clock

MAX_EXPORT_EVENTS = 200_000
EXPORT_HEADER = (
    "id",
    "timeUtc",
    "timeLocal",
    "action",
    "outcome",
    "actorName",
    "actorId",
    "targetUserPrincipalName",
    "targetId",
    "lifetimeMinutes",
    "startUtc",
    "oneTime",
    "passMethodId",
    "graphRequestId",
    "rule",
    "detail",
    "reason",  # what the requester gave as the reason (user text: neutralised like every cell)
    "verificationId",  # the verification of the person (issue 12) and, on a pass's row, its evidence
    "verificationMethod",
    "verifiedBy",
    "verifiedById",
    "verifiedAtUtc",
    "verificationScore",
)


class ExportTooLarge(TapError):
    """The range holds more events than one file should."""


class AuditRecord(Protocol):
    """One row of the audit table, as the store gives it back."""

    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def actor_id(self) -> str: ...
    @property
    def actor_name(self) -> str: ...
    @property
    def target_id(self) -> str | None: ...
    @property
    def target_upn(self) -> str | None: ...
    @property
    def lifetime_minutes(self) -> int | None: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def one_time(self) -> bool | None: ...
    @property
    def pass_method_id(self) -> str | None: ...
    @property
    def graph_request_id(self) -> str | None: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def detail(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def verification_id(self) -> str | None: ...
    @property
    def evidence_method(self) -> str | None: ...
    @property
    def evidence_by(self) -> str | None: ...
    @property
    def evidence_by_id(self) -> str | None: ...
    @property
    def evidence_at(self) -> datetime | None: ...
    @property
    def evidence_score(self) -> float | None: ...


class AuditSource(Protocol):
    async def audit_rows(self, since: datetime | None = None) -> Sequence[AuditRecord]: ...


class OperatorCheck(Protocol):
    async def require_operator(self, caller: Caller) -> None: ...


@dataclass(frozen=True)
class AuditFile:
    period: AuditPeriod
    cutoff: datetime  # events from `period.since` up to (not including) this moment are in the file
    events: int
    data: bytes

    @property
    def name(self) -> str:
        return self.period.file_name


class AuditExportService:
    def __init__(self, *, operators: OperatorCheck, source: AuditSource, audit: AuditLog, clock: Clock) -> None:
        self._operators = operators
        self._source = source
        self._clock = clock
        self._auditor = Auditor(audit, clock)

    async def prepare(self, caller: Caller, period: AuditPeriod, *, cutoff: datetime | None = None) -> AuditFile:
        """The file for `period`, up to `cutoff` (default: now), for an operator. Refusals are audited."""
        return await self._auditor.audited(
            AuditAction.AUDIT_EXPORT, caller, Subject(None), lambda: self._prepare(caller, period, cutoff)
        )

    async def _prepare(self, caller: Caller, period: AuditPeriod, cutoff: datetime | None) -> AuditFile:
        await self._operators.require_operator(caller)
        # A fixed cutoff makes the file the same whenever it is built again (the log is append-only).
        end = min(period.until, cutoff or self._clock.now())
        rows = [row for row in await self._source.audit_rows(period.since) if row.at < end]
        if len(rows) > MAX_EXPORT_EVENTS:
            raise ExportTooLarge(
                f"{period.label} holds {len(rows)} audit events, more than {MAX_EXPORT_EVENTS} fit in one file. "
                "Export a shorter range."
            )
        data = write_results_csv((_cells(row, period.timezone) for row in rows), EXPORT_HEADER)
        return AuditFile(period, end, len(rows), data)

    async def offered(self, caller: Caller, file: AuditFile) -> None:
        await self._record(caller, AuditOutcome.NEEDS_CONFIRMATION, file, "offered")

    async def sent(self, caller: Caller, file: AuditFile) -> None:
        await self._record(caller, AuditOutcome.SUCCEEDED, file, "sent")

    async def declined(self, caller: Caller, file_label: str) -> None:
        await self._auditor.record(
            AuditAction.AUDIT_EXPORT, AuditOutcome.NOTHING_TO_DO, caller, detail=f"declined: {file_label}"
        )

    async def refused(self, caller: Caller, why: str) -> None:
        """An answer to an offer that was not made to this caller, or came back damaged: nothing is sent."""
        await self._auditor.record(
            AuditAction.AUDIT_EXPORT, AuditOutcome.REFUSED, caller, detail=f"file not sent: {why}"[:2000]
        )

    async def failed(self, caller: Caller, file: AuditFile, reason: str) -> None:
        await self._record(caller, AuditOutcome.FAILED, file, f"upload failed ({reason})")

    async def _record(self, caller: Caller, outcome: AuditOutcome, file: AuditFile, what: str) -> None:
        detail = f"{what}: {file.period.label}, {file.events} events until {file.cutoff.isoformat()}"
        await self._auditor.record(AuditAction.AUDIT_EXPORT, outcome, caller, detail=detail[:2000])


def _cells(row: AuditRecord, timezone: ZoneInfo) -> tuple[str, ...]:
    return (
        str(row.id),
        _utc(row.at),
        row.at.astimezone(timezone).strftime("%Y-%m-%d %H:%M:%S"),
        row.action,
        row.outcome,
        row.actor_name or "",
        row.actor_id,
        row.target_upn or "",
        row.target_id or "",
        "" if row.lifetime_minutes is None else str(row.lifetime_minutes),
        _utc(row.start_at) if row.start_at else "",
        "" if row.one_time is None else ("yes" if row.one_time else "no"),
        row.pass_method_id or "",
        row.graph_request_id or "",
        row.rule or "",
        row.detail or "",
        row.reason or "",
        row.verification_id or "",
        row.evidence_method or "",
        row.evidence_by or "",
        row.evidence_by_id or "",
        _utc(row.evidence_at) if row.evidence_at else "",
        "" if row.evidence_score is None else f"{row.evidence_score:g}",
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
