"""The Teams app package of tapbot: manifest, icons and the zip an admin uploads.

- `manifest.content`: the texts and command lists shown in Teams, written for IT admins.
- `manifest.app_manifest`: the validated inputs and the manifest (Teams schema v1.30) built from them.
- `manifest.package`: the deterministic upload zip (manifest.json, color.png, outline.png).
- `manifest.icons`: draws the two icons (`python -m manifest.icons` rewrites them); `manifest.png` writes PNG files.
- `manifest.build`: the command line, `python -m manifest.build --app-id <guid> --domain <host>`.

Nothing here imports the bot: the package is built on an admin's machine or in CI, not by the running service.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
COLOR_ICON = PACKAGE_DIR / "color.png"
OUTLINE_ICON = PACKAGE_DIR / "outline.png"

# The accent colour of the app in Teams and the background of the colour icon (RGB).
ACCENT_RGB = (0x1E, 0x4E, 0x8C)
ACCENT_COLOR = "#{:02X}{:02X}{:02X}".format(*ACCENT_RGB)
