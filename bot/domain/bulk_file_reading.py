"""Turns the bytes of an attached CSV or Excel file into a table: which column holds what, and the raw cells.

Nothing here interprets a value (that is `bulk_file.py`); this module only decides the format, the encoding, the
delimiter and the header, and refuses files that are not a plain table. Cells are data: nothing is ever evaluated,
and workbooks are opened with `data_only=True`, so a formula yields the value Excel last saved, or nothing.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.domain.commands import is_user_reference
from bot.domain.errors import TapError

CellValue = str | int | float | bool | datetime | date | time | timedelta | None

MAX_XLSX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_XLSX_MEMBERS = 10_000
EXCEL_MAX_ROW = 1_048_576
MAX_COLUMNS = 1000  # in a CSV header
XLSX_HEADER_WIDTH = 256  # the user column must be among a workbook's first 256 columns
XLSX_HEADERLESS_WIDTH = 8  # in a file without a header, values this far right of the user are reported

TEXT_EXTENSIONS = frozenset({"csv", "txt", "tsv"})
XLSX_EXTENSIONS = frozenset({"xlsx"})

ACCEPTED_USER_COLUMNS = "userPrincipalName, UPN, Email, E-mail, Mail, User or objectId"

NOT_A_TABLE = (
    "This doesn't look like a CSV or Excel file; attach the list of users saved as CSV UTF-8 "
    "or as an Excel workbook (.xlsx)."
)
NOT_UTF8 = (
    "This file is not saved as UTF-8 text; in Excel use Save As → CSV UTF-8 (Comma delimited) and attach it again."
)
EMPTY = (
    "The file has no users in it; list one user principal name per row under a userPrincipalName header "
    "and attach it again."
)
NO_USER_COLUMN = (
    f"I can't find the column with the users; name it {ACCEPTED_USER_COLUMNS} in the first row and attach it again."
)
NO_HEADER_ROW = (
    "The first row has a user but no column names; add a header row such as userPrincipalName,lifetime,once,start "
    "and attach it again."
)
TOO_MANY_COLUMNS = (
    f"The first row has more than {MAX_COLUMNS} columns; keep the user, lifetime, once and start columns "
    "and attach the file again."
)
XLSX_TOO_BIG = (
    "This workbook is too large once unpacked; save just the list of users as CSV UTF-8 or as a smaller .xlsx "
    "and attach it again."
)
XLSX_LOCKED = (
    "This workbook is password-protected or in the old .xls format; save it as .xlsx without a password, "
    "or as CSV UTF-8, and attach it again."
)


class BulkFileError(TapError):
    """The whole file is refused; `user_message` says what to do. Nothing in it has been acted on."""


def wrong_type(filename: str) -> str:
    return (
        f"I can't read '{shorten(filename)}'; in Excel use Save As → CSV UTF-8 (Comma delimited) "
        "or Excel Workbook (.xlsx) and attach that file."
    )


def too_many_rows(max_rows: int) -> str:
    return (
        f"The file has more than {max_rows} rows; split it into files of at most {max_rows} rows "
        "and attach them one at a time."
    )


@dataclass(slots=True)
class RawRow:
    """The cells of one non-blank data line, picked by column; values are as the file holds them."""

    line: int
    user: CellValue
    lifetime: CellValue
    one_time: CellValue
    start: CellValue
    extra: bool  # a file without a header row has values beside the user
    reason: CellValue = None  # why the pass is wanted (issue 11): text, never interpreted


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]  # the recognised columns, by role: "userPrincipalName", "lifetime", "once", "start"
    ignored_columns: tuple[str, ...]  # the other headers, as written
    has_header: bool
    rows: Iterable[RawRow]  # raises BulkFileError past `max_rows` rows or at a line it cannot read


def read_table(data: bytes, filename: str, *, max_rows: int) -> Table:
    extension = filename.strip().rpartition(".")[2].lower() if "." in filename else ""
    if extension in TEXT_EXTENSIONS:
        return _read_text(data, max_rows)
    if extension in XLSX_EXTENSIONS:
        return _read_xlsx(data, max_rows)
    raise BulkFileError(wrong_type(filename))


# --- columns ------------------------------------------------------------------------------------------------

_USER_ROLE = "userPrincipalName"
_ROLES = (_USER_ROLE, "lifetime", "once", "start", "reason")
_USER_NAMES = ("userprincipalname", "upn", ("email", "emailaddress"), "mail", "user", "objectid")
_OPTIONAL_NAMES = {
    "lifetime": ("lifetime", "lifetimeinminutes"),
    "once": ("once", "onetime", "onetimeuse", "isusableonce", "usableonce"),
    "start": ("start", "startdatetime"),
    "reason": ("reason", "justification"),
}
# Headers that look meant for an optional column but are not one of its names ("Lifetime (hours)", "Start date"):
# silently ignoring them would issue passes with defaults the operator did not intend.
_NEAR_MISSES = {
    "lifetime": ("lifetime",),
    "once": ("once", "onetime", "isusableonce", "usableonce"),
    "start": ("start",),
    "reason": ("reason",),
}
_NEAR_MISS_ADVICE = {
    "lifetime": "rename it to lifetime and write each lifetime with its unit, like 90m, 8h or 2d",
    "once": "rename it to once and write yes or no",
    "start": "rename it to start and write each start as YYYY-MM-DD or YYYY-MM-DD HH:MM",
    "reason": "rename it to reason and write each row's reason, like INC0012345 lost phone",
}
_HEADER_NOISE = re.compile(r"[\s_\-\ufeff\u200b]+")
_BRACKETED = re.compile(r"\[([^\]]+)\]")  # Entra's bulk templates: "User name [userPrincipalName] Required"
_VERSION_LINE = re.compile(r"^version:\s*v\d+(\.\d+)*$", re.IGNORECASE)  # the first line of Entra's templates


def normalise_header(text: str) -> str:
    bracketed = _BRACKETED.search(text)
    if bracketed:
        text = bracketed.group(1)
    return _HEADER_NOISE.sub("", text).lower()


@dataclass(frozen=True)
class _Layout:
    """Where each role's column is (an index into the row), or None when the file has no such column."""

    user: int
    lifetime: int | None = None
    once: int | None = None
    start: int | None = None
    reason: int | None = None
    columns: tuple[str, ...] = (_USER_ROLE,)
    ignored: tuple[str, ...] = ()
    has_header: bool = True
    complaint: str | None = None  # a header that must be fixed before the file can be read

    @property
    def width(self) -> int:
        roles = (self.user, self.lifetime, self.once, self.start, self.reason)
        used = [index for index in roles if index is not None]
        return max(used) + 1

    def pick(self, line: int, cells: Sequence[Any]) -> RawRow:
        count = len(cells)
        user, lifetime, once, start, reason = self.user, self.lifetime, self.once, self.start, self.reason
        return RawRow(
            line,
            cells[user] if user < count else None,
            cells[lifetime] if lifetime is not None and lifetime < count else None,
            cells[once] if once is not None and once < count else None,
            cells[start] if start is not None and start < count else None,
            not self.has_header and any(_filled(cell) for cell in cells[1:]),
            cells[reason] if reason is not None and reason < count else None,
        )


def _match_header(cells: Sequence[str]) -> _Layout | None:
    """The layout the header describes, or None when it names no user column."""
    names = [normalise_header(cell) for cell in cells]
    user: int | None = None
    for wanted in _USER_NAMES:
        aliases = (wanted,) if isinstance(wanted, str) else wanted
        found = [index for index, name in enumerate(names) if name in aliases]
        if found:
            user = found[0]
            if len(found) > 1:
                return _Layout(user, complaint=_twice(cells[found[0]], cells[found[1]]))
            break
    if user is None:
        return None
    optional: dict[str, int] = {}
    complaint: str | None = None
    for index, name in enumerate(names):
        if index == user or not name:
            continue
        role = next((role for role, aliases in _OPTIONAL_NAMES.items() if name in aliases), None)
        if role is not None:
            if role in optional and complaint is None:
                complaint = _twice(cells[optional[role]], cells[index])
            optional.setdefault(role, index)
        elif complaint is None:
            near = next((role for role, starts in _NEAR_MISSES.items() if name.startswith(starts)), None)
            if near is not None:
                complaint = f"I don't know the column '{shorten(cells[index])}'; {_NEAR_MISS_ADVICE[near]}."
    used = {user, *optional.values()}
    return _Layout(
        user,
        optional.get("lifetime"),
        optional.get("once"),
        optional.get("start"),
        optional.get("reason"),
        columns=tuple(role for role in _ROLES if role == _USER_ROLE or role in optional),
        ignored=tuple(cell.strip() for index, cell in enumerate(cells) if index not in used and cell.strip()),
        complaint=complaint,
    )


def _twice(first: str, second: str) -> str:
    return (
        f"The file has the same column twice ('{shorten(first)}' and '{shorten(second)}'); "
        "keep one and attach it again."
    )


def _choose_layout(first_row: Sequence[str]) -> _Layout:
    layout = _match_header(first_row)
    if layout is not None:
        if layout.complaint:
            raise BulkFileError(layout.complaint)
        return layout
    filled = [cell.strip() for cell in first_row if cell.strip()]
    if filled and is_user_reference(first_row[0].strip()):
        if len(filled) > 1:
            raise BulkFileError(NO_HEADER_ROW)
        return _Layout(0, has_header=False)
    raise BulkFileError(NO_USER_COLUMN)


def _filled(cell: object) -> bool:
    if cell is None:
        return False
    return bool(cell.strip()) if isinstance(cell, str) else True


def _is_blank(cells: Sequence[object]) -> bool:
    return not any(_filled(cell) for cell in cells)


_CONTROL_CHARACTERS = str.maketrans(
    {code: f"\\x{code:02x}" for code in [*range(32), 127]} | {9: "\\t", 10: "\\n", 13: "\\r"}
)


def shorten(text: str, limit: int = 60) -> str:
    """A value fit to quote back in a sentence: short, and with control characters made visible."""
    text = text.translate(_CONTROL_CHARACTERS)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- CSV and text ------------------------------------------------------------------------------------------

_DELIMITERS = (",", ";", "\t")
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_BINARY_TEXT = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _decode(data: bytes) -> str:
    boms = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
    for bom, encoding in boms:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                raise BulkFileError(NOT_A_TABLE) from None
            break
    else:
        if _BINARY_BYTES.search(data):
            raise BulkFileError(NOT_A_TABLE)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BulkFileError(NOT_UTF8) from None
    if _BINARY_TEXT.search(text):
        raise BulkFileError(NOT_A_TABLE)
    return text.lstrip("\ufeff")


def _split(line: str, delimiter: str) -> list[str]:
    try:
        cells = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error:  # a header cell beyond csv's field limit
        raise BulkFileError(NO_USER_COLUMN) from None
    if len(cells) > MAX_COLUMNS:
        raise BulkFileError(TOO_MANY_COLUMNS)
    return cells


def _sniff(line: str) -> tuple[str, list[str]]:
    """The delimiter of the first line: the one under which it names a user column (the most cells wins).

    csv.Sniffer guesses from character frequencies and is easily fooled by commas inside quoted names; here the
    header itself says which split is right. A line without a user column (a file without a header) is split by
    whichever delimiter occurs most, comma first.
    """
    best: tuple[str, list[str]] | None = None
    for delimiter in _DELIMITERS:
        cells = _split(line, delimiter)
        if _match_header(cells) is not None and (best is None or len(cells) > len(best[1])):
            best = (delimiter, cells)
    if best is not None:
        return best
    delimiter = max(_DELIMITERS, key=line.count)
    return delimiter, _split(line, delimiter)


_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")  # the line breaks csv knows; not \v, \f or U+2028


def _read_text(data: bytes, max_rows: int) -> Table:
    # Lines are cut from the decoded text one at a time rather than through io.StringIO, which holds a second copy
    # of the text at four bytes a character.
    lines = (match.group() for match in _LINE.finditer(_decode(data)))
    header_line = 0
    seen_version = False
    for first in lines:
        header_line += 1
        if not first.strip(" \t\r\n,;\"'"):
            continue
        if not seen_version and _VERSION_LINE.match(first.strip().strip(",;\t")):
            seen_version = True  # Entra's "version:v1.0" line: the header follows
            continue
        break
    else:
        raise BulkFileError(EMPTY)
    delimiter, header = _sniff(first.rstrip("\r\n"))
    layout = _choose_layout(header)
    rows = _text_rows(lines, delimiter, layout, header_line, header, max_rows)
    return Table(layout.columns, layout.ignored, layout.has_header, rows)


def _text_rows(
    lines: Iterator[str], delimiter: str, layout: _Layout, header_line: int, header: list[str], max_rows: int
) -> Iterator[RawRow]:
    reader = csv.reader(lines, delimiter=delimiter, strict=True, skipinitialspace=True)
    count = 0
    if not layout.has_header:
        count = 1
        yield layout.pick(header_line, header)
    consumed = header_line
    pick = layout.pick
    while True:
        line = consumed + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise BulkFileError(
                f"Line {line} can't be read because a quote is not closed or a value is too long; "
                "fix that line and attach the file again."
            ) from None
        consumed = header_line + reader.line_num
        if not "".join(cells).strip():
            continue
        count += 1
        if count > max_rows:
            raise BulkFileError(too_many_rows(max_rows))
        yield pick(line, cells)


# --- Excel workbooks --------------------------------------------------------------------------------------

_OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")  # .xls, and any password-protected workbook
_SAFE_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


def _check_archive(data: bytes) -> None:
    """Refuses zip bombs before openpyxl opens anything.

    zipfile never inflates a member beyond the size its directory declares (it stops, and the CRC check fails), so
    the declared sizes bound the work. bzip2 and LZMA members inflate a whole input chunk at once before that
    bound applies; Excel never writes them, so they are refused.
    """
    if data.startswith(_OLE_MAGIC):
        raise BulkFileError(XLSX_LOCKED)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception:  # any malformed archive: zipfile raises several kinds
        raise BulkFileError(NOT_A_TABLE) from None
    if len(members) > MAX_XLSX_MEMBERS or sum(member.file_size for member in members) > MAX_XLSX_UNPACKED_BYTES:
        raise BulkFileError(XLSX_TOO_BIG)
    if any(member.compress_type not in _SAFE_COMPRESSION for member in members):
        raise BulkFileError(NOT_A_TABLE)


def _read_xlsx(data: bytes, max_rows: int) -> Table:
    _check_archive(data)
    from openpyxl import load_workbook  # imported here: only workbooks pay for it

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception:  # a damaged or foreign package: openpyxl raises anything from KeyError to XML errors
        raise BulkFileError(NOT_A_TABLE) from None
    try:
        if not workbook.worksheets:
            raise BulkFileError(EMPTY)
        return _read_sheet(workbook.worksheets[0], max_rows)
    except BulkFileError:
        raise
    except Exception:  # a cell openpyxl cannot convert (an out-of-range date, broken XML further down)
        raise BulkFileError(NOT_A_TABLE) from None
    finally:
        workbook.close()


def _read_sheet(sheet: Any, max_rows: int) -> Table:
    header_row = 0
    header: list[str] = []
    seen_version = False
    for number, cells in enumerate(sheet.iter_rows(max_row=EXCEL_MAX_ROW, max_col=XLSX_HEADER_WIDTH), start=1):
        texts = [_header_text(cell.value) for cell in cells]
        if _is_blank(texts):
            continue
        if not seen_version and _VERSION_LINE.match(texts[0].strip()) and _is_blank(texts[1:]):
            seen_version = True
            continue
        header_row, header = number, texts
        break
    if not header_row:
        raise BulkFileError(EMPTY)
    layout = _choose_layout(header)
    first = header_row + 1 if layout.has_header else header_row
    width = layout.width if layout.has_header else XLSX_HEADERLESS_WIDTH
    rows: list[RawRow] = []
    start = layout.start
    for number, cells in enumerate(sheet.iter_rows(min_row=first, max_row=EXCEL_MAX_ROW, max_col=width), start=first):
        values: list[CellValue] = [cell.value for cell in cells]
        if _is_blank(values):
            continue
        if len(rows) >= max_rows:
            raise BulkFileError(too_many_rows(max_rows))
        if start is not None and isinstance(moment := values[start], datetime):
            values[start] = _as_date_if_date_only(moment, cells[start].number_format)
        rows.append(layout.pick(number, values))
    return Table(layout.columns, layout.ignored, layout.has_header, rows)


def _header_text(value: object) -> str:
    return "" if value is None else str(value)


_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


def _as_date_if_date_only(value: datetime, number_format: str | None) -> date | datetime:
    """A cell Excel shows as a bare date becomes a `date`, which means the default start hour of that day."""
    if value.time() != time(0, 0):
        return value
    shown = _FORMAT_LITERALS.sub("", number_format or "").lower()
    return value if "h" in shown or "s" in shown else value.date()
