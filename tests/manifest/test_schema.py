"""The built manifest against the official Teams manifest schema (draft-04), read offline from node_modules."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from manifest.app_manifest import MANIFEST_VERSION, SCHEMA_URL, ManifestSettings, build_manifest
from tests.manifest.conftest import APP_ID, TeamsSchema


def test_the_schema_file_is_the_draft_04_teams_schema_of_our_manifest_version(teams_schema: TeamsSchema) -> None:
    assert teams_schema.path.parent.name == f"v{MANIFEST_VERSION}"
    assert teams_schema.schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    # draft-04 has no `const`: the validator ignores it, so the pinned manifestVersion is checked here.
    assert teams_schema.schema["properties"]["manifestVersion"]["const"] == MANIFEST_VERSION
    assert SCHEMA_URL.endswith(f"/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json")


def test_the_schema_needs_nothing_from_the_network(teams_schema: TeamsSchema) -> None:
    text = teams_schema.path.read_text(encoding="utf-8")
    remote_refs = re.findall(r'"\$ref"\s*:\s*"(?!#)([^"]*)"', text)
    # The fixture's registry maps a remote $ref to a sibling file; any other would fail validation loudly.
    for ref in remote_refs:
        assert (teams_schema.path.parent / ref.rsplit("/", 1)[-1]).is_file(), ref


def test_the_default_manifest_is_valid(teams_schema: TeamsSchema, settings: ManifestSettings) -> None:
    manifest = build_manifest(settings)
    assert teams_schema.errors(manifest) == []
    assert manifest["manifestVersion"] == MANIFEST_VERSION


def test_a_manifest_with_every_option_set_is_valid(teams_schema: TeamsSchema) -> None:
    settings = ManifestSettings.create(
        app_id=APP_ID.upper(),
        domain="TapBot-Prod.Contoso.co.uk.",
        version="12.0.345",
        short_name="Contoso Temporary Access Pass",  # 29 characters
        website_url="https://it.contoso.com/tapbot",
        privacy_url="https://contoso.com/privacy?app=tapbot",
        terms_url="https://contoso.com/legal/terms#tapbot",
    )
    assert teams_schema.errors(build_manifest(settings)) == []


def test_the_manifest_survives_json_round_trip_unchanged(teams_schema: TeamsSchema, settings: ManifestSettings) -> None:
    manifest = build_manifest(settings)
    assert teams_schema.errors(json.loads(json.dumps(manifest))) == []


def test_the_validator_is_not_vacuous(teams_schema: TeamsSchema, settings: ManifestSettings) -> None:
    manifest: dict[str, Any] = build_manifest(settings)
    broken = copy.deepcopy(manifest)
    del broken["developer"]["privacyUrl"]
    broken["accentColor"] = "blue"
    broken["bots"][0]["commandLists"] *= 2  # six lists, Teams allows three
    broken["bots"][0]["botId"] = "not-a-guid"
    errors = teams_schema.errors(broken)
    assert any("privacyUrl" in error for error in errors), errors
    assert any(error.startswith("/accentColor") for error in errors), errors
    assert any(error.startswith("/bots/0/commandLists") for error in errors), errors
    assert any(error.startswith("/bots/0/botId") for error in errors), errors
    assert teams_schema.errors({**manifest, "unknownField": True}) != []
