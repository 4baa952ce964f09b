"""Delegated writes (issue 14): the package enables Teams single sign-on for the bot's App ID URI, and only then."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from manifest.app_manifest import TOKEN_SERVICE_DOMAIN, ManifestInputError, ManifestSettings, build_manifest
from manifest.build import main
from tests.manifest.conftest import APP_ID, DOMAIN, TeamsSchema

DEFAULT_RESOURCE = f"api://botid-{APP_ID}"
OTHER_APP_ID = "0b7c9d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"


def delegated(**options: Any) -> ManifestSettings:
    return ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, graph_writes="delegated", **options)


def test_application_writes_need_no_sign_in(settings: ManifestSettings) -> None:
    manifest = build_manifest(settings)
    assert "webApplicationInfo" not in manifest
    assert manifest["validDomains"] == [DOMAIN]
    ignored = ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, sso_resource=DEFAULT_RESOURCE)
    assert build_manifest(ignored) == manifest, "a resource without delegated writes changes nothing"


def test_delegated_writes_add_web_application_info_and_the_token_service_domain(teams_schema: TeamsSchema) -> None:
    manifest = build_manifest(delegated())
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": DEFAULT_RESOURCE}
    assert manifest["validDomains"] == [DOMAIN, TOKEN_SERVICE_DOMAIN] == [DOMAIN, "token.botframework.com"]
    assert teams_schema.errors(manifest) == []
    major, minor = (int(part) for part in manifest["manifestVersion"].split("."))
    assert (major, minor) >= (1, 5), "webApplicationInfo needs manifest 1.5 or later"


@pytest.mark.parametrize(
    "resource",
    [f"api://botid-{APP_ID.upper()}", f"api://tapbot.contoso.com/botid-{APP_ID}", f"  {DEFAULT_RESOURCE} "],
)
def test_a_given_app_id_uri_of_the_bot_is_used(resource: str, teams_schema: TeamsSchema) -> None:
    manifest = build_manifest(delegated(sso_resource=resource))
    assert manifest["webApplicationInfo"]["resource"] == resource.strip()
    assert teams_schema.errors(manifest) == []


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        (f"https://tapbot.contoso.com/botid-{APP_ID}", "is not an App ID URI"),
        (f"api://botid-{OTHER_APP_ID}", f"does not end in botid-{APP_ID}"),
        (f"api://{APP_ID}", f"does not end in botid-{APP_ID}"),
        (f"api://botid-{APP_ID}?x=1", "does not end in"),
        (f"api://botid- {APP_ID}", "is not an App ID URI"),
    ],
)
def test_an_app_id_uri_teams_would_not_sign_in_to_is_refused(resource: str, fragment: str) -> None:
    with pytest.raises(ManifestInputError, match="SSO resource") as raised:
        delegated(sso_resource=resource)
    assert fragment in str(raised.value)


def test_an_unknown_write_mode_is_refused() -> None:
    with pytest.raises(ManifestInputError, match="is neither application nor delegated"):
        ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, graph_writes="both")


def test_the_validator_checks_web_application_info(teams_schema: TeamsSchema) -> None:
    manifest = build_manifest(delegated())
    broken = {**manifest, "webApplicationInfo": {"id": "not-a-guid", "resource": DEFAULT_RESOURCE, "extra": 1}}
    errors = teams_schema.errors(broken)
    assert any(error.startswith("/webApplicationInfo/id") for error in errors), errors
    assert any("extra" in error for error in errors), errors


def manifest_in(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def test_the_build_command_takes_the_mode_from_a_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.zip"
    status = main(["--app-id", APP_ID, "--domain", DOMAIN, "--graph-writes", "delegated", "--out", str(out)], {})
    printed = capsys.readouterr()
    assert (status, printed.err) == (0, "")
    assert f"single sign-on to {DEFAULT_RESOURCE}" in printed.out
    assert manifest_in(out)["webApplicationInfo"] == {"id": APP_ID, "resource": DEFAULT_RESOURCE}


@pytest.mark.parametrize(
    ("env", "resource"),
    [
        ({"TAPBOT_GRAPH_WRITES": "delegated"}, DEFAULT_RESOURCE),
        (
            {"TAPBOT_GRAPH_WRITES": "delegated", "TAPBOT_SSO_RESOURCE": f"api://tapbot.contoso.com/botid-{APP_ID}"},
            f"api://tapbot.contoso.com/botid-{APP_ID}",
        ),
        ({"TAPBOT_GRAPH_WRITES": "application", "TAPBOT_MANIFEST_GRAPH_WRITES": "delegated"}, DEFAULT_RESOURCE),
        ({"TAPBOT_GRAPH_WRITES": "delegated", "TAPBOT_MANIFEST_GRAPH_WRITES": "application"}, None),
    ],
    ids=["bot-setting", "bot-resource", "manifest-variable-wins", "manifest-variable-wins-back"],
)
def test_the_build_command_reads_the_bots_own_settings(
    env: dict[str, str], resource: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.zip"
    status = main(["--out", str(out)], {"TAPBOT_MANIFEST_APP_ID": APP_ID, "TAPBOT_MANIFEST_DOMAIN": DOMAIN, **env})
    assert (status, capsys.readouterr().err) == (0, "")
    manifest = manifest_in(out)
    assert manifest.get("webApplicationInfo", {}).get("resource") == resource
    assert (TOKEN_SERVICE_DOMAIN in manifest["validDomains"]) is (resource is not None)


@pytest.mark.parametrize(
    ("argv", "env", "fragments"),
    [
        (["--graph-writes", "user"], {}, ["--graph-writes 'user' is neither application nor delegated"]),
        ([], {"TAPBOT_GRAPH_WRITES": "app"}, ["TAPBOT_GRAPH_WRITES 'app'"]),
        (
            ["--graph-writes", "delegated", "--sso-resource", f"api://botid-{OTHER_APP_ID}"],
            {},
            ["--sso-resource", f"does not end in botid-{APP_ID}"],
        ),
        (["--graph-writes", "delegated"], {"TAPBOT_SSO_RESOURCE": "https://x"}, ["TAPBOT_SSO_RESOURCE"]),
    ],
)
def test_a_wrong_mode_or_resource_exits_2_naming_where_it_came_from(
    argv: list[str], env: dict[str, str], fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.zip"
    status = main(["--app-id", APP_ID, "--domain", DOMAIN, *argv, "--out", str(out)], env)
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()
