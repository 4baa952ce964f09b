"""Activities already handled: Teams retries a delivery it thinks failed, with the same activity id."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import Executable

from bot.adapters.store.schema import PROCESSED_KEY_LENGTH, ProcessedActivityRow
from bot.adapters.store.sessions import SqlDatabase, changed_one

# How often the rows older than their keep are deleted: a row still there past its keep counts as not seen (the
# upsert below), so deleting them is only housekeeping, and one DELETE per activity was a third of its statements.
FORGET_EVERY = timedelta(minutes=1)


def _record(insert: Callable[[type[ProcessedActivityRow]], Any]) -> Executable:
    statement = insert(ProcessedActivityRow).values(key=bindparam("key"), at=bindparam("at"))
    return statement.on_conflict_do_update(
        index_elements=["key"], set_={"at": statement.excluded.at}, where=ProcessedActivityRow.at < bindparam("cutoff")
    )


# Built once: every activity runs them (sessions.py `connection`).
_FORGET = delete(ProcessedActivityRow).where(ProcessedActivityRow.at < bindparam("cutoff"))
_RECORD = {"postgresql": _record(postgresql_insert), "sqlite": _record(sqlite_insert)}


class SqlProcessedActivities:
    _forgot_at: datetime | None = None

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def first_delivery(self, key: str, now: datetime, keep: timedelta) -> bool:
        """Records an incoming activity; False when it was seen less than `keep` ago (a retried delivery)."""
        if len(key) > PROCESSED_KEY_LENGTH:  # kept whole up to the column's length, beyond it by its digest
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        cutoff = now - keep
        forget = self._forgot_at is None or not timedelta(0) <= now - self._forgot_at < FORGET_EVERY
        async with self._db.connection() as connection:
            if forget:
                await connection.execute(_FORGET, {"cutoff": cutoff})
            # INSERT, or take over a row older than its keep: one statement, so of two deliveries at once one wins.
            first = changed_one(
                await connection.execute(_RECORD[self._db.dialect], {"key": key, "at": now, "cutoff": cutoff})
            )
        if forget:
            self._forgot_at = now
        return first
