"""Security alerts (issue 12 item 3): what the bot tells the security team about, through the `AlertSink` port.

The port is all the domain knows. Its implementation (an audit row, a structured log event with a stable `event`
field such as `tapbot.alert.not_them`, and a card in the security channel) lives at the edge. No alert ever holds a
pass value: its fields are who, for whom, when and a sentence.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


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
