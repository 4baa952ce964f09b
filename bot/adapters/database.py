"""How the bot reaches its database: the engine, and for PostgreSQL how it proves who it is and checks the server.

Two ways to sign in to PostgreSQL:

- ``password``: the user and password in ``TAPBOT_DATABASE_URL`` (any PostgreSQL).
- ``entra``: Microsoft Entra authentication with a managed identity (Azure Database for PostgreSQL flexible server).
  The URL names the database role made for the identity (``pgaadauth_create_principal``) and holds no password;
  every new connection asks the credential for an access token (scope ``OSSRDBMS_SCOPE``) and sends it as the
  password. azure-identity keeps the token until shortly before it expires, so a pool that opens a connection an hour
  later gets a token that is still valid, and no token is ever stored or logged by the bot.

TLS for PostgreSQL is ``verify-full`` unless the host is the local machine: an ``ssl.SSLContext`` that requires the
server's certificate to chain to a trusted CA (``TAPBOT_DATABASE_CA_FILE``, else the system's trust store) and to name
the host the URL names. asyncpg's own ``?ssl=require`` encrypts without checking either, so an attacker on the path
could stand in for the server and read the bot's password or token.
"""

from __future__ import annotations

import enum
import inspect
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

# The audience of Azure Database for PostgreSQL access tokens in Azure's global cloud (national clouds have their own:
# TAPBOT_DATABASE_TOKEN_SCOPE).
OSSRDBMS_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
_E = TypeVar("_E", bound=enum.StrEnum)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_TLS_QUERY_KEYS = ("ssl", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword")


class DatabaseSettingsError(ValueError):
    """The database settings contradict each other; the message names the variables."""


class DatabaseAuth(enum.StrEnum):
    PASSWORD = "password"
    ENTRA = "entra"


class DatabaseTls(enum.StrEnum):
    VERIFY_FULL = "verify-full"
    DISABLE = "disable"


class TokenCredential(Protocol):
    """What azure-identity's async credentials offer (``azure.identity.aio.ManagedIdentityCredential``)."""

    def get_token(self, *scopes: str) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = field(repr=False)  # may hold a password
    auth: DatabaseAuth = DatabaseAuth.PASSWORD
    tls: DatabaseTls | None = None
    """None: whatever the URL says (SQLite, and PostgreSQL built by code that predates these settings)."""
    ca_file: Path | None = None
    client_id: str | None = None
    """The user-assigned managed identity that signs in with ``entra``; None: the system-assigned identity."""
    token_scope: str = OSSRDBMS_SCOPE

    @property
    def postgres(self) -> bool:
        return make_url(self.url).get_backend_name() == "postgresql"


def database_settings(
    url: str,
    *,
    auth: str | None = None,
    tls: str | None = None,
    ca_file: str | None = None,
    client_id: str | None = None,
    token_scope: str | None = None,
) -> DatabaseSettings:
    """The settings from the environment's strings (``TAPBOT_DATABASE_*``), checked against each other."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseSettingsError(
            "TAPBOT_DATABASE_URL is not a database URL: expected e.g. postgresql+asyncpg://user@host:5432/tapbot"
        ) from None
    postgres = parsed.get_backend_name() == "postgresql"
    chosen_auth = _choice(DatabaseAuth, "TAPBOT_DATABASE_AUTH", auth, DatabaseAuth.PASSWORD)
    local = _is_local(parsed)
    default_tls = DatabaseTls.DISABLE if local else DatabaseTls.VERIFY_FULL
    chosen_tls = _choice(DatabaseTls, "TAPBOT_DATABASE_TLS", tls, default_tls) if postgres else None
    if not postgres and (chosen_auth is not DatabaseAuth.PASSWORD or tls or ca_file):
        raise DatabaseSettingsError(
            "TAPBOT_DATABASE_AUTH, TAPBOT_DATABASE_TLS and TAPBOT_DATABASE_CA_FILE apply to PostgreSQL only; "
            f"TAPBOT_DATABASE_URL is {parsed.get_backend_name()}"
        )
    if chosen_auth is DatabaseAuth.ENTRA:
        if parsed.password:
            raise DatabaseSettingsError(
                "TAPBOT_DATABASE_AUTH=entra signs in with an access token: remove the password from TAPBOT_DATABASE_URL"
            )
        if not parsed.username:
            raise DatabaseSettingsError(
                "TAPBOT_DATABASE_AUTH=entra needs the database role of the managed identity as the URL's user "
                "(postgresql+asyncpg://<role>@<server>.postgres.database.azure.com:5432/tapbot)"
            )
        if chosen_tls is DatabaseTls.DISABLE and not local:
            raise DatabaseSettingsError(
                "TAPBOT_DATABASE_AUTH=entra sends an access token: it needs TAPBOT_DATABASE_TLS=verify-full"
            )
    path: Path | None = None
    if ca_file:
        path = Path(ca_file)
        if chosen_tls is not DatabaseTls.VERIFY_FULL:
            raise DatabaseSettingsError("TAPBOT_DATABASE_CA_FILE is only read with TAPBOT_DATABASE_TLS=verify-full")
        if not path.is_file():
            raise DatabaseSettingsError(f"TAPBOT_DATABASE_CA_FILE={ca_file} is not a readable file")
    return DatabaseSettings(
        url=url,
        auth=chosen_auth,
        tls=chosen_tls,
        ca_file=path,
        client_id=client_id or None,
        token_scope=token_scope or OSSRDBMS_SCOPE,
    )


def create_engine(
    database: DatabaseSettings | str, *, credential: TokenCredential | None = None, **engine_options: Any
) -> AsyncEngine:
    """The SQLAlchemy engine for ``database``; ``credential`` replaces the managed identity (tests)."""
    settings = database if isinstance(database, DatabaseSettings) else DatabaseSettings(database)
    url = make_url(settings.url)
    connect_args: dict[str, Any] = dict(engine_options.pop("connect_args", {}))
    if settings.postgres and settings.tls is not None:
        url = _without_tls_query(url)
        connect_args["ssl"] = tls_context(settings.ca_file) if settings.tls is DatabaseTls.VERIFY_FULL else False
    if settings.postgres and settings.auth is DatabaseAuth.ENTRA:
        connect_args["password"] = entra_password(credential or managed_identity(settings), settings.token_scope)
    return create_async_engine(url, connect_args=connect_args, **engine_options)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify-full: the certificate chains to ``ca_file`` (else the system's trust store) and names the host."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def entra_password(credential: TokenCredential, scope: str = OSSRDBMS_SCOPE) -> Callable[[], Awaitable[str]]:
    """asyncpg calls this for every new connection (its ``password`` may be an async callable)."""

    async def access_token() -> str:
        token = credential.get_token(scope)
        if inspect.isawaitable(token):
            token = await token
        value = getattr(token, "token", None)
        if not isinstance(value, str) or not value:
            raise RuntimeError("the Microsoft Entra credential returned no access token for the database")
        return value

    return access_token


def managed_identity(settings: DatabaseSettings) -> TokenCredential:
    from azure.identity.aio import ManagedIdentityCredential  # only deployments that use it pay for the import

    if settings.client_id:
        return ManagedIdentityCredential(client_id=settings.client_id)
    return ManagedIdentityCredential()


def _choice(kind: type[_E], variable: str, value: str | None, default: _E) -> _E:
    if not value or not value.strip():
        return default
    try:
        return kind(value.strip().lower())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise DatabaseSettingsError(f"{variable}={value} is not one of: {allowed}") from None


def _is_local(url: URL) -> bool:
    host = url.host or ""
    if not host or host.startswith("/") or host in _LOCAL_HOSTS:
        return True  # a Unix socket, or the machine itself
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_tls_query(url: URL) -> URL:
    return url.difference_update_query([key for key in url.query if key.lower() in _TLS_QUERY_KEYS])
