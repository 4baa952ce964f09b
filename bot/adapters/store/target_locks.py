"""One check-and-create per user at a time, across replicas: a row per locked user that runs out by itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import Executable

from bot.adapters.store.schema import TargetLockRow
from bot.adapters.store.sessions import SqlDatabase, changed_one


def _lock(insert: Callable[[type[TargetLockRow]], Any]) -> Executable:
    statement = insert(TargetLockRow).values(
        target_id=bindparam("target_id"), holder=bindparam("holder"), expires_at=bindparam("expires_at")
    )
    taking = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["target_id"],
        set_={"holder": taking.holder, "expires_at": taking.expires_at},
        where=or_(TargetLockRow.expires_at < bindparam("now"), TargetLockRow.holder == taking.holder),
    )


# Built once: every typed command takes and gives back a lock, and building the statement cost more than running it.
_LOCK = {"postgresql": _lock(postgresql_insert), "sqlite": _lock(sqlite_insert)}
_UNLOCK = delete(TargetLockRow).where(
    TargetLockRow.target_id == bindparam("target_id"), TargetLockRow.holder == bindparam("holder")
)


class SqlTargetLocks:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def lock_target(self, target_id: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Takes the user's check-and-create lock, or one whose time ran out: one statement, so of several replicas
        asking at once exactly one gets it (INSERT, or UPDATE only where the lock expired)."""
        values = {"target_id": target_id, "holder": holder, "expires_at": now + ttl, "now": now}
        async with self._db.connection() as connection:
            return changed_one(await connection.execute(_LOCK[self._db.dialect], values))

    async def unlock_target(self, target_id: str, holder: str) -> bool:
        async with self._db.connection() as connection:
            return changed_one(await connection.execute(_UNLOCK, {"target_id": target_id, "holder": holder}))
