"""Reads the file an operator attaches for a bulk run, and writes the results file the bot sends back.

`read_bulk_file` refuses a file it cannot read as a whole (`BulkFileError`, one sentence saying what to do) and
otherwise returns every row it understood, every duplicate user and every row it did not understand, so the
operator sees all the fixes at once. Which bytes are which cells is `bulk_file_reading.py`; this module says what
a cell means. Nothing is evaluated: a cell such as `=HYPERLINK(…)` is text that fails the user check.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

from bot.domain.bulk_file_reading import (
    ACCEPTED_USER_COLUMNS,
    EMPTY,
    MAX_XLSX_UNPACKED_BYTES,
    BulkFileError,
    CellValue,
    RawRow,
    read_table,
    shorten,
)
from bot.domain.commands import START_PAST_TOLERANCE, is_user_reference, parse_duration_minutes
from bot.domain.eligibility import START_MAX_AHEAD
from bot.domain.reasons import clean_reason

__all__ = [
    "ACCEPTED_USER_COLUMNS",
    "MAX_XLSX_UNPACKED_BYTES",
    "BulkFile",
    "BulkFileError",
    "Duplicate",
    "RequestedRow",
    "RowProblem",
    "read_bulk_file",
    "write_results_csv",
    "write_results_xlsx",
]


@dataclass(frozen=True, slots=True)
class RequestedRow:
    """What one line of the file asks for (or a journal row asked for again); unset fields take the policy's
    defaults."""

    line: int
    target: str  # a user principal name or object id, as written (stripped)
    lifetime_minutes: int | None = None
    one_time: bool | None = None
    start_at: datetime | None = None
    reason: str = ""  # the line's own reason (cleaned, not yet checked against the tenant's rules); "" if none


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A user listed more than once (compared case-insensitively); only the first line is acted on."""

    target: str  # as written on the first line
    lines: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that will not be acted on. `text` is the user as written, if any; `reason` is one sentence."""

    line: int
    text: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class BulkFile:
    rows: tuple[RequestedRow, ...]
    duplicates: tuple[Duplicate, ...]
    problems: tuple[RowProblem, ...]
    columns: tuple[str, ...]  # the recognised columns: "userPrincipalName", then "lifetime", "once", "start", "reason"
    ignored_columns: tuple[str, ...] = ()  # other headers, as written: show them, a misspelt column is no column
    has_header: bool = True


def read_bulk_file(
    data: bytes,
    filename: str,
    *,
    max_rows: int,
    now: datetime,
    tz: tzinfo,
    default_start_hour: int = 8,
) -> BulkFile:
    """Reads a .csv/.txt/.tsv (UTF-8, UTF-8 with BOM, UTF-16 with BOM; `,` `;` or tab) or .xlsx file.

    `now` must be aware; starts without an offset are read in `tz`, and come back in `now`'s time zone.
    Raises BulkFileError for a file that cannot be read as a whole, including one with more than `max_rows`
    data rows. The caller caps the number of bytes.
    """
    table = read_table(data, filename, max_rows=max_rows)
    reader = _RowReader(now=now, tz=tz, default_start_hour=default_start_hour)
    rows: list[RequestedRow] = []
    problems: list[RowProblem] = []
    first_seen: dict[str, tuple[str, int]] = {}  # casefolded user → the user as first written, and its line
    later_lines: dict[str, list[int]] = {}
    read_any = False
    for source in table.rows:
        read_any = True
        target, row, row_problems = reader.read(source)
        problems.extend(row_problems)
        if target is None:
            continue
        key = target.casefold()
        if key in first_seen:  # a later line for the same user is never acted on, even if the first had a problem
            later_lines.setdefault(key, []).append(source.line)
            continue
        first_seen[key] = (target, source.line)
        if row is not None:
            rows.append(row)
    if not read_any:
        raise BulkFileError(EMPTY)
    duplicates = sorted(
        (Duplicate(first_seen[key][0], (first_seen[key][1], *lines)) for key, lines in later_lines.items()),
        key=lambda duplicate: duplicate.lines[0],
    )
    return BulkFile(
        rows=tuple(rows),
        duplicates=tuple(duplicates),
        problems=tuple(problems),
        columns=table.columns,
        ignored_columns=table.ignored_columns,
        has_header=table.has_header,
    )


_MAX_VALUE_LENGTH = 40  # no duration or date is longer; also keeps int() away from 5,000-digit strings
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_EXTRA_VALUES = (
    "this line has more than a user; add a header row (userPrincipalName, lifetime, once, start) "
    "to give lifetimes or starts"
)
_TRUE = frozenset({"yes", "y", "true", "1", "x"})
_FALSE = frozenset({"no", "n", "false", "0"})


class _RowReader:
    """Reads the values of one row. Values repeat a lot in real files, so text values are parsed once."""

    def __init__(self, *, now: datetime, tz: tzinfo, default_start_hour: int) -> None:
        self._now = now
        self._earliest = now - START_PAST_TOLERANCE
        self._latest = now + START_MAX_AHEAD
        self._tz = tz
        self._start_hour = time(default_start_hour)
        self._lifetimes: dict[str, int | str] = {}
        self._starts: dict[str, datetime | str | None] = {}
        self._one_times: dict[str, bool | str | None] = {}

    def read(self, source: RawRow) -> tuple[str | None, RequestedRow | None, list[RowProblem]]:
        """The row's user if it is a valid reference, the row if it has no problem, and the row's problems."""
        user = _text(source.user)
        reasons: list[str] = []
        target: str | None = None
        if not user:
            reasons.append("no user is given on this line")
        elif is_user_reference(user):
            target = user
        else:
            reasons.append(f"'{shorten(user)}' is not a user principal name or object id")
        lifetime = self._lifetime(source.lifetime)
        if isinstance(lifetime, str):
            reasons.append(lifetime)
            lifetime = None
        one_time = self._one_time(source.one_time)
        if isinstance(one_time, str):
            reasons.append(one_time)
            one_time = None
        start = self._start(source.start)
        if isinstance(start, str):
            reasons.append(start)
            start = None
        if source.extra:
            reasons.append(_EXTRA_VALUES)
        if reasons or target is None:
            text = shorten(user, 100) if user else None
            return target, None, [RowProblem(source.line, text, reason) for reason in reasons]
        requested = RequestedRow(
            line=source.line,
            target=target,
            lifetime_minutes=lifetime,
            one_time=one_time,
            start_at=start,
            reason=clean_reason(_text(source.reason)),
        )
        return target, requested, []

    def _lifetime(self, value: CellValue) -> int | str | None:
        """Minutes, None when empty, or the problem as a sentence."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            cached = self._lifetimes.get(value)
            if cached is None:
                cached = self._lifetimes[value] = _lifetime_from_text(value.strip())
            return cached
        if isinstance(value, bool):
            return _not_a_duration(str(value))
        if isinstance(value, int | float):
            whole = isinstance(value, int) or value.is_integer()
            return int(value) if whole and value > 0 else _not_a_duration(_shown(value))
        if isinstance(value, time):  # "8:00" typed into a workbook cell
            minutes = value.hour * 60 + value.minute
            return minutes if minutes > 0 and not value.second else _not_a_duration(_shown(value))
        if isinstance(value, timedelta):
            minutes, rest = divmod(value, timedelta(minutes=1))
            return minutes if minutes > 0 and not rest else _not_a_duration(_shown(value))
        return _not_a_duration(_shown(value))

    def _one_time(self, value: CellValue) -> bool | str | None:
        """True or False, None when empty, or the problem as a sentence."""
        if isinstance(value, str):
            if value not in self._one_times:
                self._one_times[value] = _one_time_from_text(value)
            return self._one_times[value]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        return _one_time_from_text(_shown(value))

    def _start(self, value: CellValue) -> datetime | str | None:
        """The start in `now`'s time zone, None when empty or "now", or the problem as a sentence."""
        if isinstance(value, str):
            if value not in self._starts:
                self._starts[value] = self._start_from_text(value.strip())
            return self._starts[value]
        if value is None:
            return None
        if isinstance(value, datetime):
            start = value if value.tzinfo else value.replace(tzinfo=self._tz)
        elif isinstance(value, date):
            start = datetime.combine(value, self._start_hour, tzinfo=self._tz)
        elif isinstance(value, time):
            return f"start '{_shown(value)}' has no date; write YYYY-MM-DD HH:MM"
        else:
            return _not_a_start(_shown(value))
        return self._checked(start, _shown(value))

    def _start_from_text(self, text: str) -> datetime | str | None:
        if not text or text.lower() == "now":
            return None
        try:
            if _DATE.match(text):
                start = datetime.combine(date.fromisoformat(text), self._start_hour, tzinfo=self._tz)
            elif match := _DATE_TIME.match(text):
                year, month, day, hour, minute, second, offset = match.groups()
                zone = self._tz if offset is None else _offset(offset)
                start = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), 0, zone)
            else:
                return _not_a_start(text)
        except ValueError:  # 2026-02-30, 25:00, an offset beyond a day
            return _not_a_start(text)
        return self._checked(start, text)

    def _checked(self, start: datetime, shown: str) -> datetime | str:
        try:
            if start < self._earliest:
                return f"start '{shorten(shown)}' has already passed"
            if start > self._latest:
                return f"start '{shorten(shown)}' is more than {START_MAX_AHEAD.days} days ahead"
            return start.astimezone(self._now.tzinfo)
        except OverflowError:  # 9999-12-31 23:00 west of Greenwich is beyond what datetime holds in UTC
            return _not_a_start(shown)


def _lifetime_from_text(text: str) -> int | str:
    minutes = parse_duration_minutes(text) if len(text) <= _MAX_VALUE_LENGTH else None
    return minutes if minutes is not None and minutes > 0 else _not_a_duration(text)


def _one_time_from_text(text: str) -> bool | str | None:
    word = text.strip().lower()
    if not word:
        return None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return f"once '{shorten(text.strip())}' is not yes or no"


def _offset(text: str) -> timezone:
    if text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-delta if text[0] == "-" else delta)  # raises ValueError beyond ±24h


def _not_a_duration(shown: str) -> str:
    return f"lifetime '{shorten(shown)}' is not a duration like 90m, 8h or 2d"


def _not_a_start(shown: str) -> str:
    return f"start '{shorten(shown)}' is not a date; write YYYY-MM-DD or YYYY-MM-DD HH:MM"


def _text(value: CellValue) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return _shown(value)


def _shown(value: CellValue) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(" ", "minutes")
    if isinstance(value, time):
        return value.isoformat("minutes")
    return str(value)


# --- the results file --------------------------------------------------------------------------------------

# OWASP "CSV Injection": a cell starting with one of these is a formula, or becomes one, in a spreadsheet. NUL and
# line feed (ASVS 1.2.10) and the full-width forms some spreadsheets also accept are included for good measure.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "＝", "＋", "－", "＠")


def neutralise(cell: str) -> str:
    """The cell as text a spreadsheet shows and never runs: a leading single quote before a formula start."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def write_results_csv(rows: Iterable[Sequence[str]], header: Sequence[str]) -> bytes:
    """UTF-8 with BOM (so Excel reads it as UTF-8), comma-delimited, CRLF, quotes doubled, formulas neutralised."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise(cell) for cell in header])
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_results_xlsx(rows: Iterable[Sequence[str]], header: Sequence[str], *, sheet: str = "Results") -> bytes:
    """An .xlsx workbook in which every cell is a string cell: the file for values that must stay exact.

    A pass may start with `=`, `+`, `-` or `@`. In a CSV that cell is either evaluated by a spreadsheet or, once
    neutralised with the leading quote OWASP recommends, no longer the pass when read by anything but a
    spreadsheet (and `="…"` is itself a formula). In .xlsx the cell's type is part of the file: a string cell
    (written inline, `t="inlineStr"`, never `<f>`) is shown as text by Excel and LibreOffice and is never
    evaluated, and every reader gets the value exactly as written. So nothing is neutralised or altered here;
    only characters XML cannot carry (control characters, which no pass contains) are dropped.
    """
    from openpyxl import Workbook  # imported here: only exports pay for it
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    for values in (header, *rows):
        cells = []
        for value in values:
            cell = WriteOnlyCell(worksheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
            cell.data_type = "s"  # openpyxl would store a value starting with "=" as a formula otherwise
            cells.append(cell)
        worksheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
