"""The deployment guide and the README's settings table agree with the code."""

from __future__ import annotations

import re

from bot.doctor import REQUIRED_PERMISSIONS
from bot.settings import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
GUIDE = (PROJECT_DIR / "docs" / "deployment.md").read_text(encoding="utf-8")
SETTING = re.compile(r"\b(?:TAPBOT_[A-Z0-9_]*[A-Z0-9]|CONNECTIONS__SERVICE_CONNECTION__SETTINGS__[A-Z]+|PORT)\b")
SDK_PREFIX = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def settings_table() -> str:
    section = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def documented(name: str, table: str) -> bool:
    """In the table, literally or in its short forms: `…__AUTHTYPE` for the SDK's settings, `…_PASSWORD`."""
    if f"`{name}`" in table:
        return True
    if name.startswith(SDK_PREFIX):
        return f"`…__{name.removeprefix(SDK_PREFIX)}`" in table or "`…__AUTHTYPE`, `…__CERTPFXFILE`, …" in table
    return f"`…_{name.rsplit('_', 1)[-1]}`" in table


def test_every_setting_the_guide_names_is_in_the_readme_table() -> None:
    table = settings_table()
    named = set(SETTING.findall(GUIDE))
    assert {"TAPBOT_GRAPH_AUTH", "TAPBOT_DATABASE_URL", f"{SDK_PREFIX}CLIENTID"} <= named
    missing = sorted(name for name in named if not documented(name, table))
    assert missing == [], f"docs/deployment.md names settings the README does not describe: {missing}"


def test_every_setting_the_code_reads_is_in_the_readme_table() -> None:
    code = (PROJECT_DIR / "bot" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"(TAPBOT_[A-Z0-9_]+|PORT)"', code))
    assert "TAPBOT_LOG_FORMAT" in read
    table = settings_table()
    missing = sorted(name for name in read if not documented(name, table))
    assert missing == [], f"settings read by bot/settings.py but missing from the README: {missing}"


def test_the_guide_covers_the_deployment_steps() -> None:
    for permission in REQUIRED_PERMISSIONS:
        assert f"`{permission}`" in GUIDE, permission
    for phrase in (
        "Single Tenant",
        "/api/messages",
        "TAPBOT_GRAPH_AUTH=managed_identity",
        "postgresql+asyncpg://",
        "--min-replicas 2",
        "docs/app-package.md",
        "python app.py doctor",
        "/readyz",
        "/healthz",
    ):
        assert phrase in GUIDE, phrase
    assert (PROJECT_DIR / "docs" / "app-package.md").is_file()
