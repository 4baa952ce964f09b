"""Copy the README's screenshots from the browser tests' output to ``docs/images/``.

    .venv/bin/pytest tests/browser -q          # writes test-artifacts/screenshots/*.png
    .venv/bin/python -m tests.browser.readme_images

Only these pictures are committed; everything else under ``test-artifacts/`` stays git-ignored.
"""

from __future__ import annotations

import shutil
import sys

from tests.browser.environment import SCREENSHOTS
from tests.support.playground import REPO_ROOT

IMAGES = REPO_ROOT / "docs" / "images"
README_IMAGES = {
    "issue-card.png": "personal-chat-issue-and-hand-over-*-adele-pass-card.png",
    "channel-ack.png": "channel-and-group-chat-answer-privately-*-adele-channel-ack.png",
}
"""docs/images name -> the screenshot (glob under test-artifacts/screenshots) it is copied from."""


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for target, pattern in README_IMAGES.items():
        found = sorted(SCREENSHOTS.glob(pattern))
        if len(found) != 1:
            print(f"readme_images: expected one {SCREENSHOTS}/{pattern}, found {len(found)}; run the browser tests")
            return 1
        shutil.copyfile(found[0], IMAGES / target)
        print(f"{found[0].relative_to(REPO_ROOT)} -> {(IMAGES / target).relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
