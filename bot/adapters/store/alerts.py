"""The security channel (`/tap alerts here`) and the counts the velocity limit reads from the audit rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select

from bot.adapters.store.schema import AuditRow, SecurityChannelRow
from bot.adapters.store.sessions import SqlDatabase
from bot.domain.alerts import SecurityChannel
from bot.domain.audit import AuditAction, AuditOutcome

# Built once: the velocity limit counts before every typed pass (sessions.py `connection`).
_PASSES_ISSUED_BY = (
    select(func.count())
    .select_from(AuditRow)
    .where(
        AuditRow.actor_id == bindparam("actor_id"),
        AuditRow.at >= bindparam("since"),
        AuditRow.action == AuditAction.ISSUE.value,
        AuditRow.outcome == AuditOutcome.SUCCEEDED.value,
        AuditRow.pass_method_id.is_not(None),
    )
)


class SqlSecurityAlerts:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_security_channel(self, channel: SecurityChannel) -> None:
        async with self._db.session() as session:
            await session.execute(self._db.upsert(SecurityChannelRow, dict(channel.__dict__)))

    async def security_channels(self) -> list[SecurityChannel]:
        async with self._db.session() as session:
            rows = (await session.scalars(select(SecurityChannelRow).order_by(SecurityChannelRow.tenant_id))).all()
            return [
                SecurityChannel(
                    row.service_url, row.conversation_id, row.tenant_id, row.registered_by, row.registered_at
                )
                for row in rows
            ]

    async def passes_issued_by(self, actor_id: str, since: datetime) -> int:
        """Every pass this person created since then: typed, approved and bulk rows are all issue rows."""
        async with self._db.connection() as connection:
            counted = await connection.scalar(_PASSES_ISSUED_BY, {"actor_id": actor_id, "since": since})
        return int(counted or 0)

    async def alerts_raised(self, kind: str, actor_id: str, since: datetime) -> int:
        return await self._count(
            AuditRow.action == AuditAction.ALERT.value, AuditRow.rule == kind, actor_id=actor_id, since=since
        )

    async def _count(self, *conditions: object, actor_id: str, since: datetime) -> int:
        query = (
            select(func.count())
            .select_from(AuditRow)
            .where(AuditRow.actor_id == actor_id, AuditRow.at >= since, *conditions)  # type: ignore[arg-type]
        )
        async with self._db.session() as session:
            return int((await session.scalar(query)) or 0)
