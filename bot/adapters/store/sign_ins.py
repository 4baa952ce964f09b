"""Delegated writes (issue 14): actions waiting for a person's sign-in (``SignInWaits``), each taken once by one
conditional UPDATE so two replicas never both resume it, and how the token service knows each person. No token."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.adapters.store.schema import SignInUserRow, SignInWaitRow
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.records import SignInWait, SignInWaitKind

# Taken or expired waits are kept a day (a replica's late take still finds the row consumed), then deleted.
_KEEP = timedelta(days=1)


class SqlSignIns:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_sign_in_wait(self, wait: SignInWait) -> None:
        insert = postgresql_insert if self._db.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(SignInWaitRow)
            .values(
                user_id=wait.user_id.lower(),
                kind=wait.kind.value,
                ref=wait.ref,
                ref_key=_ref_key(wait.ref),
                created_at=wait.created_at,
                expires_at=wait.expires_at,
                consumed_at=None,
            )
            .on_conflict_do_update(
                index_elements=["user_id", "kind", "ref_key"],
                set_={"created_at": wait.created_at, "expires_at": wait.expires_at, "consumed_at": None},
            )
        )
        async with self._db.session() as session:
            await session.execute(
                delete(SignInWaitRow).where(
                    SignInWaitRow.user_id == wait.user_id.lower(), SignInWaitRow.expires_at < wait.created_at - _KEEP
                )
            )
            await session.execute(statement)

    async def take_sign_in_waits(self, user_id: str, now: datetime) -> list[SignInWait]:
        pending = (
            SignInWaitRow.user_id == user_id.lower(),
            SignInWaitRow.consumed_at.is_(None),
            SignInWaitRow.expires_at > now,
        )
        async with self._db.session() as session:
            rows = (
                await session.scalars(
                    select(SignInWaitRow).where(*pending).order_by(SignInWaitRow.created_at, SignInWaitRow.id)
                )
            ).all()
        taken: list[SignInWait] = []
        for row in rows:
            async with self._db.session() as session:
                result = await session.execute(
                    update(SignInWaitRow).where(SignInWaitRow.id == row.id, *pending).values(consumed_at=now)
                )
            if changed_one(result):  # else another replica took it first
                taken.append(_wait(row))
        return taken

    async def drop_sign_in_waits(self, user_id: str, kind: SignInWaitKind, ref: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                delete(SignInWaitRow).where(
                    SignInWaitRow.user_id == user_id.lower(),
                    SignInWaitRow.kind == kind.value,
                    SignInWaitRow.ref_key == _ref_key(ref),
                )
            )

    async def save_sign_in_user(self, user_id: str, channel_user_id: str, channel_id: str, at: datetime) -> None:
        values: dict[str, object] = {
            "user_id": user_id.lower(),
            "channel_user_id": channel_user_id,
            "channel_id": channel_id,
            "updated_at": at,
        }
        async with self._db.session() as session:
            await session.execute(self._db.upsert(SignInUserRow, values))

    async def sign_in_user(self, user_id: str) -> tuple[str, str] | None:
        async with self._db.session() as session:
            row = await session.get(SignInUserRow, user_id.lower())
            return (row.channel_user_id, row.channel_id) if row else None

    async def signed_in_at(self, user_id: str) -> datetime | None:
        async with self._db.session() as session:
            return await session.scalar(
                select(SignInUserRow.updated_at).where(SignInUserRow.user_id == user_id.lower())
            )

    async def forget_sign_in_user(self, user_id: str) -> None:
        async with self._db.session() as session:
            await session.execute(delete(SignInUserRow).where(SignInUserRow.user_id == user_id.lower()))


def _ref_key(ref: str) -> str:
    return hashlib.sha256(ref.encode()).hexdigest()


def _wait(row: SignInWaitRow) -> SignInWait:
    return SignInWait(
        user_id=row.user_id,
        kind=SignInWaitKind(row.kind),
        ref=row.ref,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
