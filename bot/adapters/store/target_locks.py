"""One check-and-create per user at a time, across replicas: a row per locked user that runs out by itself."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.adapters.store.schema import TargetLockRow
from bot.adapters.store.sessions import SqlDatabase, changed_one


class SqlTargetLocks:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Takes the user's check-and-create lock, or one whose time ran out: one statement, so of several replicas
        asking at once exactly one gets it (INSERT, or UPDATE only where the lock expired)."""
        values = {"target_id": target_id, "holder": holder, "expires_at": now + ttl}
        table = postgresql_insert if self._db.dialect == "postgresql" else sqlite_insert
        statement = (
            table(TargetLockRow)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["target_id"],
                set_={"holder": holder, "expires_at": now + ttl},
                where=or_(TargetLockRow.expires_at < now, TargetLockRow.holder == holder),
            )
        )
        async with self._db.session() as session:
            return changed_one(await session.execute(statement))

    async def unlock_target(self, target_id: str, holder: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                delete(TargetLockRow).where(TargetLockRow.target_id == target_id, TargetLockRow.holder == holder)
            )
