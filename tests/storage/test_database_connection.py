"""The database connection as a deployment makes it: verified TLS (verify-full) and Microsoft Entra access tokens.

A PostgreSQL of its own (TLS with a certificate from a CA made here; one role that must send a password, the way
Azure checks an Entra token sent as the password). The credential is a stand-in for the managed identity: it hands
out tokens made here and counts how often it was asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import pool, text

from bot.adapters.database import DatabaseAuth, DatabaseSettings, DatabaseTls, create_engine
from bot.adapters.migrate import current_revision, head_revision, migrate
from bot.adapters.store import SqlStore
from bot.settings import Settings, SettingsError
from tests.support.postgres import PostgresServer, require_postgres_bin, start_postgres
from tests.support.tls_postgres import Pki, enable_tls_and_passwords

ENTRA_ROLE = "id-tapbot-db"  # the name pgaadauth_create_principal gives the role: the managed identity's name
PASSWORD_ROLE, PASSWORD = "tapbot_pw", "p@ss/word:with%special"


@dataclass
class TlsServer:
    server: PostgresServer
    pki: Pki

    def url(self, host: str = "localhost", *, user: str = ENTRA_ROLE, database: str = "tapbot") -> str:
        return f"postgresql+asyncpg://{user}@{host}:{self.server.port}/{database}"

    async def set_password(self, role: str, password: str) -> None:
        connection = await asyncpg.connect(self.server.dsn("postgres"))
        try:
            await connection.execute(f"ALTER ROLE \"{role}\" PASSWORD '{password}'")
        finally:
            await connection.close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    bin_dir = require_postgres_bin()
    server = start_postgres(bin_dir)
    try:
        pki = Pki.create(tmp_path_factory.mktemp("pki"), host_name="localhost")
        enable_tls_and_passwords(server, pki, roles=[f'"{ENTRA_ROLE}"', PASSWORD_ROLE])
        import asyncio

        async def create_role() -> None:
            connection = await asyncpg.connect(server.dsn("postgres"))
            try:
                await connection.execute(f'CREATE ROLE "{ENTRA_ROLE}" LOGIN')
                await connection.execute(f'CREATE DATABASE entra_db OWNER "{ENTRA_ROLE}"')
                await connection.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")
                await connection.execute(f"CREATE DATABASE password_db OWNER {PASSWORD_ROLE}")
            finally:
                await connection.close()

        asyncio.run(create_role())
        yield TlsServer(server, pki)
    finally:
        server.stop()


class Token:
    def __init__(self, token: str) -> None:
        self.token = token
        self.expires_on = 2_000_000_000


class StandInCredential:
    """Hands out the tokens it is given, one per call once the list runs short (the last one again)."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.scopes: list[tuple[str, ...]] = []

    @property
    def calls(self) -> int:
        return len(self.scopes)

    async def get_token(self, *scopes: str) -> Token:
        self.scopes.append(scopes)
        return Token(self.tokens[min(len(self.scopes), len(self.tokens)) - 1])


def verified(tls_server: TlsServer, url: str, ca_file: Path | None = None, **others: object) -> DatabaseSettings:
    return DatabaseSettings(url, tls=DatabaseTls.VERIFY_FULL, ca_file=ca_file or tls_server.pki.ca_file, **others)  # type: ignore[arg-type]


async def ssl_in_use(engine_settings: DatabaseSettings, credential: StandInCredential | None = None) -> bool:
    engine = create_engine(engine_settings, credential=credential, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            # pg_stat_ssl: whether this very connection is encrypted
            result = await connection.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
            return bool(result.scalar_one())
    finally:
        await engine.dispose()


async def test_verify_full_connects_with_the_right_ca_and_host_name(tls_server: TlsServer) -> None:
    url = tls_server.url(user="tapbot")
    assert await ssl_in_use(verified(tls_server, url)) is True


async def test_verify_full_refuses_a_server_whose_certificate_another_ca_signed(tls_server: TlsServer) -> None:
    url = tls_server.url(user="tapbot")
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        await ssl_in_use(verified(tls_server, url, ca_file=tls_server.pki.other_ca_file))


async def test_verify_full_refuses_a_certificate_for_another_host_name(tls_server: TlsServer) -> None:
    url = tls_server.url("127.0.0.1", user="tapbot")  # the certificate names only "localhost"
    with pytest.raises(Exception, match=r"(?i)hostname mismatch|doesn't match|not valid for"):
        await ssl_in_use(verified(tls_server, url))


async def test_the_system_trust_store_does_not_trust_a_private_ca(tls_server: TlsServer) -> None:
    """Without TAPBOT_DATABASE_CA_FILE the system's CAs decide: a test CA is not among them."""
    url = tls_server.url(user="tapbot")
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        await ssl_in_use(DatabaseSettings(url, tls=DatabaseTls.VERIFY_FULL))


async def test_ssl_require_in_the_url_is_replaced_by_verification(tls_server: TlsServer) -> None:
    """A URL written for the old guide (``?ssl=require``) no longer accepts an unverified server."""
    url = tls_server.url(user="tapbot") + "?ssl=require"
    with pytest.raises(Exception, match=r"(?i)certificate verify failed"):
        await ssl_in_use(verified(tls_server, url, ca_file=tls_server.pki.other_ca_file))
    assert await ssl_in_use(verified(tls_server, url)) is True


async def test_entra_sends_a_fresh_token_for_every_new_connection(
    tls_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = "eyJ0eXAiOiJKV1QifQ.first-token.sig", "eyJ0eXAiOiJKV1QifQ.second-token.sig"
    await tls_server.set_password(ENTRA_ROLE, first)
    credential = StandInCredential(first, second)
    settings = verified(tls_server, tls_server.url(database="entra_db"), auth=DatabaseAuth.ENTRA)
    assert await ssl_in_use(settings, credential) is True
    assert credential.calls == 1
    assert credential.scopes == [("https://ossrdbms-aad.database.windows.net/.default",)]

    await tls_server.set_password(ENTRA_ROLE, second)  # the old token no longer works, as after its expiry
    assert await ssl_in_use(settings, credential) is True
    assert credential.calls == 2, "each new connection asks the credential again"

    stale = StandInCredential(first)
    with pytest.raises(Exception, match="password authentication failed") as refused:
        await ssl_in_use(settings, stale)
    assert first not in str(refused.value)
    logged = caplog.text
    assert first not in logged and second not in logged and "first-token" not in logged


async def test_the_store_migrates_and_answers_over_entra_and_verified_tls(tls_server: TlsServer) -> None:
    token = "eyJ0eXAiOiJKV1QifQ.store-token.sig"
    await tls_server.set_password(ENTRA_ROLE, token)
    credential = StandInCredential(token)
    settings = verified(tls_server, tls_server.url(database="entra_db"), auth=DatabaseAuth.ENTRA)
    store = SqlStore.from_url(settings, credential=credential)
    try:
        await store.create_schema()
        await store.ping()
    finally:
        await store.close()
    assert credential.calls >= 1
    assert await current_revision(verified(tls_server, tls_server.url(user="tapbot", database="entra_db"))) == (
        head_revision()
    )
    result = await migrate(verified(tls_server, tls_server.url(user="tapbot", database="entra_db")))
    assert not result.changed


async def test_a_password_url_keeps_working_over_verified_tls(tls_server: TlsServer) -> None:
    """The URL's password (URL-encoded, as the guide says) signs in; a wrong one is refused and not echoed."""
    from urllib.parse import quote

    url = tls_server.url(user=f"{PASSWORD_ROLE}:{quote(PASSWORD, safe='')}", database="password_db")
    store = SqlStore.from_url(verified(tls_server, url))
    try:
        await store.create_schema()
        await store.ping()
    finally:
        await store.close()
    wrong = tls_server.url(user=f"{PASSWORD_ROLE}:not-it", database="password_db")
    with pytest.raises(Exception, match="password authentication failed") as refused:
        await ssl_in_use(verified(tls_server, wrong))
    assert "not-it" not in str(refused.value)


def settings_from(**env: str) -> Settings:
    return Settings.from_env({"TAPBOT_DATABASE_URL": "postgresql+asyncpg://tapbot@db.example.com/tapbot", **env})


def test_a_remote_postgresql_is_verified_by_default_and_a_local_one_is_not() -> None:
    assert settings_from().database.tls is DatabaseTls.VERIFY_FULL
    local = Settings.from_env({"TAPBOT_DATABASE_URL": "postgresql+asyncpg://tapbot@127.0.0.1:5432/tapbot"})
    assert local.database.tls is DatabaseTls.DISABLE
    assert Settings.from_env({}).database.tls is None, "SQLite has no TLS"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TAPBOT_DATABASE_AUTH": "kerberos"}, "TAPBOT_DATABASE_AUTH=kerberos"),
        ({"TAPBOT_DATABASE_TLS": "require"}, "TAPBOT_DATABASE_TLS=require"),
        (
            {"TAPBOT_DATABASE_AUTH": "entra", "TAPBOT_DATABASE_URL": "postgresql+asyncpg://u:pw@db.example.com/t"},
            "remove the password",
        ),
        ({"TAPBOT_DATABASE_AUTH": "entra", "TAPBOT_DATABASE_TLS": "disable"}, "TAPBOT_DATABASE_TLS=verify-full"),
        ({"TAPBOT_DATABASE_CA_FILE": "/nonexistent/ca.pem"}, "TAPBOT_DATABASE_CA_FILE=/nonexistent/ca.pem"),
        ({"TAPBOT_DATABASE_AUTH": "entra", "TAPBOT_DATABASE_URL": "sqlite+aiosqlite:///x.db"}, "PostgreSQL only"),
    ],
)
def test_contradicting_database_settings_stop_the_start_with_a_sentence(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace(".", r"\.").replace("+", r"\+")):
        settings_from(**env)


def test_the_settings_never_show_the_database_password() -> None:
    settings = Settings.from_env({"TAPBOT_DATABASE_URL": "postgresql+asyncpg://tapbot:s3cret-pw@db.example.com/t"})
    assert "s3cret-pw" not in repr(settings.database)
