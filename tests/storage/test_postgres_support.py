"""The PostgreSQL test server's own rules: where it finds the binaries, and skip locally versus fail under CI."""

from __future__ import annotations

import pytest

from tests.support import postgres as support


def test_missing_postgresql_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "find_postgres_bin", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"tools/install-postgres\.sh"):
        support.require_postgres_bin()


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_missing_postgresql_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setattr(support, "find_postgres_bin", lambda: None)
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI is set: a missing PostgreSQL fails, never skips"):
        support.require_postgres_bin()


def test_the_server_runs_unprivileged(postgres: support.PostgresServer) -> None:
    owner = (postgres.data_dir / "PG_VERSION").stat().st_uid
    assert owner != 0, "PostgreSQL refuses to run as root: the tests run it as an unprivileged user"
    assert postgres.url().startswith(f"postgresql+asyncpg://tapbot@127.0.0.1:{postgres.port}/")
