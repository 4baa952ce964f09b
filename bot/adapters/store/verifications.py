"""Verifications of the person before a pass (``VerificationStore``), and the cards that ask people to attest.

Every change of state is one conditional UPDATE, so exactly one answer, expiry or write wins on every replica; a
verification is consumed by the write of its pass in the same way (confirmed → used, same requester, target and
kind, before its deadline).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from bot.adapters.store.schema import VerificationPromptRow, VerificationRow, requester_columns, requester_of
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.verification import (
    OPEN_STATES,
    Verification,
    VerificationKind,
    VerificationMethod,
    VerificationPrompt,
    VerificationState,
)


class SqlVerifications:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_verification(self, verification: Verification) -> None:
        async with self._db.session() as session:
            session.add(VerificationRow(**_values(verification)))

    async def verification(self, verification_id: str) -> Verification | None:
        async with self._db.session() as session:
            row = await session.get(VerificationRow, verification_id)
            return _verification(row) if row else None

    async def settle_verification(
        self,
        verification_id: str,
        *,
        from_states: frozenset[VerificationState],
        to: VerificationState,
        at: datetime,
        by_id: str | None = None,
        by: str | None = None,
        score: float | None = None,
        detail: str = "",
        expires_at: datetime | None = None,
    ) -> bool:
        values: dict[str, object] = {
            "state": to.value,
            "settled_at": at,
            "settled_by_id": by_id,
            "settled_by": by,
            "score": score,
            "detail": detail,
        }
        if expires_at is not None:
            values["expires_at"] = expires_at
        async with self._db.session() as session:
            result = await session.execute(
                update(VerificationRow)
                .where(
                    VerificationRow.id == verification_id,
                    VerificationRow.state.in_([state.value for state in from_states]),
                )
                .values(**values)
            )
            return changed_one(result)

    async def take_verification(
        self, verification_id: str, *, requester_id: str, target_id: str, kind: str, now: datetime, token: str
    ) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(VerificationRow)
                .where(
                    VerificationRow.id == verification_id,
                    VerificationRow.state == VerificationState.CONFIRMED.value,
                    func.lower(VerificationRow.requester_id) == requester_id.lower(),
                    func.lower(VerificationRow.target_id) == target_id.lower(),
                    VerificationRow.kind == kind,
                    VerificationRow.expires_at > now,
                )
                .values(state=VerificationState.USED.value, used_at=now, used_for=token)
            )
            return changed_one(result)

    async def finish_verification_use(self, verification_id: str, token: str, used_for: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(VerificationRow)
                .where(VerificationRow.id == verification_id, VerificationRow.used_for == token)
                .values(used_for=used_for)
            )

    async def release_verification(self, verification_id: str, token: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(VerificationRow)
                .where(
                    VerificationRow.id == verification_id,
                    VerificationRow.state == VerificationState.USED.value,
                    VerificationRow.used_for == token,
                )
                .values(state=VerificationState.CONFIRMED.value, used_at=None, used_for=None)
            )

    async def overdue_verifications(self, now: datetime) -> list[Verification]:
        query = (
            select(VerificationRow)
            .where(
                VerificationRow.state.in_([state.value for state in OPEN_STATES]),
                VerificationRow.expires_at <= now,
            )
            .order_by(VerificationRow.expires_at, VerificationRow.id)
            .limit(100)
        )
        async with self._db.session() as session:
            return [_verification(row) for row in (await session.scalars(query)).all()]

    async def set_verification_card(
        self, verification_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(VerificationRow)
                .where(VerificationRow.id == verification_id)
                .values(
                    card_service_url=service_url, card_conversation_id=conversation_id, card_activity_id=activity_id
                )
            )

    async def set_verification_progress(self, verification_id: str, progress: str) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(VerificationRow)
                .where(
                    VerificationRow.id == verification_id,
                    VerificationRow.state == VerificationState.PENDING.value,
                )
                .values(progress=progress)
            )
            return changed_one(result)

    async def set_verification_external(self, verification_id: str, external_ref: str, external_url: str) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(VerificationRow)
                .where(VerificationRow.id == verification_id)
                .values(external_ref=external_ref, external_url=external_url)
            )

    async def add_verification_prompt(self, prompt: VerificationPrompt) -> None:
        async with self._db.session() as session:
            session.add(
                VerificationPromptRow(
                    verification_id=prompt.verification_id,
                    attester_id=prompt.attester_id,
                    service_url=prompt.service_url,
                    conversation_id=prompt.conversation_id,
                    activity_id=prompt.activity_id,
                )
            )

    async def verification_prompts(self, verification_id: str) -> list[VerificationPrompt]:
        query = (
            select(VerificationPromptRow)
            .where(VerificationPromptRow.verification_id == verification_id)
            .order_by(VerificationPromptRow.id)
        )
        async with self._db.session() as session:
            return [
                VerificationPrompt(
                    row.verification_id, row.attester_id, row.service_url, row.conversation_id, row.activity_id
                )
                for row in (await session.scalars(query)).all()
            ]


def _values(verification: Verification) -> dict[str, object]:
    return {
        "id": verification.id,
        "kind": verification.kind.value,
        "method": verification.method.value,
        "state": verification.state.value,
        **requester_columns(verification.requester),
        "target_id": verification.target_id,
        "target_label": verification.target_label,
        "lifetime_minutes": verification.lifetime_minutes,
        "one_time": verification.one_time,
        "start_at": verification.start_at,
        "replace": verification.replace,
        "replace_method_id": verification.replace_method_id,
        "reason": verification.reason,
        "attester_ids": ",".join(verification.attester_ids),
        "attester_label": verification.attester_label,
        "created_at": verification.created_at,
        "expires_at": verification.expires_at,
        "settled_at": verification.settled_at,
        "settled_by_id": verification.settled_by_id,
        "settled_by": verification.settled_by,
        "score": verification.score,
        "detail": verification.detail,
        "progress": verification.progress,
        "external_ref": verification.external_ref,
        "external_url": verification.external_url,
        "used_at": verification.used_at,
        "used_for": verification.used_for,
        "timezone": verification.timezone,
        "card_service_url": verification.card_service_url,
        "card_conversation_id": verification.card_conversation_id,
        "card_activity_id": verification.card_activity_id,
    }


def _verification(row: VerificationRow) -> Verification:
    return Verification(
        id=row.id,
        kind=VerificationKind(row.kind),
        method=VerificationMethod(row.method),
        state=VerificationState(row.state),
        requester=requester_of(row),
        target_id=row.target_id,
        target_label=row.target_label,
        lifetime_minutes=row.lifetime_minutes,
        one_time=row.one_time,
        start_at=row.start_at,
        replace=row.replace,
        replace_method_id=row.replace_method_id,
        reason=row.reason,
        attester_ids=tuple(item for item in row.attester_ids.split(",") if item),
        attester_label=row.attester_label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        settled_at=row.settled_at,
        settled_by_id=row.settled_by_id,
        settled_by=row.settled_by,
        score=row.score,
        detail=row.detail,
        progress=row.progress,
        external_ref=row.external_ref,
        external_url=row.external_url,
        used_at=row.used_at,
        used_for=row.used_for,
        timezone=row.timezone,
        card_service_url=row.card_service_url,
        card_conversation_id=row.card_conversation_id,
        card_activity_id=row.card_activity_id,
    )
