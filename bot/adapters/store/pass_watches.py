"""The passes follow-through watches (``PassWatchStore``): enrolled from pass cards, checked and notified under a
lease, each lease taken by one conditional UPDATE so two replicas never hold the same watch. Never the pass."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from bot.adapters.store.schema import PassCardRow, PassWatchRow
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.follow_through import CheckResult, PassWatch, WatchState
from bot.domain.records import RedactionReason

# A card hidden after hand-over still shows a live pass; revoked, replaced or expired ones do not.
_LIVE_CARD_REASONS = (RedactionReason.HANDED_OVER.value,)


class SqlPassWatches:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def enroll_live_passes(self, now: datetime) -> int:
        watched = select(PassWatchRow.pass_method_id)
        query = (
            select(PassCardRow)
            .where(
                PassCardRow.expires_at > now,
                PassCardRow.pass_method_id != "",
                or_(PassCardRow.redacted_at.is_(None), PassCardRow.redaction_reason.in_(_LIVE_CARD_REASONS)),
                PassCardRow.pass_method_id.not_in(watched),
            )
            .order_by(PassCardRow.created_at, PassCardRow.id)
            .limit(500)
        )
        async with self._db.session() as session:
            cards = (await session.scalars(query)).all()
        enrolled = 0
        for card in {card.pass_method_id: card for card in reversed(cards)}.values():
            values: dict[str, object] = {
                "pass_method_id": card.pass_method_id,
                "target_id": card.target_id,
                "target_label": card.target_label,
                "requester_id": card.requester_id,
                "timezone": card.timezone,
                "service_url": card.service_url,
                "conversation_id": card.conversation_id,
                "one_time": card.one_time,
                "start_at": card.start_at,
                "expires_at": card.expires_at,
                "enrolled_at": now,
                "state": WatchState.WATCHING.value,
                "seen_used": False,
            }
            async with self._db.session() as session:
                result = await session.execute(self._db.insert_ignoring_duplicates(PassWatchRow, values))
                enrolled += changed_one(result)
        return enrolled

    async def claim_due_watches(
        self, holder: str, now: datetime, *, checked_before: datetime, limit: int, lease_until: datetime
    ) -> list[PassWatch]:
        due = and_(
            PassWatchRow.state == WatchState.WATCHING.value,
            PassWatchRow.start_at <= now,
            or_(PassWatchRow.checked_at.is_(None), PassWatchRow.checked_at < checked_before),
            _free(now),
        )
        return await self._claim(_least_recently_checked(due, limit), due, holder, lease_until, limit)

    async def save_check(self, pass_method_id: str, holder: str, now: datetime, result: CheckResult) -> bool:
        async with self._db.session() as session:
            outcome = await session.execute(
                update(PassWatchRow)
                .where(PassWatchRow.pass_method_id == pass_method_id, PassWatchRow.lease_holder == holder)
                .values(
                    state=result.state.value,
                    checked_at=now,
                    known_method_ids=",".join(sorted(result.known_method_ids)),
                    seen_used=result.seen_used,
                    notice=result.notice,
                    lease_holder=None,
                    lease_until=None,
                )
            )
            return changed_one(outcome)

    async def release_watch(self, pass_method_id: str, holder: str) -> None:
        await self._release(pass_method_id, holder)

    async def claim_notices(self, holder: str, now: datetime, *, limit: int, lease_until: datetime) -> list[PassWatch]:
        pending = and_(PassWatchRow.notice.is_not(None), PassWatchRow.notified_at.is_(None), _free(now))
        query = (
            select(PassWatchRow.pass_method_id)
            .where(pending)
            .order_by(PassWatchRow.checked_at, PassWatchRow.pass_method_id)
            .limit(limit * 2)
        )
        return await self._claim(query, pending, holder, lease_until, limit)

    async def notice_delivered(self, pass_method_id: str, holder: str, now: datetime) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(PassWatchRow)
                .where(PassWatchRow.pass_method_id == pass_method_id, PassWatchRow.lease_holder == holder)
                .values(notified_at=now, lease_holder=None, lease_until=None)
            )
            return changed_one(result)

    async def release_notice(self, pass_method_id: str, holder: str) -> None:
        await self._release(pass_method_id, holder)

    async def watch_undelivered(self, watch: PassWatch, now: datetime) -> None:
        values: dict[str, object] = {
            "pass_method_id": watch.pass_method_id,
            "target_id": watch.target_id,
            "target_label": watch.target_label,
            "requester_id": watch.requester_id,
            "timezone": watch.timezone,
            "service_url": watch.service_url,
            "conversation_id": watch.conversation_id,
            "one_time": watch.one_time,
            "start_at": watch.start_at,
            "expires_at": watch.expires_at,
            "enrolled_at": now,
            "state": WatchState.REVOKE_PENDING.value,
            "checked_at": now,  # the delete that just failed counts as the first try
            "seen_used": False,
        }
        async with self._db.session() as session:
            await session.execute(self._db.upsert(PassWatchRow, values))

    async def claim_due_revokes(
        self, holder: str, now: datetime, *, tried_before: datetime, limit: int, lease_until: datetime
    ) -> list[PassWatch]:
        due = and_(
            PassWatchRow.state == WatchState.REVOKE_PENDING.value,
            or_(PassWatchRow.checked_at.is_(None), PassWatchRow.checked_at < tried_before),
            _free(now),
        )
        return await self._claim(_least_recently_checked(due, limit), due, holder, lease_until, limit)

    async def save_revoke_attempt(self, pass_method_id: str, holder: str, now: datetime, state: WatchState) -> bool:
        async with self._db.session() as session:
            outcome = await session.execute(
                update(PassWatchRow)
                .where(PassWatchRow.pass_method_id == pass_method_id, PassWatchRow.lease_holder == holder)
                .values(state=state.value, checked_at=now, lease_holder=None, lease_until=None)
            )
            return changed_one(outcome)

    async def pass_watch(self, pass_method_id: str) -> PassWatch | None:
        async with self._db.session() as session:
            row = await session.get(PassWatchRow, pass_method_id)
            return _watch(row) if row else None

    async def _claim(
        self, query: object, condition: ColumnElement[bool], holder: str, lease_until: datetime, limit: int
    ) -> list[PassWatch]:
        async with self._db.session() as session:
            ids = list((await session.scalars(query)).all())  # type: ignore[call-overload]
        claimed: list[PassWatch] = []
        for pass_method_id in ids:
            if len(claimed) >= limit:
                break
            async with self._db.session() as session:
                result = await session.execute(
                    update(PassWatchRow)
                    .where(PassWatchRow.pass_method_id == pass_method_id, condition)
                    .values(lease_holder=holder, lease_until=lease_until)
                )
                if not changed_one(result):
                    continue  # another replica took it
                row = await session.get(PassWatchRow, pass_method_id)
                if row is not None:
                    claimed.append(_watch(row))
        return claimed

    async def _release(self, pass_method_id: str, holder: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(PassWatchRow)
                .where(PassWatchRow.pass_method_id == pass_method_id, PassWatchRow.lease_holder == holder)
                .values(lease_holder=None, lease_until=None)
            )


def _least_recently_checked(condition: ColumnElement[bool], limit: int) -> Select[str]:
    """Candidates to claim: never checked (or tried) first, then the longest-unchecked; twice `limit`, since another
    replica may claim some of them first."""
    return (
        select(PassWatchRow.pass_method_id)
        .where(condition)
        .order_by(PassWatchRow.checked_at.is_not(None), PassWatchRow.checked_at, PassWatchRow.enrolled_at)
        .limit(limit * 2)
    )


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(PassWatchRow.lease_until.is_(None), PassWatchRow.lease_until < now)


def _watch(row: PassWatchRow) -> PassWatch:
    return PassWatch(
        pass_method_id=row.pass_method_id,
        target_id=row.target_id,
        target_label=row.target_label,
        requester_id=row.requester_id,
        timezone=row.timezone,
        service_url=row.service_url,
        conversation_id=row.conversation_id,
        one_time=row.one_time,
        start_at=row.start_at,
        expires_at=row.expires_at,
        state=WatchState(row.state),
        checked_at=row.checked_at,
        known_method_ids=None
        if row.known_method_ids is None
        else frozenset(filter(None, row.known_method_ids.split(","))),
        seen_used=row.seen_used,
        notice=row.notice,
        notified_at=row.notified_at,
    )
