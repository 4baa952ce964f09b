"""The one command table: it drives parsing, help, the manifest's menus, the examples and the forms' fields."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.domain.commands import (
    COMMANDS,
    EXAMPLES,
    MAX_REASON_LENGTH,
    MENU_SCOPES,
    FieldErrors,
    FormCommand,
    IssueCommand,
    OnboardCommand,
    command_from_fields,
    command_spec,
    command_text,
    parse_command,
)
from bot.domain.model import OnboardRequest, PassRequest
from cards.reference import help_card
from manifest.content import command_list

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)  # 14:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
GUID = "3f2b9c1e-0000-4000-8000-00000000abcd"


def card_strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in card_strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in card_strings(item)]
    return [node] if isinstance(node, str) else []


def parse(text: str):
    return parse_command(text, now=NOW, tz=BERLIN)


def from_fields(word: str, **values: object):
    return command_from_fields(word, values, now=NOW, tz=BERLIN, default_start_hour=8)


def field_errors(word: str, **values: object) -> dict[str, str]:
    with pytest.raises(FieldErrors) as caught:
        from_fields(word, **values)
    return caught.value.errors


def test_every_row_is_one_word_with_its_own_aliases() -> None:
    words = [spec.word for spec in COMMANDS] + [alias for spec in COMMANDS for alias in spec.aliases]
    assert len(words) == len(set(words))
    assert {
        "issue",
        "revoke",
        "status",
        "policy",
        "help",
        "onboard",
        "approvals",
        "alerts",
        "requests",
        "audit",
        "signout",
    } == {spec.word for spec in COMMANDS}


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.word)
def test_each_example_parses_to_what_its_row_produces_and_each_alias_means_the_word(spec) -> None:
    assert EXAMPLES[spec.word] == spec.example
    assert isinstance(parse(spec.example), spec.produces)
    for alias in spec.aliases:
        assert type(parse(spec.example.replace(f"/tap {spec.word}", f"/tap {alias}", 1))) is type(parse(spec.example))
    assert command_spec(f"/{spec.word.upper()}") is spec


def test_the_help_card_lists_every_row_with_its_usage_and_summary() -> None:
    strings = card_strings(help_card())
    for spec in COMMANDS:
        assert spec.usage in strings and spec.summary in strings


@pytest.mark.parametrize("scope", MENU_SCOPES)
def test_the_manifest_menus_are_the_rows_offered_in_each_scope(scope) -> None:
    menu = [(command.title, command.description) for command in command_list(scope)]
    expected = [
        (f"tap {spec.word}", description)
        for spec in COMMANDS
        if (description := spec.menu_description(scope)) is not None
    ]
    assert menu == expected
    assert ("tap approvals" in dict(menu)) == (scope == "team")


def test_only_issue_and_onboard_have_forms_with_the_design_field_names() -> None:
    forms = {spec.word: [field.name for field in spec.fields] for spec in COMMANDS if spec.fields}
    assert forms == {
        "issue": ["person", "lifetime", "oneTime", "startDate", "startTime", "reason"],
        "onboard": ["person", "startDate", "startTime", "lifetime", "reason"],
    }
    issue = command_spec("issue")
    assert issue is not None
    person, reason = issue.field("person"), issue.field("reason")
    assert person is not None and person.required and person.kind == "person"
    assert reason is not None and reason.max_length == MAX_REASON_LENGTH and not reason.required
    assert parse("/tap issue") == FormCommand("issue") and parse("/tap onboard") == FormCommand("onboard")


# --- command_from_fields: the same rules as typed text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "typed"),
    [
        ({"person": GUID}, f"/tap issue {GUID}"),
        ({"person": "megan@contoso.com", "lifetime": "90", "oneTime": "true"}, "/tap issue megan@contoso.com 90 once"),
        ({"person": "Megan Bowen", "lifetime": "8h", "oneTime": False}, '/tap issue "Megan Bowen" 8h'),
        ({"person": GUID, "startDate": "2026-12-01"}, f"/tap issue {GUID} start 2026-12-01"),
        (
            {"person": GUID, "startDate": "2026-12-01", "startTime": "17:30"},
            f"/tap issue {GUID} start 2026-12-01 17:30",
        ),
        ({"person": GUID, "startTime": "09:00"}, f"/tap issue {GUID} start 09:00"),  # passed today: tomorrow
        (
            {"person": GUID, "startTime": "15:00", "reason": " INC1  lost\nphone "},
            f"/tap issue {GUID} start 15:00 reason INC1 lost phone",
        ),
        (
            {"person": GUID, "lifetime": "", "oneTime": "", "startDate": "", "startTime": "", "reason": ""},
            f"/tap issue {GUID}",
        ),
    ],
)
def test_issue_fields_give_the_command_the_same_words_would(values: dict[str, object], typed: str) -> None:
    command = from_fields("issue", **values)
    assert command == parse(typed)
    assert parse(command_text(command)) == command


def test_onboard_fields_and_fields_its_form_does_not_have() -> None:
    command = from_fields("onboard", person="lee@contoso.com", startDate="2026-12-01", reason="HR-7", oneTime="true")
    assert command == OnboardCommand(
        OnboardRequest("lee@contoso.com", datetime(2026, 12, 1, 7, 0, tzinfo=UTC), None, "HR-7")
    )  # oneTime is not on the onboarding form: ignored
    assert parse(command_text(command)) == command


def test_every_bad_field_is_named_with_its_own_sentence() -> None:
    errors = field_errors(
        "issue", person="", lifetime="0", oneTime="maybe", startDate="2026-13-01", reason="x" * (MAX_REASON_LENGTH + 1)
    )
    assert set(errors) == {"person", "lifetime", "oneTime", "startDate", "reason"}
    assert "Choose the person" in errors["person"]
    assert "not a lifetime" in errors["lifetime"]
    assert "not a date" in errors["startDate"]
    assert f"at most {MAX_REASON_LENGTH} characters" in errors["reason"]


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"lifetime": "31d"}, "lifetime", "longer than any pass can last"),
        ({"lifetime": "soon"}, "lifetime", "not a lifetime"),
        ({"startTime": "25:00"}, "startTime", "not a time of day"),
        ({"startTime": "noon"}, "startTime", "not a time of day"),
        ({"startDate": "2026-11-26", "startTime": "09:00"}, "startTime", "already passed"),
        ({"startDate": "2026-11-20"}, "startDate", "already passed"),
        ({"startDate": "2026-11-20", "startTime": "09:00"}, "startDate", "already passed"),
        ({"startDate": "2027-03-01"}, "startDate", "at most 90 days"),
        ({"startDate": "9999-12-31", "startTime": "23:59"}, "startDate", "at most 90 days"),
        ({"person": '"Megan"'}, "person", "cannot contain quotes"),
        ({"person": "x" * 300}, "person", "too long to be a name"),
        ({"person": ["not", "text"]}, "person", "not one I can read"),
    ],
)
def test_field_rules_match_the_typed_rules(values: dict[str, object], field: str, fragment: str) -> None:
    errors = field_errors("issue", **({"person": GUID} | values))
    assert list(errors) == [field]
    assert fragment in errors[field]


def test_a_form_reason_the_text_form_cannot_hold_keeps_its_words() -> None:
    command = from_fields("issue", person=GUID, reason='“a" and ”b”')
    assert isinstance(command, IssueCommand)
    assert command.request == PassRequest(target=GUID, reason='"a" and "b"')
    assert parse(command_text(command)) == command


def test_only_commands_with_a_form_take_fields() -> None:
    with pytest.raises(ValueError, match="has no form"):
        from_fields("revoke", person=GUID)
    with pytest.raises(ValueError, match="has no form"):
        from_fields("nonsense", person=GUID)
