"""`python app.py doctor`: checks a deployment before its first user, one plain sentence per check.

Every check is harmless: it reads, never writes (the permission to create passes is read from the access token's
`roles` claim instead of being tried). `diagnose` returns the findings; `render` turns them into the printed
checklist; app.py prints it and exits 0 when nothing failed, else 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from bot.adapters.database import create_engine
from bot.adapters.graph import build_credential
from bot.adapters.store import Base
from bot.doctor_credentials import BOT_AUTH_TYPES as BOT_AUTH_TYPES
from bot.doctor_credentials import TOKEN_TIMEOUT_SECONDS, _bot_credential_problem, _bot_framework_token, _close
from bot.doctor_credentials import token_roles as token_roles
from bot.doctor_delegated import SignInResourceSource
from bot.doctor_graph import REQUIRED_PERMISSIONS as REQUIRED_PERMISSIONS
from bot.doctor_graph import CredentialFactory, GraphChecks
from bot.doctor_report import Finding as Finding
from bot.doctor_report import Mark as Mark
from bot.doctor_report import Report as Report
from bot.doctor_report import _reason
from bot.doctor_report import render as render
from bot.settings import BOT_CONNECTION_PREFIX, LOOPBACK_HOSTS, GraphMode, Settings, SettingsError

logger = logging.getLogger(__name__)

DATABASE_TIMEOUT_SECONDS = 15.0

BotTokenSource = Callable[[Settings], Awaitable[str]]


@dataclass
class Doctor(GraphChecks):
    """Runs every check against the deployment `env` describes. The token sources and the token service's answer
    (delegated writes) can be replaced in tests."""

    env: Mapping[str, str]
    credential_factory: CredentialFactory = field(default=lambda settings: build_credential(settings.graph))
    bot_token: BotTokenSource | None = None
    sign_in_resource: SignInResourceSource | None = None
    findings: list[Finding] = field(default_factory=list)

    async def diagnose(self) -> Report:
        try:
            settings = Settings.from_env(self.env)
        except SettingsError as error:
            self.findings.append(Finding.failed("settings", f"Settings are incomplete: {error}"))
            return Report(tuple(self.findings))
        self.findings.append(Finding.ok("settings", f"Settings are complete ({_describe(settings)})."))
        registered = self._bot_registration(settings)
        bot_token = await self._bot_framework_token(settings, registered)
        await self._oauth_connection(settings, bot_token)
        credential = self._credential(settings)
        try:
            token_ok = await self._graph_token(settings, credential)
            await self._graph(settings, token_ok, credential)
        finally:
            if credential is not None:
                await _close(credential)
        await self._database(settings)
        return Report(tuple(self.findings))

    # --- the bot registration ---------------------------------------------------------------------------------

    def _bot_registration(self, settings: Settings) -> bool:
        connection = {
            key[len(BOT_CONNECTION_PREFIX) :]: value.strip()
            for key, value in settings.bot_connection_env.items()
            if key.startswith(BOT_CONNECTION_PREFIX) and value.strip()
        }
        client_id, tenant_id = settings.bot_client_id, settings.bot_tenant_id
        if not client_id:
            if tenant_id:
                self._fail(
                    "bot_registration",
                    f"A bot tenant id is set ({BOT_CONNECTION_PREFIX}TENANTID) but no bot app id "
                    f"({BOT_CONNECTION_PREFIX}CLIENTID): set both, or neither for the local sandbox.",
                )
            elif settings.host in LOOPBACK_HOSTS:
                self._ok(
                    "bot_registration",
                    f"No bot registration: /api/messages is unauthenticated and listens on {settings.host} only "
                    "(the local sandbox; never for a real tenant).",
                )
            else:  # Settings refuse this already; kept so the doctor never reports it as fine.
                self._fail("bot_registration", f"No bot app id, yet listening on {settings.host}: unauthenticated.")
            return False
        if not tenant_id:
            self._fail(
                "bot_registration",
                f"The bot app id is set but not its tenant ({BOT_CONNECTION_PREFIX}TENANTID): a single-tenant "
                "Azure Bot needs both.",
            )
            return False
        auth_type = connection.get("AUTHTYPE", "ClientSecret")
        problem = _bot_credential_problem(auth_type, connection)
        if problem:
            self._fail("bot_registration", f"The bot registration {client_id} has no usable credential: {problem}.")
            return False
        self._ok(
            "bot_registration",
            f"Bot registration {client_id} in tenant {tenant_id} ({auth_type}: {BOT_AUTH_TYPES[auth_type][1]}); "
            f"incoming requests need a Bot Framework token; listening on {settings.host}:{settings.port}.",
        )
        return True

    async def _bot_framework_token(self, settings: Settings, registered: bool) -> str | None:
        """The bot's own Bot Framework token (kept for the token service check, never printed), or None."""
        if settings.anonymous:
            self._not_applicable("bot_token", "Bot Framework token: not applicable (no bot registration).")
            return None
        if not registered:
            self._not_applicable("bot_token", "Bot Framework token: not tried (the registration is incomplete).")
            return None
        source = self.bot_token or _bot_framework_token
        try:
            token = await asyncio.wait_for(source(settings), TOKEN_TIMEOUT_SECONDS)
        except Exception as error:
            logger.debug("bot token failed", exc_info=True)
            self._fail(
                "bot_token",
                f"The bot registration could not obtain a Bot Framework token ({_reason(error)}): replies to Teams "
                "would fail. Check the app id, tenant and secret or certificate of the Azure Bot.",
            )
            return None
        self._ok("bot_token", "The bot registration obtains a Bot Framework token (replies to Teams can be sent).")
        return token

    # --- the database -----------------------------------------------------------------------------------------

    async def _database(self, settings: Settings) -> None:
        url = make_url(settings.database_url)
        shown = url.render_as_string(hide_password=True)
        if not await asyncio.to_thread(_database_file_exists, settings.database_url):
            self._fail(
                "database",
                f"The database file {url.database} does not exist (the app creates it at its first start).",
            )
            self._not_applicable("schema", "Database schema: not checked (no database).")
            return
        engine = create_engine(settings.database)  # the app's own sign-in (password or Entra token) and TLS
        try:
            tables = await asyncio.wait_for(_tables(engine), DATABASE_TIMEOUT_SECONDS)
        except Exception as error:
            logger.debug("database unreachable", exc_info=True)
            self._fail("database", f"The database at {shown} cannot be reached: {_reason(error)}.")
            self._not_applicable("schema", "Database schema: not checked (no database).")
            return
        finally:
            await engine.dispose()
        self._ok("database", f"The database answers ({shown}).")
        self._schema(tables)

    def _schema(self, tables: dict[str, set[str]]) -> None:
        missing_tables = sorted(name for name in Base.metadata.tables if name not in tables)
        missing_columns = sorted(
            f"{name}.{column.name}"
            for name, table in Base.metadata.tables.items()
            if name in tables
            for column in table.columns
            if column.name not in tables[name]
        )
        if missing_tables == sorted(Base.metadata.tables):
            self._fail(
                "schema",
                "The database holds none of tapbot's tables yet: start the app once (it creates them), then run "
                "the doctor again.",
            )
        elif missing_tables or missing_columns:
            missing = ", ".join([*missing_tables, *missing_columns])
            self._fail(
                "schema",
                f"The database schema is older than this version (missing: {missing}): start this version once "
                "(it migrates the schema at start), then run the doctor again.",
            )
        else:
            self._ok("schema", f"The database schema is present ({len(Base.metadata.tables)} tables).")


def _database_file_exists(database_url: str) -> bool:
    """False only for an SQLite file that is not there (connecting would create an empty one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return True
    return Path(str(url.database)).is_file()


async def _tables(engine: Any) -> dict[str, set[str]]:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        return await connection.run_sync(
            lambda sync: {
                name: {column["name"] for column in inspect(sync).get_columns(name)}
                for name in inspect(sync).get_table_names()
            }
        )


def _describe(settings: Settings) -> str:
    mode = settings.graph.mode
    if mode is GraphMode.SANDBOX:
        graph = f"Graph: the sandbox tenant from {settings.sandbox_tenant_file}"
    elif mode is GraphMode.ANONYMOUS:
        graph = f"Graph: a stand-alone sandbox at {settings.graph.base_url}"
    else:
        graph = f"Graph: tenant {settings.graph.tenant_id} at {settings.graph.base_url} with {mode.value}"
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    connection = settings.oauth_connection
    writes = (
        f"passes written with the technician's delegated rights through the OAuth connection '{connection}'"
        if settings.delegated_writes
        else "passes written with the bot's application permission"
    )
    return f"{graph}; {writes}; database {database}"


async def diagnose(env: Mapping[str, str], **options: Any) -> Report:
    return await Doctor(env, **options).diagnose()
