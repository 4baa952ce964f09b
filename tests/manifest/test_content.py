"""What the manifest says: names, descriptions, the bot's scopes and its command menus, and Teams' limits on them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.domain.commands.table import COMMANDS
from manifest import ACCENT_COLOR
from manifest.app_manifest import DEVELOPER_NAME, ManifestSettings, build_manifest
from manifest.build import argument_parser
from manifest.content import BOT_SCOPES, FULL_DESCRIPTION, SHORT_DESCRIPTION, command_list
from tests.manifest.conftest import APP_ID, DOMAIN, REPO_ROOT

# Teams' documented limits; the schema allows more for some of them, Teams' own validation does not.
MAX_COMMAND_LISTS = 3
MAX_COMMANDS_PER_LIST = 10
MAX_COMMAND_TITLE = 32
MAX_COMMAND_DESCRIPTION = 128
REQUIRED_COMMANDS = {"issue", "revoke", "status", "policy", "help", "onboard", "requests", "audit"}


def readme_commands() -> list[str]:
    """The command words of the README's commands table: `/tap issue <user> …` → `issue`."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\|\s*`/tap (\w+)", section, flags=re.MULTILINE)


def bot_of(manifest: dict[str, Any]) -> dict[str, Any]:
    (bot,) = manifest["bots"]
    return bot


def test_descriptions_fit_teams_limits() -> None:
    assert 0 < len(SHORT_DESCRIPTION) <= 80
    assert 0 < len(FULL_DESCRIPTION) <= 4000
    assert SHORT_DESCRIPTION not in ("", FULL_DESCRIPTION)


def test_the_full_description_tells_admins_what_the_app_does_and_how_it_is_guarded() -> None:
    for phrase in ("Temporary Access Pass", "private", "CSV", "personal chat", "audit", "Operators", "Managers"):
        assert phrase in FULL_DESCRIPTION, phrase


def test_names_developer_and_links(settings: ManifestSettings) -> None:
    manifest = build_manifest(settings)
    assert manifest["name"]["short"] == "tapbot"
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["name"]["full"]) <= 100
    assert manifest["developer"] == {
        "name": DEVELOPER_NAME,
        "websiteUrl": f"https://{DOMAIN}/",
        "privacyUrl": f"https://{DOMAIN}/privacy",
        "termsOfUseUrl": f"https://{DOMAIN}/terms",
    }
    assert DEVELOPER_NAME == "tapbot contributors"
    assert manifest["accentColor"] == ACCENT_COLOR
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_the_app_id_is_the_bot_id_and_the_bot_domain_is_the_only_valid_domain(settings: ManifestSettings) -> None:
    manifest = build_manifest(settings)
    assert manifest["id"] == APP_ID
    assert bot_of(manifest)["botId"] == APP_ID
    assert manifest["validDomains"] == [DOMAIN]
    assert "webApplicationInfo" not in manifest  # no SSO or tab: nothing to sign in to
    assert "staticTabs" not in manifest
    assert [extension["botId"] for extension in manifest["composeExtensions"]] == [APP_ID]  # the message action


def test_the_bot_is_conversational_takes_files_and_lives_in_every_scope(settings: ManifestSettings) -> None:
    bot = bot_of(build_manifest(settings))
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert bot["supportsFiles"] is True
    assert bot["isNotificationOnly"] is False


def test_one_command_list_per_scope_within_teams_limits(settings: ManifestSettings) -> None:
    bot = bot_of(build_manifest(settings))
    lists = bot["commandLists"]
    assert len(lists) <= MAX_COMMAND_LISTS
    assert sorted(scope for command_list_ in lists for scope in command_list_["scopes"]) == sorted(bot["scopes"])
    for entry in lists:
        commands = entry["commands"]
        titles = [command["title"] for command in commands]
        assert len(commands) <= MAX_COMMANDS_PER_LIST, entry["scopes"]
        assert len(set(titles)) == len(titles), titles
        for command in commands:
            assert 0 < len(command["title"]) <= MAX_COMMAND_TITLE, command
            assert 0 < len(command["description"]) <= MAX_COMMAND_DESCRIPTION, command
            assert command["title"] == command["title"].strip().lower() and command["title"].startswith("tap ")


@pytest.mark.parametrize("scope", BOT_SCOPES)
def test_every_scope_offers_the_whole_command_set(scope: str, settings: ManifestSettings) -> None:
    (entry,) = [entry for entry in bot_of(build_manifest(settings))["commandLists"] if entry["scopes"] == [scope]]
    words = {command["title"].removeprefix("tap ") for command in entry["commands"]}
    assert words == REQUIRED_COMMANDS | ({"approvals", "alerts"} if scope == "team" else set())


def test_every_command_of_the_readme_is_in_every_command_list(settings: ManifestSettings) -> None:
    documented = readme_commands()
    assert {"issue", "revoke", "status", "policy", "help"} <= set(documented), documented
    typed_only = {spec.word for spec in COMMANDS if not spec.menu}  # e.g. signout: the table says so, not this test
    assert typed_only <= {"signout"}, typed_only
    for entry in bot_of(build_manifest(settings))["commandLists"]:
        titles = {command["title"] for command in entry["commands"]}
        channel_only = {"approvals", "alerts"} if entry["scopes"] != ["team"] else set()
        missing = [word for word in documented if f"tap {word}" not in titles and word not in channel_only | typed_only]
        assert missing == [], f"{entry['scopes']}: README commands missing from the menu: {missing}"


def test_help_says_bulk_works_by_attaching_a_csv_in_personal_chat() -> None:
    (personal_help,) = [command for command in command_list("personal") if command.title == "tap help"]
    (team_help,) = [command for command in command_list("team") if command.title == "tap help"]
    assert "CSV" in personal_help.description and "here" in personal_help.description
    assert "CSV" in team_help.description and "personal chat" in team_help.description


def test_the_documentation_covers_every_option_of_the_build_command() -> None:
    docs = (REPO_ROOT / "docs" / "app-package.md").read_text(encoding="utf-8")
    flags = [flag for action in argument_parser()._actions for flag in action.option_strings if flag.startswith("--")]
    missing = [flag for flag in flags if flag not in docs and flag != "--help"]
    assert missing == []
    for phrase in ("python -m manifest.build", "python -m manifest.icons", "CSV", "Upload"):
        assert phrase in docs, phrase
