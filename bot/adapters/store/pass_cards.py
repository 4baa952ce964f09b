"""Where each pass was shown (never the pass), so its card can be redacted later."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from bot.adapters.store.schema import PassCardRow
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.records import PassCard, RedactionReason

# Built once: every pass shown saves its card and every redaction claims one (sessions.py `connection`).
_SAVE = insert(PassCardRow)
_CLAIM = (
    update(PassCardRow)
    .where(PassCardRow.id == bindparam("card_id"), PassCardRow.redacted_at.is_(None))
    .values(redacted_at=bindparam("at"), redaction_reason=bindparam("reason"))
)
_SET_ACTIVITY = (
    update(PassCardRow).where(PassCardRow.id == bindparam("card_id")).values(activity_id=bindparam("activity_id"))
)
# Every card button reads its card, every revoke and replacement the cards still showing the pass, to hide them.
_CARD = select(PassCardRow.__table__).where(PassCardRow.id == bindparam("card_id"))
_UNREDACTED_FOR_PASS = (
    select(PassCardRow.__table__)
    .where(PassCardRow.pass_method_id == bindparam("pass_method_id"), PassCardRow.redacted_at.is_(None))
    .order_by(PassCardRow.created_at, PassCardRow.id)
)


class SqlPassCards:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_pass_card(self, card: PassCard) -> None:
        async with self._db.connection() as connection:
            await connection.execute(_SAVE, card.__dict__)

    async def save_pass_cards(self, cards: Sequence[PassCard]) -> None:
        """Several cards in one transaction: a results page and the entry row of each pass on it."""
        async with self._db.session() as session:
            session.add_all(PassCardRow(**card.__dict__) for card in cards)

    async def set_card_activity(self, card_id: str, activity_id: str) -> None:
        async with self._db.connection() as connection:
            await connection.execute(_SET_ACTIVITY, {"card_id": card_id, "activity_id": activity_id})

    async def pass_card(self, card_id: str) -> PassCard | None:
        async with self._db.connection() as connection:
            row = (await connection.execute(_CARD, {"card_id": card_id})).first()
            return PassCard(**row._mapping) if row is not None else None

    async def claim_redaction(self, card_id: str, reason: RedactionReason, at: datetime) -> bool:
        """Marks the card redacted; False when it already was (a second click, or another replica)."""
        values = {"card_id": card_id, "at": at, "reason": reason.value}
        async with self._db.connection() as connection:
            return changed_one(await connection.execute(_CLAIM, values))

    async def cards_due_for_redaction(self, now: datetime, limit: int = 50) -> list[PassCard]:
        query = (
            select(PassCardRow)
            .where(PassCardRow.redacted_at.is_(None), PassCardRow.expires_at <= now)
            .order_by(PassCardRow.expires_at, PassCardRow.id)
            .limit(limit)
        )
        async with self._db.session() as session:
            return [_card(row) for row in (await session.scalars(query)).all()]

    async def unredacted_cards_for_pass(self, pass_method_id: str) -> list[PassCard]:
        async with self._db.connection() as connection:
            rows = await connection.execute(_UNREDACTED_FOR_PASS, {"pass_method_id": pass_method_id})
            return [PassCard(**row._mapping) for row in rows]

    async def unredacted_cards_for_user(self, target_id: str) -> list[PassCard]:
        query = (
            select(PassCardRow)
            .where(PassCardRow.target_id == target_id, PassCardRow.redacted_at.is_(None))
            .order_by(PassCardRow.created_at, PassCardRow.id)
        )
        async with self._db.session() as session:
            return [_card(row) for row in (await session.scalars(query)).all()]


def _card(row: PassCardRow) -> PassCard:
    return PassCard(
        id=row.id,
        requester_id=row.requester_id,
        target_id=row.target_id,
        target_label=row.target_label,
        pass_method_id=row.pass_method_id,
        start_at=row.start_at,
        expires_at=row.expires_at,
        one_time=row.one_time,
        timezone=row.timezone,
        service_url=row.service_url,
        conversation_id=row.conversation_id,
        activity_id=row.activity_id,
        created_at=row.created_at,
        redacted_at=row.redacted_at,
        redaction_reason=row.redaction_reason,
    )
