"""SQLAlchemy's aiosqlite adapter with one trip to aiosqlite's thread per statement instead of three or four.

The stock adapter opens a cursor, executes, fetches and closes it, each a separate trip to the thread aiosqlite runs
SQLite in (a queue put, a wake-up of that thread, and one of the event loop to hand the answer back). Here a statement
runs start to end in one trip and its rows, description, row count and last row id come back together, as the stock
adapter already keeps a non-streaming cursor's rows in memory. Server-side cursors (streaming) keep the stock adapter.
A COMMIT or ROLLBACK with no transaction open makes no trip at all.
`SqlDatabase.from_url` installs it for SQLite (`one_trip_connect`).
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Ran = tuple[Any, int, int | None, list[Any] | None]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Ran:
    """In aiosqlite's thread: the whole statement, and what SQLAlchemy reads of its cursor afterwards."""
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


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
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
        try:
            return await_(self._run(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        aiosqlite_connection: Any = self._connection
        async with self._adapt_connection._execute_mutex:
            ran: _Ran = await aiosqlite_connection._execute(
                _run, aiosqlite_connection._conn, operation, parameters, many
            )
        self._description, self._rowcount, self._lastrowid, rows = ran
        self._rows = collections.deque(rows or ())

    async def _async_soft_close(self) -> None:
        pass  # nothing open in aiosqlite's thread: the rows are here already

    def close(self) -> None:
        self._rows.clear()


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """Also no trip for a COMMIT or ROLLBACK with no transaction open (after a read, or the pool's rollback of a
    connection given back after its commit): sqlite3 does nothing then either. Nothing can still be queued in
    aiosqlite's thread when they look: a statement's trip has ended, and one whose await was cancelled (which does
    not stop it there) makes SQLAlchemy discard the connection instead of rolling it back and reusing it."""

    __slots__ = ()
    _cursor_cls = OneTripCursor

    def commit(self) -> None:
        if self._in_transaction():
            super().commit()

    def rollback(self) -> None:
        if self._in_transaction():
            super().rollback()

    def _in_transaction(self) -> bool:
        try:
            return bool(self._connection.in_transaction)  # read here, while aiosqlite's thread has nothing to run
        except Exception:  # closed or broken: the stock path raises what SQLAlchemy expects
            return True


def one_trip_connect(
    dialect: Dialect, _record: ConnectionPoolEntry, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> OneTripConnection:
    """The `do_connect` event: the stock adapter's connection (aiosqlite's thread made as it makes it), with
    `OneTripCursor` for its non-streaming cursors."""
    stock: AsyncAdapt_aiosqlite_connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
    return OneTripConnection(stock.dbapi, stock._connection)
