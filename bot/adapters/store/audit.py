"""The audit log in SQL: append-only (the migrations add triggers that refuse UPDATE and DELETE)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, literal_column, or_, select

from bot.adapters.store.schema import AuditRow
from bot.adapters.store.sessions import SqlDatabase
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.records import AuditEntry

_RECORD = insert(AuditRow)  # built once: every command writes a row (sessions.py `connection`)
_COLUMNS = tuple(column.key for column in AuditRow.__table__.columns if column.key != "id")


def _one_of(actions: tuple[AuditAction, ...]) -> ColumnElement[bool]:
    """`action IN ('issue', ...)` with the constants written into the SQL: a list of bound values would be expanded
    into the statement's text again on every execution."""
    return AuditRow.action.in_([literal_column(f"'{action.value}'") for action in actions])


_CREATIONS = _one_of((AuditAction.ISSUE, AuditAction.ONBOARD))
_PASS_WRITES = _one_of((AuditAction.ISSUE, AuditAction.ONBOARD, AuditAction.REVOKE))
# The row recording the pass's creation; 0 when there is none, so that every later write counts.
_CREATION_ROW = func.coalesce(
    select(func.min(AuditRow.id))
    .where(
        AuditRow.pass_method_id == bindparam("pass_method_id"),
        _CREATIONS,
        AuditRow.outcome == AuditOutcome.SUCCEEDED.value,
    )
    .scalar_subquery(),
    0,
)
# Built once: every pass delivered asks it (TapService.still_current). A revoke naming the pass counts whoever's
# row it is: a bulk job's revoke rows carry the pass but not the user.
_WRITE_SINCE_CREATION = (
    select(AuditRow.id)
    .where(
        or_(
            and_(
                AuditRow.action == AuditAction.REVOKE.value,
                AuditRow.pass_method_id == bindparam("pass_method_id"),
            ),
            and_(AuditRow.target_id == bindparam("user_id"), _PASS_WRITES, AuditRow.id > _CREATION_ROW),
        ),
    )
    .limit(1)
)


class SqlAuditLog:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def record(self, event: AuditEvent) -> None:
        # A None leaves the column to its default, as the ORM did when it added the row.
        values = {name: value for name in _COLUMNS if (value := getattr(event, name)) is not None}
        values["action"] = event.action.value
        values["outcome"] = event.outcome.value
        async with self._db.connection() as connection:
            await connection.execute(_RECORD, values)

    async def may_have_ended(self, user_id: str, pass_method_id: str) -> bool:
        """Whether the log records a write that may have ended this pass since its creation: an issue, onboarding
        or revoke for the same user after the row of its creation (whatever its outcome), or a revoke naming it.

        Creates are recorded while the user's lock is held (TapService.target_lock), so the rows of a user's issues
        follow one another in id order as long as the lock did not run out (its holder knows: `unlock_target`). A
        revoke takes no lock, and its row may come before the creation row of the pass it deleted, hence "a revoke
        naming it" at any id, whatever user its row names (a bulk job's revoke rows name the pass, not the user)."""
        values = {"user_id": user_id, "pass_method_id": pass_method_id}
        async with self._db.connection() as connection:
            return (await connection.execute(_WRITE_SINCE_CREATION, values)).first() is not None

    async def audit_rows(self, since: datetime | None = None) -> list[AuditEntry]:
        query = select(AuditRow).order_by(AuditRow.id)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        async with self._db.session() as session:
            return [_entry(row) for row in (await session.scalars(query)).all()]

    async def reason_for_pass(self, pass_method_id: str) -> str | None:
        """The reason the pass was created with: the newest successful issue or onboarding row naming it."""
        query = (
            select(AuditRow.reason)
            .where(
                AuditRow.pass_method_id == pass_method_id,
                AuditRow.action.in_((AuditAction.ISSUE.value, AuditAction.ONBOARD.value)),
                AuditRow.outcome == AuditOutcome.SUCCEEDED.value,
            )
            .order_by(AuditRow.id.desc())
            .limit(1)
        )
        async with self._db.session() as session:
            return (await session.scalars(query)).first()


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        action=row.action,
        outcome=row.outcome,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        target_id=row.target_id,
        target_upn=row.target_upn,
        lifetime_minutes=row.lifetime_minutes,
        start_at=row.start_at,
        one_time=row.one_time,
        pass_method_id=row.pass_method_id,
        graph_request_id=row.graph_request_id,
        rule=row.rule,
        detail=row.detail,
        reason=row.reason,
        verification_id=row.verification_id,
        evidence_method=row.evidence_method,
        evidence_by_id=row.evidence_by_id,
        evidence_by=row.evidence_by,
        evidence_at=row.evidence_at,
        evidence_score=row.evidence_score,
    )
