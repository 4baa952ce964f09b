"""`/tap audit export`: the parser's day ranges, and the file the service builds (operators only, audited)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.domain.audit import AuditAction, AuditOutcome, AuditPeriod
from bot.domain.audit_export import EXPORT_HEADER, AuditExportService
from bot.domain.commands import AuditExportCommand, CommandError, HelpCommand, parse_command
from bot.domain.errors import Refused, Rule
from bot.domain.model import Caller
from tests.fakes import TENANT, FixedClock, MemoryAudit

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
OPERATOR = Caller(object_id="op-1", tenant_id=TENANT, display_name="Olga Operator")


def parse(text: str) -> object:
    return parse_command(text, now=NOW, tz=BERLIN)


def period_of(text: str) -> AuditPeriod:
    command = parse(text)
    assert isinstance(command, AuditExportCommand), command
    return command.period


def test_default_is_the_last_seven_days_in_the_typists_zone() -> None:
    period = period_of("/tap audit export")
    assert (period.first_day, period.last_day) == (date(2026, 11, 20), date(2026, 11, 26))
    assert period.since == datetime(2026, 11, 20, tzinfo=BERLIN)
    assert period.until == datetime(2026, 11, 27, tzinfo=BERLIN)
    assert period.label == "2026-11-20 to 2026-11-26 (Europe/Berlin)"


def test_late_evening_utc_is_already_tomorrow_further_east() -> None:
    command = parse_command("tap audit export", now=datetime(2026, 11, 26, 23, 30, tzinfo=UTC), tz=BERLIN)
    assert isinstance(command, AuditExportCommand)
    assert command.period.last_day == date(2026, 11, 27)


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("/tap audit export 2026-11-01", date(2026, 11, 1), date(2026, 11, 26)),
        ("/tap audit export 2026-10-01 2026-10-31", date(2026, 10, 1), date(2026, 10, 31)),
        ("audit export from 2026-10-01 to 2026-10-31", date(2026, 10, 1), date(2026, 10, 31)),
        ("/TAP Audit EXPORT 2026-11-26", date(2026, 11, 26), date(2026, 11, 26)),
        ("/tap audit export 2026-11-20 2026-12-31", date(2026, 11, 20), date(2026, 12, 31)),
    ],
)
def test_explicit_days(text: str, first: date, last: date) -> None:
    period = period_of(text)
    assert (period.first_day, period.last_day) == (first, last)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("/tap audit", "Type '/tap audit export'"),
        ("/tap audit show", "Type '/tap audit export'"),
        ("/tap audit export yesterday", "'yesterday' is not a date"),
        ("/tap audit export 2026-02-30", "'2026-02-30' is not a date"),
        ("/tap audit export 2026-01-01 2026-01-02 2026-01-03", "at most two dates"),
        ("/tap audit export 2026-12-01", "has not come yet"),
        ("/tap audit export 2026-11-20 2026-11-01", "comes before the first day"),
        ("/tap audit export 2024-01-01 2026-01-01", "at most 366 days"),
    ],
)
def test_what_is_not_a_range_gets_a_reason_and_an_example(text: str, reason: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse(text)
    assert reason in raised.value.reason
    assert raised.value.example.startswith("/tap audit export")


def test_audit_export_is_listed_in_help() -> None:
    from cards.reference import HELP_LINES

    assert any(title.startswith("/tap audit export") for title, _ in HELP_LINES)
    assert not isinstance(parse("/tap audit export"), HelpCommand)


@dataclass(frozen=True)
class Row:
    id: int
    at: datetime
    action: str = "issue"
    outcome: str = "succeeded"
    actor_id: str = "op-1"
    actor_name: str = "Olga Operator"
    target_id: str | None = "u-1"
    target_upn: str | None = "megan@contoso.com"
    lifetime_minutes: int | None = 120
    start_at: datetime | None = None
    one_time: bool | None = False
    pass_method_id: str | None = "m-1"
    graph_request_id: str | None = "req-1"
    rule: str | None = None
    detail: str = ""
    reason: str = ""
    verification_id: str | None = None
    evidence_method: str | None = None
    evidence_by_id: str | None = None
    evidence_by: str | None = None
    evidence_at: datetime | None = None
    evidence_score: float | None = None


@dataclass
class Rows:
    rows: list[Row]

    async def audit_rows(self, since: datetime | None = None) -> list[Row]:
        return [row for row in self.rows if since is None or row.at >= since]


@dataclass
class Operators:
    allowed: bool = True

    async def require_operator(self, caller: Caller) -> None:
        if not self.allowed:
            raise Refused(Rule.NOT_OPERATOR, "Only TAP operators can use this command.")


def service(rows: list[Row], audit: MemoryAudit, *, operator: bool = True) -> AuditExportService:
    return AuditExportService(operators=Operators(operator), source=Rows(rows), audit=audit, clock=FixedClock(NOW))


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, so Excel reads it right"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


async def test_the_file_holds_the_days_asked_for_with_formulas_neutralised() -> None:
    rows = [
        Row(1, datetime(2026, 11, 19, 22, 59, tzinfo=UTC)),  # 23:59 in Berlin, the day before the period
        Row(2, datetime(2026, 11, 19, 23, 0, tzinfo=UTC), detail='=HYPERLINK("http://evil")'),  # 00:00 Berlin
        Row(
            3,
            datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
            target_upn="+cmd@contoso.com",
            one_time=None,
            reason="@SUM(1+1) INC0012345",
        ),
        Row(4, datetime(2026, 11, 26, 13, 0, tzinfo=UTC)),  # now: after the cutoff
    ]
    audit = MemoryAudit()
    file = await service(rows, audit).prepare(OPERATOR, AuditPeriod.last_days(7, now=NOW, timezone=BERLIN))
    assert file.events == 2 and file.cutoff == NOW
    assert file.name == "tapbot-audit-2026-11-20-to-2026-11-26.csv"
    records = read_csv(file.data)
    assert tuple(records[0].keys()) == EXPORT_HEADER
    assert [record["id"] for record in records] == ["2", "3"]
    assert records[0]["timeUtc"] == "2026-11-19T23:00:00Z" and records[0]["timeLocal"] == "2026-11-20 00:00:00"
    assert records[0]["detail"] == '\'=HYPERLINK("http://evil")'
    assert records[1]["targetUserPrincipalName"] == "'+cmd@contoso.com"
    assert records[1]["oneTime"] == "" and records[0]["oneTime"] == "no"
    assert records[1]["reason"] == "'@SUM(1+1) INC0012345" and records[0]["reason"] == ""
    assert audit.events == [], "building the file writes nothing; offering and sending do"


async def test_a_fixed_cutoff_gives_the_same_file_again() -> None:
    rows = [Row(1, datetime(2026, 11, 25, 8, 0, tzinfo=UTC)), Row(2, datetime(2026, 11, 26, 10, 0, tzinfo=UTC))]
    audit = MemoryAudit()
    exports = service(rows, audit)
    period = AuditPeriod.last_days(7, now=NOW, timezone=BERLIN)
    first = await exports.prepare(OPERATOR, period, cutoff=datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    rows.append(Row(3, datetime(2026, 11, 26, 12, 30, tzinfo=UTC)))
    again = await exports.prepare(OPERATOR, period, cutoff=first.cutoff)
    assert again.data == first.data and again.events == 1


async def test_only_operators_export_and_refusals_are_audited() -> None:
    audit = MemoryAudit()
    with pytest.raises(Refused):
        await service([Row(1, NOW)], audit, operator=False).prepare(
            OPERATOR, AuditPeriod.last_days(7, now=NOW, timezone=BERLIN)
        )
    [event] = audit.events
    assert (event.action, event.outcome, event.rule) == (
        AuditAction.AUDIT_EXPORT,
        AuditOutcome.REFUSED,
        Rule.NOT_OPERATOR.value,
    )


async def test_offered_and_sent_are_audited_with_the_range() -> None:
    audit = MemoryAudit()
    exports = service([Row(1, datetime(2026, 11, 25, tzinfo=UTC))], audit)
    file = await exports.prepare(OPERATOR, AuditPeriod.last_days(7, now=NOW, timezone=BERLIN))
    await exports.offered(OPERATOR, file)
    await exports.sent(OPERATOR, file)
    assert [event.outcome for event in audit.events] == [AuditOutcome.NEEDS_CONFIRMATION, AuditOutcome.SUCCEEDED]
    assert all(event.action is AuditAction.AUDIT_EXPORT for event in audit.events)
    assert "2026-11-20 to 2026-11-26 (Europe/Berlin), 1 events" in audit.events[1].detail
