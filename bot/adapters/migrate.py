"""Schema migrations: Alembic, configured in code (the scripts are in ``bot/adapters/migrations``; no alembic.ini).

    python -m bot.adapters.migrate [--url URL]   # migrate the database to this version's schema
    python -m bot.adapters.migrate --status      # print its revision and this version's; exit 1 when behind
    python -m bot.adapters.migrate --new "what"  # developers: autogenerate the next revision from store/schema.py

Without ``--url`` the database is the app's own (``TAPBOT_DATABASE_URL``, else the default SQLite file). The app
runs the same migration at every start (``SqlStore.create_schema``), so the command is only needed to migrate
before a rollout. Concurrent starts are safe: on PostgreSQL the migration holds a transaction-scoped advisory lock
and on SQLite an IMMEDIATE transaction, so a second process waits and then finds nothing to do; either way the
migration is one transaction, all or nothing. A database that an earlier tapbot created without
migrations (tables present, no ``alembic_version``) is adopted: the tables and nullable columns it lacks are added as
revision 0001 defines them (what the app's start used to do, and the columns later versions added), ``audit_events``
gets its append-only protection if it lacked it, and it is stamped 0001.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Column, Connection, MetaData, inspect, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.database import DatabaseSettings, create_engine

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
FIRST_REVISION = "0001"
_ADVISORY_LOCK_KEY = 0x74617062_6F74  # "tapbot": one migration at a time per PostgreSQL database


class MigrationError(RuntimeError):
    """The database cannot be brought to this version's schema; the message says why and what to do."""


@dataclass(frozen=True)
class MigrationResult:
    before: str | None
    """The revision the database was at (None: empty)."""
    after: str
    adopted: bool = False
    """The database had tapbot's tables without a revision (made before migrations existed) and was stamped."""

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(**attributes: Any) -> Config:
    """Alembic's configuration, without a file: ``connection`` or ``url`` go to env.py as attributes."""
    config = Config(attributes=attributes)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@cache
def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise MigrationError(f"the migration scripts have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


async def current_revision(url: str | DatabaseSettings) -> str | None:
    """The revision the database at ``url`` is at; None when it has none (empty, or made before migrations)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


async def migrate(url: str | DatabaseSettings) -> MigrationResult:
    """Brings the database at ``url`` to this version's schema (head); a no-op when it already is."""
    _create_sqlite_directory(url.url if isinstance(url, DatabaseSettings) else url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return await migrate_engine(engine)
    finally:
        await engine.dispose()


async def migrate_engine(engine: AsyncEngine) -> MigrationResult:
    """`migrate` on an engine the caller owns (the store's)."""
    # Alembic's `context` and `op` are module globals: one migration at a time in this process.
    async with _lock_of_this_loop(), engine.begin() as connection:
        result = await connection.run_sync(upgrade_to_head)
    if result.changed:
        logger.info("database schema migrated from %s to %s", result.before or "(empty)", result.after)
    return result


def upgrade_to_head(connection: Connection) -> MigrationResult:
    """The migration itself, on a connection inside a transaction that the caller commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # The driver would run each CREATE on its own; one IMMEDIATE transaction makes the migration atomic and
        # keeps a second process (another start, the command) waiting until it is done.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    before = _current(connection)
    head = head_revision()
    adopted = False
    if before is None and inspect(connection).has_table("audit_events"):
        _adopt(connection)
        before, adopted = FIRST_REVISION, True
    if before is not None and before != head:
        try:
            ScriptDirectory.from_config(alembic_config()).get_revision(before)
        except (CommandError, RevisionError) as error:
            raise MigrationError(
                f"the database is at schema revision {before}, which this version of tapbot does not know (a newer "
                f"version migrated it; this one ends at {head}): run the newer version, or restore a backup"
            ) from error
    if before != head:
        command.upgrade(alembic_config(connection=connection), "head")
    after = _current(connection)
    if after is None or after != head:
        raise MigrationError(f"the migration ended at revision {after}, not at {head}")
    return MigrationResult(before=None if adopted else before, after=after, adopted=adopted)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _adopt(connection: Connection) -> None:
    """Brings a database made before migrations to revision 0001 the way the app's old start did (it created
    missing tables), plus the nullable columns that later versions added to existing tables, then stamps it."""
    first = ScriptDirectory.from_config(alembic_config()).get_revision(FIRST_REVISION)
    assert first is not None
    expected: MetaData = first.module.schema()
    present = inspect(connection)
    tables = set(present.get_table_names())
    missing_tables = [table for table in expected.sorted_tables if table.name not in tables]
    missing_columns = [
        column
        for table in expected.sorted_tables
        if table.name in tables
        for column in table.columns
        if column.name not in {reflected["name"] for reflected in present.get_columns(table.name)}
    ]
    required = [f"{column.table.name}.{column.name}" for column in missing_columns if not column.nullable]
    if required:
        raise MigrationError(
            "the database holds tapbot tables made before schema migrations existed, but lacks the columns "
            f"{', '.join(required)}, which cannot be added to rows that exist: add them as revision "
            f"{FIRST_REVISION} defines them (bot/adapters/migrations/versions), or start from an empty database"
        )
    expected.create_all(connection, tables=missing_tables)
    operations = Operations(MigrationContext.configure(connection))
    for column in missing_columns:
        operations.add_column(column.table.name, Column(column.name, column.type, nullable=True))
    for statement in first.module.append_only_statements(connection.dialect.name):
        connection.execute(text(statement))
    command.stamp(alembic_config(connection=connection), FIRST_REVISION)
    logger.warning(
        "adopted a database made before migrations: created %s, added %s",
        ", ".join(table.name for table in missing_tables) or "no table",
        ", ".join(f"{column.table.name}.{column.name}" for column in missing_columns) or "no column",
    )


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_of_this_loop() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock


def _create_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _main(database: str | DatabaseSettings, status_only: bool) -> int:
    url = database.url if isinstance(database, DatabaseSettings) else database
    head = head_revision()
    if status_only:
        current = await current_revision(database)
        state = "up to date" if current == head else "behind: run python -m bot.adapters.migrate"
        print(f"{_shown(url)}: at revision {current or '(none)'}; this version's schema is {head} ({state}).")
        return 0 if current == head else 1
    result = await migrate(database)
    if result.adopted:
        print(f"{_shown(url)}: made before migrations; adopted at {FIRST_REVISION}, now at revision {result.after}.")
    elif result.changed:
        print(f"{_shown(url)}: migrated from {result.before or '(empty)'} to revision {result.after}.")
    else:
        print(f"{_shown(url)}: already at revision {head}; nothing to do.")
    return 0


def new_revision(message: str) -> Path:
    """Writes the next revision, autogenerated from the difference between head and store/schema.py's models (for
    developers; review it, then run ruff format on it)."""
    head = head_revision()
    with tempfile.TemporaryDirectory(prefix="tapbot-revision-") as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'head.db'}"
        asyncio.run(migrate(url))
        script = command.revision(
            alembic_config(url=url), message=message, autogenerate=True, rev_id=f"{int(head) + 1:04d}"
        )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.adapters.migrate", description="Migrate tapbot's database to this version's schema."
    )
    parser.add_argument("--url", help="SQLAlchemy async URL (default: TAPBOT_DATABASE_URL, else the SQLite file)")
    parser.add_argument("--status", action="store_true", help="only print the revisions; exit 1 when behind")
    parser.add_argument(
        "--new", metavar="MESSAGE", help="developers: write the next revision from the changes to the models"
    )
    options = parser.parse_args(arguments)
    if options.new:
        print(f"wrote {new_revision(options.new)}: review it (and ruff format it)")
        return 0
    url: str | DatabaseSettings | None = options.url
    if url is None:
        from bot.settings import Settings, SettingsError

        try:
            url = Settings.from_env(os.environ).database  # with its sign-in (Entra) and TLS settings
        except SettingsError as error:
            print(f"migrate: {error} (or give --url)", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_main(url, options.status))
    except MigrationError as error:
        print(f"migrate: {error}.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
