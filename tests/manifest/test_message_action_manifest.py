"""The message action in the manifest (issue 11 item 5): one action command on messages, fetched from the bot, valid
against the official v1.30 schema, with the command id the bot answers."""

from __future__ import annotations

import copy
from typing import Any

from manifest.app_manifest import MESSAGE_ACTION_ID, MESSAGE_ACTION_TITLE, ManifestSettings, build_manifest
from tests.manifest.conftest import APP_ID, TeamsSchema


def test_the_message_action_is_an_action_on_messages_fetched_from_the_bot(settings: ManifestSettings) -> None:
    manifest = build_manifest(settings)
    [extension] = manifest["composeExtensions"]
    assert extension["botId"] == APP_ID == manifest["bots"][0]["botId"]
    [command] = extension["commands"]
    assert command == {
        "id": MESSAGE_ACTION_ID,
        "type": "action",
        "title": "Issue a Temporary Access Pass",
        "description": command["description"],
        "context": ["message"],
        "fetchTask": True,
    }
    assert len(MESSAGE_ACTION_TITLE) <= 32 and len(command["description"]) <= 128


def test_the_manifest_with_the_message_action_is_valid_and_the_schema_checks_it(
    teams_schema: TeamsSchema, settings: ManifestSettings
) -> None:
    manifest: dict[str, Any] = build_manifest(settings)
    assert teams_schema.errors(manifest) == []
    broken = copy.deepcopy(manifest)
    broken["composeExtensions"][0]["commands"][0]["context"] = ["everywhere"]
    broken["composeExtensions"][0]["commands"][0]["title"] = "x" * 33
    assert len(teams_schema.errors(broken)) >= 2


def test_the_bot_answers_the_command_id_of_the_manifest() -> None:
    from bot.teams import message_action

    assert message_action.COMMAND_ID == MESSAGE_ACTION_ID
