"""Activities already handled: Teams retries a delivery it thinks failed, with the same activity id."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete

from bot.adapters.store.schema import PROCESSED_KEY_LENGTH, ProcessedActivityRow
from bot.adapters.store.sessions import SqlDatabase, changed_one


class SqlProcessedActivities:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def first_delivery(self, key: str, now: datetime, keep: timedelta) -> bool:
        """Records an incoming activity; False when it was seen before (a retried delivery)."""
        if len(key) > PROCESSED_KEY_LENGTH:  # kept whole up to the column's length, beyond it by its digest
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        async with self._db.session() as session:
            await session.execute(delete(ProcessedActivityRow).where(ProcessedActivityRow.at < now - keep))
            inserted = await session.execute(
                self._db.insert_ignoring_duplicates(ProcessedActivityRow, {"key": key, "at": now})
            )
            return changed_one(inserted)
