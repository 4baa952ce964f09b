"""The start banner says whose rights write passes (issue 14): a person reading the console knows the mode."""

from __future__ import annotations

from pathlib import Path

from app import banner
from bot.settings import Settings
from tests.harness.bot import sandbox_env
from tests.harness.sign_in import delegated_env


def test_the_banner_names_application_writes_by_default(tmp_path: Path) -> None:
    text = banner(Settings.from_env(sandbox_env(tmp_path)))
    assert "pass writes: APPLICATION" in text
    assert "DELEGATED" not in text


def test_the_banner_names_delegated_writes_and_the_oauth_connection(tmp_path: Path) -> None:
    text = banner(Settings.from_env(sandbox_env(tmp_path, **delegated_env())))
    assert "pass writes: DELEGATED, with each technician's own Entra rights (OAuth connection tapbot-graph)" in text
    assert "APPLICATION" not in text
