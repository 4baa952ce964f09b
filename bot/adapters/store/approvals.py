"""Approval requests and their decisions, and the channel each tenant's approvers registered. Never a pass."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from bot.adapters.store.schema import ApprovalRow, ApprovalsChannelRow, requester_columns, requester_of
from bot.adapters.store.sessions import SqlDatabase, changed_one
from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalsChannel, ApprovalStatus


class SqlApprovals:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_approval(self, request: ApprovalRequest) -> None:
        async with self._db.session() as session:
            session.add(ApprovalRow(**_approval_values(request)))

    async def approval(self, request_id: str) -> ApprovalRequest | None:
        async with self._db.session() as session:
            row = await session.get(ApprovalRow, request_id)
            return _approval(row) if row else None

    async def settle_approval(self, decided: ApprovalRequest) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(ApprovalRow)
                .where(ApprovalRow.id == decided.id, ApprovalRow.status == ApprovalStatus.PENDING.value)
                .values(
                    status=decided.status.value,
                    decided_by_id=decided.decided_by_id,
                    decided_by_name=decided.decided_by_name,
                    decided_at=decided.decided_at,
                    decision_note=decided.decision_note,
                )
            )
            return changed_one(result)

    async def reopen_approval(self, decided: ApprovalRequest) -> bool:
        async with self._db.session() as session:
            result = await session.execute(
                update(ApprovalRow)
                .where(
                    ApprovalRow.id == decided.id,
                    ApprovalRow.status == decided.status.value,
                    ApprovalRow.decided_by_id == decided.decided_by_id,
                )
                .values(
                    status=ApprovalStatus.PENDING.value,
                    decided_by_id=None,
                    decided_by_name=None,
                    decided_at=None,
                    decision_note="",
                )
            )
            return changed_one(result)

    async def set_approval_card(
        self, request_id: str, service_url: str, conversation_id: str, activity_id: str
    ) -> None:
        async with self._db.session() as session:
            await session.execute(
                update(ApprovalRow)
                .where(ApprovalRow.id == request_id)
                .values(
                    card_service_url=service_url, card_conversation_id=conversation_id, card_activity_id=activity_id
                )
            )

    async def set_approval_timezone(self, request_id: str, timezone: str) -> None:
        async with self._db.session() as session:
            await session.execute(update(ApprovalRow).where(ApprovalRow.id == request_id).values(timezone=timezone))

    async def pending_approvals(self, now: datetime) -> list[ApprovalRequest]:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.status == ApprovalStatus.PENDING.value, ApprovalRow.expires_at > now)
            .order_by(ApprovalRow.created_at, ApprovalRow.id)
        )
        async with self._db.session() as session:
            return [_approval(row) for row in (await session.scalars(query)).all()]

    async def approvals_of(self, requester_id: str, since: datetime) -> list[ApprovalRequest]:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.requester_id == requester_id, ApprovalRow.created_at >= since)
            .order_by(ApprovalRow.created_at.desc(), ApprovalRow.id.desc())
        )
        async with self._db.session() as session:
            return [_approval(row) for row in (await session.scalars(query)).all()]

    async def overdue_approvals(self, now: datetime) -> list[ApprovalRequest]:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.status == ApprovalStatus.PENDING.value, ApprovalRow.expires_at <= now)
            .order_by(ApprovalRow.expires_at, ApprovalRow.id)
        )
        async with self._db.session() as session:
            return [_approval(row) for row in (await session.scalars(query)).all()]

    async def save_approvals_channel(self, channel: ApprovalsChannel) -> None:
        async with self._db.session() as session:
            await session.execute(self._db.upsert(ApprovalsChannelRow, dict(channel.__dict__)))

    async def approvals_channel(self, tenant_id: str) -> ApprovalsChannel | None:
        async with self._db.session() as session:
            row = await session.get(ApprovalsChannelRow, tenant_id)
            if row is None:
                return None
            return ApprovalsChannel(
                row.service_url, row.conversation_id, row.tenant_id, row.registered_by, row.registered_at
            )


def _approval_values(request: ApprovalRequest) -> dict[str, object]:
    return {
        "id": request.id,
        "kind": request.kind.value,
        "status": request.status.value,
        **requester_columns(request.requester),
        "target_id": request.target_id,
        "target_label": request.target_label,
        "start_at": request.start_at,
        "lifetime_minutes": request.lifetime_minutes,
        "one_time": request.one_time,
        "reason": request.reason,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "decided_by_id": request.decided_by_id,
        "decided_by_name": request.decided_by_name,
        "decided_at": request.decided_at,
        "decision_note": request.decision_note,
        "card_service_url": request.card_service_url,
        "card_conversation_id": request.card_conversation_id,
        "card_activity_id": request.card_activity_id,
        "timezone": request.timezone,
        "request_reason": request.request_reason,
        "verification_id": request.verification_id,
    }


def _approval(row: ApprovalRow) -> ApprovalRequest:
    return ApprovalRequest(
        id=row.id,
        kind=ApprovalKind(row.kind),
        requester=requester_of(row),
        target_id=row.target_id,
        target_label=row.target_label,
        start_at=row.start_at,
        lifetime_minutes=row.lifetime_minutes,
        one_time=row.one_time,
        reason=row.reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=ApprovalStatus(row.status),
        decided_by_id=row.decided_by_id,
        decided_by_name=row.decided_by_name,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        card_conversation_id=row.card_conversation_id,
        card_activity_id=row.card_activity_id,
        card_service_url=row.card_service_url,
        timezone=row.timezone,
        request_reason=row.request_reason,
        verification_id=row.verification_id,
    )
