"""One database for every aggregate's store: the engine, one transaction per call, and the dialect's upserts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Result, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.expression import Executable

from bot.adapters.database import DatabaseSettings, TokenCredential, create_engine
from bot.adapters.migrate import MigrationResult, migrate_engine
from bot.adapters.store.schema import Base
from bot.adapters.store.sqlite_driver import BUSY_TIMEOUT_S, LoopThreadConnection, loop_thread_connect


class _Shared:
    """The transaction `SqlDatabase.together` opened: the database, the task that opened it, its connection, and the
    ORM session joined to that connection once a store call inside needs one."""

    __slots__ = ("connection", "db", "session", "task")

    def __init__(self, db: SqlDatabase, task: asyncio.Task[object] | None, connection: AsyncConnection) -> None:
        self.db = db
        self.task = task
        self.connection = connection
        self.session: AsyncSession | None = None


_shared: ContextVar[_Shared | None] = ContextVar("tapbot_shared_transaction", default=None)


class SqlDatabase:
    """The engine and its transactions, shared by the per-aggregate stores."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite takes one writer at a time and answers "database is locked" to a transaction that cannot
        # upgrade to writing, busy timeout or not; one transaction at a time per process avoids that.
        self._sqlite_turn: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # Taking turns, they share one connection, kept open: checking one out of the pool and back for each
        # transaction cost about a third of a short transaction's CPU.
        self._kept: AsyncConnection | None = None

    @classmethod
    def from_url(cls, url: str | DatabaseSettings, *, credential: TokenCredential | None = None) -> SqlDatabase:
        """The database at a URL, or with the full database settings (Entra sign-in, verified TLS: database.py)."""
        parsed = make_url(url.url if isinstance(url, DatabaseSettings) else url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.get_backend_name() != "sqlite":
            return cls(create_engine(url, credential=credential, pool_pre_ping=True))
        engine = create_engine(url, credential=credential, pool_pre_ping=False)
        if parsed.get_driver_name() == "aiosqlite":
            event.listen(engine.sync_engine, "do_connect", loop_thread_connect)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def create_schema(self) -> MigrationResult:
        """Migrates the database to this version's schema (bot/adapters/migrations); a no-op when it is there."""
        return await migrate_engine(self.engine)

    async def close(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            await kept.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back when it raises. Inside `together`, the
        transaction it opened (this block then commits nothing itself, but flushes what it added)."""
        shared = self._joined()
        if shared is not None:
            if shared.session is None:
                shared.session = self._sessions(bind=shared.connection)
            yield shared.session
            await shared.session.flush()
            return
        if self._sqlite_turn is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        # (The kept connection is asked for once the turn is taken: `with a, b` enters `a` before evaluating `b`.)
        async with (
            self._sqlite_turn,
            self._sessions(bind=await self._sqlite_connection()) as session,
            session.begin(),
        ):
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """Like `session`, on a Core connection: for the statements every command runs, which need no ORM objects
        (an ORM session costs several times their own work to set up, flush and commit)."""
        shared = self._joined()
        if shared is not None:
            yield shared.connection
            return
        if self._sqlite_turn is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._sqlite_turn:
            connection = await self._sqlite_connection()
            async with connection.begin():
                yield connection

    async def _sqlite_connection(self) -> AsyncConnection:
        """The connection SQLite's transactions share (the caller holds `_sqlite_turn`): opened again once closed or
        broken, and never handed on inside a transaction a failure left open."""
        kept = self._kept
        if kept is not None and (kept.closed or kept.invalidated):
            self._kept = kept = None
        if kept is None:
            self._kept = kept = await self.engine.connect()
        elif kept.in_transaction():
            await kept.rollback()
        else:
            driver = _sqlite3_of(kept)
            if driver is not None and driver.in_transaction:  # a COMMIT SQLite refused: SQLAlchemy's ended, not its
                driver.rollback()
        return kept

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        """The store calls this task makes inside the block, one after another, share one transaction: committed
        when the block ends (durable once it has), rolled back when it raises. Only store calls belong inside: on
        SQLite the process's other transactions wait for the block. A task started inside gets its own transactions.
        Nested blocks join the outer one."""
        if self._joined() is not None:
            yield
            return
        async with self.connection() as connection:
            shared = _Shared(self, asyncio.current_task(), connection)
            token = _shared.set(shared)
            try:
                yield
            finally:
                _shared.reset(token)
                if shared.session is not None:
                    await shared.session.close()  # leaves the connection's transaction to this block

    def _joined(self) -> _Shared | None:
        shared = _shared.get()
        if shared is None or shared.db is not self or shared.task is not asyncio.current_task():
            return None
        return shared

    def insert_ignoring_duplicates(self, table: type[Base], values: dict[str, object]) -> Executable:
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        return insert(table).values(**values).on_conflict_do_nothing()

    def upsert(self, table: type[Base], values: dict[str, object]) -> Executable:
        """INSERT, or UPDATE the row with the same primary key: one statement, so two replicas saving the same key at
        once both succeed (a read-then-insert lets the second fail on the primary key)."""
        keys = [column.name for column in inspect(table).primary_key]
        changes = {name: value for name, value in values.items() if name not in keys}
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        return insert(table).values(**values).on_conflict_do_update(index_elements=keys, set_=changes)


def _sqlite3_of(connection: AsyncConnection) -> sqlite3.Connection | None:
    driver = connection.sync_connection.connection.driver_connection if connection.sync_connection else None
    sqlite = getattr(driver, "_conn", None)  # aiosqlite's connection holds sqlite3's
    return sqlite if isinstance(sqlite, sqlite3.Connection) else None


def changed_one(result: Result[object]) -> bool:
    """Whether the statement changed exactly one row (a conditional UPDATE or INSERT that won)."""
    return (getattr(result, "rowcount", 0) or 0) == 1


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # On the event loop's thread SQLite's busy handler would hold the loop: the driver waits for locks itself.
    busy_timeout_ms = 0 if isinstance(dbapi_connection, LoopThreadConnection) else round(BUSY_TIMEOUT_S * 1000)
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
