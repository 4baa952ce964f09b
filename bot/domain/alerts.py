"""Security alerts (issue 12 item 3): what the bot tells the security team about, through the `AlertSink` port.

The port is all the domain knows. Its implementation (an audit row, a structured log event with a stable `event`
field such as `tapbot.alert.not_them`, and a card in the security channel) lives at the edge. No alert ever holds a
pass value: its fields are who, for whom, when and a sentence.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.ports import AuditLog

logger = logging.getLogger(__name__)


class AlertKind(enum.StrEnum):
    VERIFICATION_FAILED = "verification_failed"
    NOT_THEM = "not_them"
    VELOCITY = "velocity"
    PRIVILEGED_TARGET_REFUSED = "privileged_target_refused"
    PROTECTED_TARGET_REFUSED = "protected_target_refused"
    BULK_ABOVE_THRESHOLD = "bulk_above_threshold"


@dataclass(frozen=True)
class SecurityAlert:
    kind: AlertKind
    at: datetime
    actor_id: str
    actor_label: str
    target_id: str | None
    target_label: str | None
    summary: str  # one sentence for people to read; never a pass value


class AlertSink(Protocol):
    async def raise_alert(self, alert: SecurityAlert) -> None:
        """Records and publishes the alert; never raises (an alert that cannot be posted is still logged)."""
        ...


class AuditedAlertSink:
    """An alert as an audit row plus a structured log event (`event=tapbot.alert.<kind>`): what a SIEM reads from the
    logs. The security channel's poster (bot/teams/alert_channel.py) adds the card on top of this."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def raise_alert(self, alert: SecurityAlert) -> None:
        logger.warning(
            "security alert %s: %s",
            alert.kind.value,
            alert.summary,
            extra={
                "event": f"tapbot.alert.{alert.kind.value}",
                "alert_actor_id": alert.actor_id,
                "alert_target_id": alert.target_id,
            },
        )
        try:
            await self._audit.record(
                AuditEvent(
                    at=alert.at,
                    action=AuditAction.ALERT,
                    outcome=AuditOutcome.SUCCEEDED,
                    actor_id=alert.actor_id,
                    actor_name=alert.actor_label,
                    target_id=alert.target_id,
                    target_upn=alert.target_label,
                    rule=alert.kind.value,
                    detail=alert.summary[:2000],
                )
            )
        except Exception:
            logger.exception("could not audit security alert %s", alert.kind.value)
