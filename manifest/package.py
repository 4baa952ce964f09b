"""The app package an admin uploads to Teams: a zip with manifest.json, color.png and outline.png at its root.

The zip is deterministic: fixed entry order, timestamps (1980-01-01, the zip epoch), permissions and host system,
and the entries are stored rather than deflated (the three files are a few kilobytes), so the bytes do not depend
on the zlib build either. The same inputs give the same bytes on every machine, and a package can be compared
with, or rebuilt from, its inputs.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

from manifest import COLOR_ICON, OUTLINE_ICON
from manifest.app_manifest import ManifestSettings, manifest_json
from manifest.icons import COLOR_SIZE, OUTLINE_SIZE
from manifest.png import png_size

MANIFEST_NAME = "manifest.json"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
_UNIX = 3
_FILE_MODE = 0o100644  # a regular file, rw-r--r--


def package_entries(settings: ManifestSettings) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in the package, in the order they are written."""
    color = COLOR_ICON.read_bytes()
    outline = OUTLINE_ICON.read_bytes()
    _check_icon(COLOR_ICON, color, COLOR_SIZE)
    _check_icon(OUTLINE_ICON, outline, OUTLINE_SIZE)
    return [(MANIFEST_NAME, manifest_json(settings)), (COLOR_ICON.name, color), (OUTLINE_ICON.name, outline)]


def build_package(settings: ManifestSettings) -> bytes:
    """The zip's bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in package_entries(settings):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def write_package(settings: ManifestSettings, out: Path) -> bytes:
    """Writes the zip to `out` (creating its folder), replacing any old file only once the new one is complete."""
    data = build_package(settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the package holds nothing secret
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return data


def _check_icon(path: Path, data: bytes, size: int) -> None:
    try:
        width, height = png_size(data)
    except ValueError:
        raise ValueError(f"{path} is not a PNG file: run `python -m manifest.icons` to redraw it.") from None
    if (width, height) != (size, size):
        raise ValueError(
            f"{path} is {width}×{height}, Teams needs {size}×{size}: run `python -m manifest.icons` to redraw it."
        )
