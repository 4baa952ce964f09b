"""Activities already handled: Teams retries a delivery it thinks failed, with the same activity id."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.adapters.store.schema import PROCESSED_KEY_LENGTH, ProcessedActivityRow
from bot.adapters.store.sessions import SqlDatabase, changed_one

# Built once: every activity runs them (sessions.py `connection`).
_FORGET = delete(ProcessedActivityRow).where(ProcessedActivityRow.at < bindparam("cutoff"))
_RECORD = {
    "postgresql": postgresql_insert(ProcessedActivityRow).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(ProcessedActivityRow).on_conflict_do_nothing(),
}


class SqlProcessedActivities:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def first_delivery(self, key: str, now: datetime, keep: timedelta) -> bool:
        """Records an incoming activity; False when it was seen before (a retried delivery)."""
        if len(key) > PROCESSED_KEY_LENGTH:  # kept whole up to the column's length, beyond it by its digest
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        async with self._db.connection() as connection:
            await connection.execute(_FORGET, {"cutoff": now - keep})
            return changed_one(await connection.execute(_RECORD[self._db.dialect], {"key": key, "at": now}))
