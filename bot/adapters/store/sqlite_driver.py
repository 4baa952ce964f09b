"""SQLAlchemy's aiosqlite adapter with SQLite's statements, commits and rollbacks run on the event loop's thread.

The stock adapter sends each statement to the thread aiosqlite runs SQLite in: a queue put, a wake-up of that thread,
and one of the event loop to hand the answer back, for a statement that takes SQLite tens of microseconds. The trips
cost more CPU than the statements, and the wait for the event loop's wake-up is worse: the store's transactions take
turns (one writer at a time, `SqlDatabase`), so under load each waited a turn of the whole event loop per statement
while every other transaction queued behind it (measured: 50 operators at once waited ~200 ms per transaction for a
turn held ~3 ms, of which ~0.5 ms was work). Here a transaction runs start to end without giving the event loop away.
What that costs: SQLite's own I/O happens on the event loop's thread too, mainly the commit's fsync of the write-ahead
log (0.2 ms here, p99 0.9 ms). A statement that finds the database locked by another connection (another process on
the file) waits for it here, up to `BUSY_TIMEOUT_S`, the event loop running between its tries, instead of in SQLite's
busy handler, which would hold the loop's thread. SQLite is the store of one local process on a local disk
(docs/deployment.md); replicas use PostgreSQL. The connection is still opened and closed through aiosqlite's thread,
and server-side (streaming) cursors keep the stock adapter.
`SqlDatabase.from_url` installs it for SQLite (`loop_thread_connect`).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Ran = tuple[Any, int, int | None, list[Any] | None]
_T = TypeVar("_T")

BUSY_TIMEOUT_S = 5.0
"""How long a statement waits for another connection's write lock (another process on the file, or a second store
of this one). SQLite's own busy timeout would wait on the event loop's thread, so it is 0 on these connections
(sessions.py) and the wait is here, the event loop running between tries."""
_SQLITE_BUSY = 5  # another connection holds the lock; not SQLITE_BUSY_SNAPSHOT (517): a stale read no wait can cure
_FIRST_TRY_AGAIN_S = 0.002
_LONGEST_TRY_AGAIN_S = 0.05


async def _until_unlocked(action: Callable[[], _T], timeout_s: float) -> _T:
    """Runs `action`; while SQLite answers that another connection holds the lock, tries again after growing pauses
    that let the event loop run, until `timeout_s` has passed (then raises what SQLite said)."""
    deadline: float | None = None
    pause = _FIRST_TRY_AGAIN_S
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) != _SQLITE_BUSY:
                raise
            now = time.monotonic()
            deadline = now + timeout_s if deadline is None else deadline
            if now >= deadline:
                raise
        await asyncio.sleep(min(pause, deadline - now))
        pause = min(pause * 2, _LONGEST_TRY_AGAIN_S)


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Ran:
    """The whole statement, and what SQLAlchemy reads of its cursor afterwards."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        return description, cursor.rowcount, cursor.lastrowid, cursor.fetchall() if description else None
    finally:
        cursor.close()


class LoopThreadCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:  # no cursor opened: no trip
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1  # sqlite3's default

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        await_(self._run(operation, parameters, many=False))

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await_(self._run(operation, seq_of_parameters, many=True))

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        # A coroutine for `await_` (SQLAlchemy's async layer checks that the driver was awaited) that suspends only to
        # wait for another connection's write lock.
        connection: sqlite3.Connection = self._connection._conn  # type: ignore[attr-defined]
        adapted: LoopThreadConnection = self._adapt_connection  # type: ignore[assignment]
        try:
            ran = await _until_unlocked(lambda: _run(connection, operation, parameters, many), adapted.busy_timeout_s)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid, rows = ran
        self._rows = collections.deque(rows or ())

    async def _async_soft_close(self) -> None:
        pass  # nothing open in aiosqlite's thread: the rows are here already

    def close(self) -> None:
        self._rows.clear()


class LoopThreadConnection(AsyncAdapt_aiosqlite_connection):
    """Commits and rolls back on the event loop's thread (sqlite3 does nothing when no transaction is open)."""

    __slots__ = ("busy_timeout_s",)
    _cursor_cls = LoopThreadCursor
    busy_timeout_s: float

    def commit(self) -> None:
        self._end(self._connection._conn.commit)

    def rollback(self) -> None:
        self._end(self._connection._conn.rollback)

    def _end(self, action: Callable[[], None]) -> None:
        try:
            await_(_until_unlocked(action, self.busy_timeout_s))
        except Exception as error:
            self._handle_exception(error)


def loop_thread_connect(
    dialect: Dialect, _record: ConnectionPoolEntry, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> LoopThreadConnection:
    """The `do_connect` event: the stock adapter's connection (aiosqlite's thread made as it makes it, the sqlite3
    connection usable from the event loop's thread too), with `LoopThreadCursor` for its non-streaming cursors."""
    cparams = {**cparams, "check_same_thread": False}
    stock: AsyncAdapt_aiosqlite_connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
    connection = LoopThreadConnection(stock.dbapi, stock._connection)
    connection.busy_timeout_s = BUSY_TIMEOUT_S
    return connection
