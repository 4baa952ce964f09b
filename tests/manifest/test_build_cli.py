"""`python -m manifest.build`: inputs from flags or the environment, one-line errors with exit status 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from manifest.app_manifest import ManifestInputError, ManifestSettings
from manifest.build import BOT_CLIENT_ID_VARIABLE, DEFAULT_OUT, main
from manifest.package import build_package
from tests.manifest.conftest import APP_ID, DOMAIN, REPO_ROOT

OTHER_APP_ID = "0b7c9d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"


def run(argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv, env)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def manifest_in(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def test_builds_the_zip_from_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dist" / "tapbot.zip"
    status, stdout, stderr = run(
        ["--app-id", APP_ID, "--domain", DOMAIN, "--version", "2.1.0", "--name", "Contoso TAP", "--out", str(out)],
        {},
        capsys,
    )
    assert (status, stderr) == (0, "")
    assert f"wrote {out}" in stdout and "sha256" in stdout
    manifest = manifest_in(out)
    assert (manifest["id"], manifest["version"], manifest["name"]["short"]) == (APP_ID, "2.1.0", "Contoso TAP")
    assert manifest["validDomains"] == [DOMAIN]
    expected = ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, version="2.1.0", short_name="Contoso TAP")
    assert out.read_bytes() == build_package(expected)


def test_reads_every_input_from_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "TAPBOT_MANIFEST_APP_ID": APP_ID,
        "TAPBOT_MANIFEST_DOMAIN": DOMAIN,
        "TAPBOT_MANIFEST_VERSION": "3.0.1",
        "TAPBOT_MANIFEST_NAME": "TAP desk",
        "TAPBOT_MANIFEST_WEBSITE_URL": "https://it.contoso.com/",
        "TAPBOT_MANIFEST_PRIVACY_URL": "https://contoso.com/privacy",
        "TAPBOT_MANIFEST_TERMS_URL": "https://contoso.com/terms",
    }
    status, _, stderr = run(["--out", str(tmp_path / "p.zip")], env, capsys)
    assert (status, stderr) == (0, "")
    manifest = manifest_in(tmp_path / "p.zip")
    assert (manifest["id"], manifest["version"], manifest["name"]["short"]) == (APP_ID, "3.0.1", "TAP desk")
    assert manifest["developer"]["websiteUrl"] == "https://it.contoso.com/"
    assert manifest["developer"]["privacyUrl"] == "https://contoso.com/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == "https://contoso.com/terms"


@pytest.mark.parametrize(
    ("argv", "env", "expected_id"),
    [
        ([], {BOT_CLIENT_ID_VARIABLE: APP_ID}, APP_ID),
        ([], {BOT_CLIENT_ID_VARIABLE: OTHER_APP_ID, "TAPBOT_MANIFEST_APP_ID": APP_ID}, APP_ID),
        ([], {BOT_CLIENT_ID_VARIABLE: APP_ID, "TAPBOT_MANIFEST_APP_ID": "  "}, APP_ID),
        (["--app-id", APP_ID], {"TAPBOT_MANIFEST_APP_ID": OTHER_APP_ID}, APP_ID),
    ],
    ids=["bot-client-id-fallback", "manifest-variable-wins", "blank-variable-ignored", "flag-wins"],
)
def test_app_id_precedence(
    argv: list[str], env: dict[str, str], expected_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.zip"
    status, _, stderr = run([*argv, "--out", str(out)], {"TAPBOT_MANIFEST_DOMAIN": DOMAIN, **env}, capsys)
    assert (status, stderr) == (0, "")
    assert manifest_in(out)["id"] == expected_id


def test_the_flag_wins_over_the_environment_for_the_domain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.zip"
    env = {"TAPBOT_MANIFEST_APP_ID": APP_ID, "TAPBOT_MANIFEST_DOMAIN": "old.contoso.com"}
    assert run(["--domain", DOMAIN, "--out", str(out)], env, capsys)[0] == 0
    assert manifest_in(out)["validDomains"] == [DOMAIN]


GOOD = ["--app-id", APP_ID, "--domain", DOMAIN]


@pytest.mark.parametrize(
    ("argv", "env", "fragments"),
    [
        ([], {}, ["no bot app id", "--app-id", "TAPBOT_MANIFEST_APP_ID", BOT_CLIENT_ID_VARIABLE]),
        (["--app-id", APP_ID], {}, ["no domain", "--domain", "TAPBOT_MANIFEST_DOMAIN"]),
        (["--app-id", "tapbot", "--domain", DOMAIN], {}, ["--app-id 'tapbot' is not a GUID"]),
        (["--app-id", "{" + APP_ID + "}", "--domain", DOMAIN], {}, ["is not a GUID"]),
        (["--app-id", "00000000-0000-0000-0000-000000000000", "--domain", DOMAIN], {}, ["all-zero GUID"]),
        (["--domain", DOMAIN], {BOT_CLIENT_ID_VARIABLE: "not-an-id"}, [BOT_CLIENT_ID_VARIABLE, "is not a GUID"]),
        (["--app-id", APP_ID, "--domain", f"https://{DOMAIN}/api/messages"], {}, ["is a URL", f"e.g. {DOMAIN}."]),
        (["--app-id", APP_ID, "--domain", f"{DOMAIN}/api/messages"], {}, ["contains a path"]),
        (["--app-id", APP_ID, "--domain", f"{DOMAIN}:443"], {}, ["contains a port"]),
        (["--app-id", APP_ID, "--domain", "*.contoso.com"], {}, ["is a wildcard"]),
        (["--app-id", APP_ID, "--domain", "localhost"], {}, ["is not a fully qualified host name"]),
        (["--app-id", APP_ID, "--domain", "20.50.1.7"], {}, ["is an IP address"]),
        (["--app-id", APP_ID, "--domain", "tap_bot.contoso.com"], {}, ["is not a valid host name"]),
        (["--app-id", APP_ID, "--domain=-tapbot.contoso.com"], {}, ["is not a valid host name"]),
        (["--app-id", APP_ID, "--domain", "täpbot.contoso.com"], {}, ["punycode"]),
        (["--app-id", APP_ID, "--domain", " "], {}, ["--domain is empty"]),
        (["--app-id", APP_ID], {"TAPBOT_MANIFEST_DOMAIN": "https://x.contoso.com"}, ["TAPBOT_MANIFEST_DOMAIN", "URL"]),
        ([*GOOD, "--version", "1.0"], {}, ["--version '1.0' is not a version like 1.0.0"]),
        ([*GOOD, "--version", "v1.0.0"], {}, ["is not a version"]),
        ([*GOOD, "--version", "01.0.0"], {}, ["is not a version"]),
        ([*GOOD], {"TAPBOT_MANIFEST_VERSION": "1.0.0-beta"}, ["TAPBOT_MANIFEST_VERSION", "is not a version"]),
        ([*GOOD, "--name", "x" * 31], {}, ["--name", "31 characters long: Teams allows 30"]),
        ([*GOOD, "--name", "   "], {}, ["--name is empty"]),
        ([*GOOD, "--privacy-url", "http://contoso.com/privacy"], {}, ["--privacy-url", "is not an https:// URL"]),
        ([*GOOD, "--terms-url", "contoso.com/terms"], {}, ["--terms-url", "is not an https:// URL"]),
        ([*GOOD, "--website-url", "https://"], {}, ["--website-url", "is not an https:// URL"]),
    ],
)
def test_bad_inputs_exit_2_with_one_line_naming_them(
    argv: list[str], env: dict[str, str], fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.zip"
    status, stdout, stderr = run([*argv, "--out", str(out)], env, capsys)
    assert status == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("python -m manifest.build: "), stderr
    for fragment in fragments:
        assert fragment in stderr
    assert not out.exists()


def test_an_unknown_option_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--app-id", APP_ID, "--domian", DOMAIN], {})
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "--domian" in stderr and "see --help" in stderr


def test_an_unwritable_destination_fails_with_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, _, stderr = run([*GOOD, "--out", str(blocker / "tapbot.zip")], {}, capsys)
    assert status == 1
    assert stderr.startswith(f"python -m manifest.build: cannot write {blocker / 'tapbot.zip'}")


def test_input_errors_are_value_errors_with_the_default_labels() -> None:
    with pytest.raises(ManifestInputError, match=r"^app id 'x' is not a GUID"):
        ManifestSettings.create(app_id="x", domain=DOMAIN)
    with pytest.raises(ManifestInputError, match=r"^domain 'https://a\.b' is a URL: give only its host name"):
        ManifestSettings.create(app_id=APP_ID, domain="https://a.b")


def test_the_default_destination_is_dist_in_the_project() -> None:
    assert DEFAULT_OUT == REPO_ROOT / "dist" / "tapbot.zip"


def test_runs_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "tapbot.zip"
    env = {"PATH": "/usr/bin:/bin", "TAPBOT_MANIFEST_APP_ID": APP_ID, "TAPBOT_MANIFEST_DOMAIN": DOMAIN}
    command = [sys.executable, "-m", "manifest.build", "--out", str(out)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        assert archive.namelist() == ["manifest.json", "color.png", "outline.png"]
    bad = subprocess.run(
        [*command, "--domain", "https://tapbot.contoso.com"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "python -m manifest.build: --domain 'https://tapbot.contoso.com' is a URL: "
        "give only its host name, e.g. tapbot.contoso.com."
    ]
