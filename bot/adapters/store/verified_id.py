"""The Verified ID presentation requests the bot created (never a token, only the hash of each callback secret)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text, select, text, update
from sqlalchemy.orm import Mapped, mapped_column

from bot.adapters.store.schema import Base, ClippedString, UtcDateTime
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.verified_id import OPEN_STATUSES, VerifiedIdRequest, VerifiedIdStatus


class VerifiedIdRequestRow(Base):
    """One presentation request per verification (0005)."""

    __tablename__ = "verified_id_requests"

    verification_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    requester_id: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    target_upn: Mapped[str] = mapped_column(ClippedString(320))
    authority: Mapped[str] = mapped_column(Text)
    threshold: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    scanned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    detail: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    score: Mapped[float | None] = mapped_column(Float)


class SqlVerifiedIdRequests:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_verified_id_request(self, request: VerifiedIdRequest) -> None:
        values = {**request.__dict__, "status": request.status.value}
        async with self._db.session() as session:
            await session.execute(self._db.upsert(VerifiedIdRequestRow, values))

    async def verified_id_request(self, verification_id: str) -> VerifiedIdRequest | None:
        async with self._db.session() as session:
            row = await session.get(VerifiedIdRequestRow, verification_id)
            return _request(row) if row else None

    async def verified_id_request_by_state(self, state: str) -> VerifiedIdRequest | None:
        async with self._db.session() as session:
            row = await session.scalar(select(VerifiedIdRequestRow).where(VerifiedIdRequestRow.state == state))
            return _request(row) if row else None

    async def mark_verified_id_scanned(self, verification_id: str, at: datetime) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(VerifiedIdRequestRow)
                .where(
                    VerifiedIdRequestRow.verification_id == verification_id,
                    VerifiedIdRequestRow.status == VerifiedIdStatus.CREATED.value,
                )
                .values(status=VerifiedIdStatus.SCANNED.value, scanned_at=at)
            )
            return changed_one(result)

    async def finish_verified_id_request(
        self,
        verification_id: str,
        status: VerifiedIdStatus,
        at: datetime,
        *,
        detail: str = "",
        score: float | None = None,
    ) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(VerifiedIdRequestRow)
                .where(
                    VerifiedIdRequestRow.verification_id == verification_id,
                    VerifiedIdRequestRow.status.in_([status.value for status in OPEN_STATUSES]),
                )
                .values(status=status.value, finished_at=at, detail=detail, score=score)
            )
            return changed_one(result)

    async def verified_id_requests_due(self, now: datetime, limit: int = 50) -> list[VerifiedIdRequest]:
        query = (
            select(VerifiedIdRequestRow)
            .where(
                VerifiedIdRequestRow.status.in_([status.value for status in OPEN_STATUSES]),
                VerifiedIdRequestRow.expires_at <= now,
            )
            .order_by(VerifiedIdRequestRow.expires_at, VerifiedIdRequestRow.verification_id)
            .limit(limit)
        )
        async with self._db.session() as session:
            return [_request(row) for row in (await session.scalars(query)).all()]


def _request(row: VerifiedIdRequestRow) -> VerifiedIdRequest:
    return VerifiedIdRequest(
        verification_id=row.verification_id,
        state=row.state,
        secret_hash=row.secret_hash,
        requester_id=row.requester_id,
        target_id=row.target_id,
        target_upn=row.target_upn,
        authority=row.authority,
        threshold=row.threshold,
        created_at=row.created_at,
        expires_at=row.expires_at,
        request_id=row.request_id,
        url=row.url,
        status=VerifiedIdStatus(row.status),
        scanned_at=row.scanned_at,
        finished_at=row.finished_at,
        detail=row.detail,
        score=row.score,
    )
