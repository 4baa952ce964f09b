from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.domain.commands import (
    CommandError,
    FormCommand,
    HelpCommand,
    IssueCommand,
    PolicyCommand,
    RevokeCommand,
    RevokeJobCommand,
    StatusCommand,
    parse_command,
    parse_duration_minutes,
)
from bot.domain.eligibility import format_minutes

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
GUID = "3f2b9c1e-0000-4000-8000-00000000abcd"


def parse(text: str, tz: ZoneInfo = BERLIN):
    return parse_command(text, now=NOW, tz=tz)


@pytest.mark.parametrize(("token", "minutes"), [("90", 90), ("90m", 90), ("8h", 480), ("2d", 2880), ("1h30m", 90)])
def test_durations(token: str, minutes: int) -> None:
    assert parse_duration_minutes(token) == minutes


def test_issue_with_everything_in_any_case_and_spacing() -> None:
    command = parse("  /TAP   Issue   Megan@Contoso.com   8H  One-Time  start tomorrow 08:00 ")
    assert isinstance(command, IssueCommand)
    request = command.request
    assert request.target == "Megan@Contoso.com"
    assert request.lifetime_minutes == 480 and request.one_time
    assert request.start_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)  # 08:00 in Berlin


def test_issue_by_object_id_with_keyword_forms() -> None:
    command = parse(f"tap issue {GUID} lifetime=2h start=+30m replace")
    assert isinstance(command, IssueCommand)
    assert command.request.target == GUID and command.request.lifetime_minutes == 120 and command.request.replace
    assert command.request.start_at == datetime(2026, 11, 26, 13, 30, tzinfo=UTC)


def test_clock_time_already_passed_today_means_tomorrow() -> None:
    command = parse("tap issue a@contoso.com start 09:00")  # it is 14:00 in Berlin
    assert isinstance(command, IssueCommand)
    assert command.request.start_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_other_commands() -> None:
    assert parse("/tap revoke a@contoso.com") == RevokeCommand("a@contoso.com")
    assert parse("status mailto:a@contoso.com") == StatusCommand("a@contoso.com")
    assert parse("/tap policy") == PolicyCommand()
    assert parse("/tap help") == HelpCommand()
    assert parse("") == HelpCommand()
    assert parse("/tap") == FormCommand("issue")  # was the help card; issue 11: a bare /tap opens the form
    assert parse("/tap dance") == HelpCommand(unknown_word="dance")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/tap issue 8h one-time", "Tell me who"),
        ("/tap issue a@contoso.com soon", "I don't understand 'soon'"),
        ("/tap issue a@contoso.com 0m", "not a lifetime"),
        ("/tap issue a@contoso.com 8h 2h", "lifetime only once"),
        ("/tap issue a@contoso.com start 2020-01-01", "already passed"),
        ("/tap issue a@contoso.com start 25:00", "not a time of day"),
        ("/tap issue a@contoso.com start someday", "not a start time"),
        ("/tap revoke", "whose pass"),
        ("/tap status a@contoso.com b@contoso.com", "exactly one user"),
        ("/tap policy now", "takes no arguments"),
        ("/tap issue a@contoso.com start 9999-12-31T23:00", "at most 90 days from now"),
        ("/tap issue a@contoso.com start 9999-12-31T23:00-05:00", "at most 90 days from now"),
        ("/tap issue a@contoso.com start 2027-03-01", "at most 90 days from now"),
        ("/tap issue a@contoso.com start +99999999999999d", "at most 90 days from now"),
        ("/tap issue a@contoso.com start in 99999999999999h", "at most 90 days from now"),
        ("/tap issue a@contoso.com 99999999999999999999", "longer than any pass can last"),
        ("/tap issue a@contoso.com 31d", "longer than any pass can last"),
        ("/tap revoke job 99999999999999999999", "not a job number"),
        ("/tap revoke job 2147483648", "not a job number"),
        ("/tap revoke job ²", "not a job number"),
        ("/tap audit export 0001-01-01 0001-01-02", "starts in 2000"),
    ],
)
def test_malformed_commands_say_why_and_show_an_example(text: str, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert fragment in caught.value.reason
    assert caught.value.example.startswith("/tap ")


def test_largest_values_still_parse() -> None:
    command = parse("/tap issue a@contoso.com 30d start 2027-02-23 08:00")  # 89 days ahead, the longest pass
    assert isinstance(command, IssueCommand) and command.request.lifetime_minutes == 43200
    assert parse("/tap revoke job 2147483647") == RevokeJobCommand(2147483647)


def test_format_minutes() -> None:
    assert format_minutes(90) == "1 hour 30 minutes"
    assert format_minutes(2880) == "2 days"
