"""The upload zip: exactly three files at its root, the manifest the builder made, and the same bytes every time."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from manifest import COLOR_ICON, OUTLINE_ICON
from manifest.app_manifest import ManifestSettings, build_manifest, manifest_json
from manifest.package import ZIP_TIMESTAMP, build_package, write_package
from tests.manifest.conftest import APP_ID, DOMAIN


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_the_zip_holds_the_manifest_and_both_icons_at_its_root(settings: ManifestSettings) -> None:
    with open_zip(build_package(settings)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["manifest.json", "color.png", "outline.png"]
        assert archive.read("manifest.json") == manifest_json(settings)
        assert archive.read("color.png") == COLOR_ICON.read_bytes()
        assert archive.read("outline.png") == OUTLINE_ICON.read_bytes()


def test_manifest_json_is_plain_utf8_json_of_the_built_manifest(settings: ManifestSettings) -> None:
    data = manifest_json(settings)
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.endswith(b"}\n")
    assert json.loads(data.decode("utf-8")) == build_manifest(settings)
    assert "–" in data.decode("utf-8")  # non-ASCII text is kept as UTF-8, not \u escapes


def test_entries_carry_fixed_timestamps_and_attributes(settings: ManifestSettings) -> None:
    with open_zip(build_package(settings)) as archive:
        for info in archive.infolist():
            assert info.date_time == ZIP_TIMESTAMP
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.create_system == 3
            assert info.external_attr == 0o100644 << 16
            assert not info.is_dir() and "/" not in info.filename


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, version="1.2.3")
    second = ManifestSettings.create(app_id=APP_ID.upper(), domain=DOMAIN.upper() + ".", version="1.2.3")
    assert build_package(first) == build_package(second)
    write_package(first, tmp_path / "a.zip")
    write_package(second, tmp_path / "b" / "c" / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b" / "c" / "b.zip").read_bytes() == build_package(first)


@pytest.mark.parametrize(
    "changed",
    [
        ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, version="1.0.1"),
        ManifestSettings.create(app_id=APP_ID, domain="tapbot.fabrikam.com"),
        ManifestSettings.create(app_id=APP_ID, domain=DOMAIN, short_name="TAP"),
        ManifestSettings.create(app_id=APP_ID[:-1] + "d", domain=DOMAIN),
    ],
    ids=["version", "domain", "name", "app-id"],
)
def test_different_inputs_give_different_bytes(changed: ManifestSettings, settings: ManifestSettings) -> None:
    assert build_package(settings) != build_package(changed)


def test_writing_replaces_an_old_package_and_leaves_no_temporary_file(
    tmp_path: Path, settings: ManifestSettings
) -> None:
    out = tmp_path / "tapbot.zip"
    out.write_bytes(b"old")
    data = write_package(settings, out)
    assert out.read_bytes() == data
    assert [path.name for path in tmp_path.iterdir()] == ["tapbot.zip"]
    assert out.stat().st_mode & 0o777 == 0o644


def test_a_wrong_icon_stops_the_build(
    tmp_path: Path, settings: ManifestSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "color.png"
    small.write_bytes(OUTLINE_ICON.read_bytes())  # 32×32 where 192×192 belongs
    monkeypatch.setattr("manifest.package.COLOR_ICON", small)
    with pytest.raises(ValueError, match=r"32×32, Teams needs 192×192: run `python -m manifest.icons`"):
        build_package(settings)
    small.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a PNG file"):
        build_package(settings)
