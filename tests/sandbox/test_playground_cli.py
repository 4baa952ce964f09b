"""`python -m bot.sandbox.playground --as UPN`: the README's way to make another demo person the Playground's typist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.sandbox.playground import DEFAULT_DEMO_CURRENT_USER, DEFAULT_DEMO_USERS, main


@pytest.mark.parametrize("typist", [DEFAULT_DEMO_CURRENT_USER, *DEFAULT_DEMO_USERS, "LynneR@contoso.onmicrosoft.com"])
def test_any_demo_person_can_be_the_typist(tmp_path: Path, typist: str) -> None:
    """Diego or Alex (one of the five other people of the default config) used to leave four: the command failed."""
    out = tmp_path / ".m365agentsplayground.yml"
    assert main(["--as", typist, "--out", str(out)]) == 0
    config = json.loads(out.read_text(encoding="utf-8"))
    assert config["currentUser"]["userPrincipleName"].lower() == typist.lower()
    others = [user["userPrincipleName"].lower() for user in config["users"]]
    assert len(set(others)) == 5 and typist.lower() not in others


def test_someone_outside_the_tenant_is_refused_with_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--as", "nobody@contoso.onmicrosoft.com", "--out", str(tmp_path / "x.yml")]) == 2
    assert "nobody@contoso.onmicrosoft.com is not a user of the sandbox tenant" in capsys.readouterr().err
