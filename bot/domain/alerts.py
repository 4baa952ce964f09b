"""Security alerts (issue 12 item 3): what the bot tells the security team about, through the `AlertSink` port.

The port is all the domain knows. `AlertService` implements it: an audit row, a structured log event with a stable
`event` field such as `tapbot.alert.not_them` (what a SIEM reads), and a card in the security channel that operators
registered with `/tap alerts here` (posted by the Teams edge, bot/teams/alert_channel.py, through `AlertPoster`). No
alert ever holds a pass value: its fields are who, for whom, when and a sentence.

Triggers raised here: `RefusalAlerts` (every audited refusal for a role holder or a protected account, whatever the
path: typed, form, button, approval, bulk row) and `VelocityLimit` (more passes by one operator in a rolling hour
than TAPBOT_VELOCITY_LIMIT, counted from the audit rows in SQL so every replica agrees). TapService raises
`undelivered_pass_live` itself when a pass whose card could not be shown could not be deleted either.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.errors import Rule
from bot.domain.model import Caller, DirectoryUser
from bot.domain.ports import AuditLog, Clock

logger = logging.getLogger(__name__)


class AlertKind(enum.StrEnum):
    VERIFICATION_FAILED = "verification_failed"
    NOT_THEM = "not_them"
    VELOCITY = "velocity"
    PRIVILEGED_TARGET_REFUSED = "privileged_target_refused"
    PROTECTED_TARGET_REFUSED = "protected_target_refused"
    BULK_ABOVE_THRESHOLD = "bulk_above_threshold"
    UNDELIVERED_PASS_LIVE = "undelivered_pass_live"  # a pass nobody was shown could not be deleted: it is live


@dataclass(frozen=True)
class SecurityAlert:
    kind: AlertKind
    at: datetime
    actor_id: str
    actor_label: str
    target_id: str | None
    target_label: str | None
    summary: str  # one sentence for people to read; never a pass value
    tenant_id: str | None = None  # whose security channel; None: every registered one (one tenant in practice)


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
        logger.warning("security alert %s: %s", alert.kind.value, alert.summary, extra=log_fields(alert))
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


def log_fields(alert: SecurityAlert) -> dict[str, object]:
    """The structured fields of an alert's log event (JSON fields in production logs): stable names a SIEM rule can
    match on. Ids and labels only; the summary is the same sentence people read, never a pass value."""
    return {
        "event": f"tapbot.alert.{alert.kind.value}",
        "alert_kind": alert.kind.value,
        "alert_at": alert.at.isoformat(),
        "alert_actor_id": alert.actor_id,
        "alert_actor": alert.actor_label,
        "alert_target_id": alert.target_id,
        "alert_target": alert.target_label,
    }


# --- the security channel ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityChannel:
    """The channel operators registered with `/tap alerts here`: alerts are posted there."""

    service_url: str
    conversation_id: str
    tenant_id: str
    registered_by: str
    registered_at: datetime


class SecurityChannelStore(Protocol):
    async def save_security_channel(self, channel: SecurityChannel) -> None: ...

    async def security_channels(self) -> Sequence[SecurityChannel]: ...


class AlertPoster(Protocol):
    """The Teams edge: posts an alert's card to a channel; raises whatever went wrong (the service logs it)."""

    async def post_alert(self, channel: SecurityChannel, alert: SecurityAlert) -> None: ...


class AlertService:
    """The `AlertSink`: audit row and log event always, then the card in the security channel when one is
    registered. Nothing here raises: an alert that cannot be posted never breaks the command that raised it."""

    def __init__(
        self, *, audit: AuditLog, channels: SecurityChannelStore, clock: Clock, poster: AlertPoster | None = None
    ) -> None:
        self._recorded = AuditedAlertSink(audit)
        self._audit = audit
        self._channels = channels
        self._clock = clock
        self._poster = poster

    def post_with(self, poster: AlertPoster) -> None:
        """The Teams edge is built after the domain; it plugs its poster in here."""
        self._poster = poster

    async def raise_alert(self, alert: SecurityAlert) -> None:
        await self._recorded.raise_alert(alert)
        try:
            channels = [
                channel
                for channel in await self._channels.security_channels()
                if alert.tenant_id is None or channel.tenant_id.lower() == alert.tenant_id.lower()
            ]
        except Exception:
            logger.exception("could not read the security channel for alert %s", alert.kind.value)
            return
        if not channels:
            logger.info(
                "no security channel registered: alert %s is in the audit log and this log only",
                alert.kind.value,
                extra={"event": f"tapbot.alert.{alert.kind.value}.unposted"},
            )
            return
        for channel in channels:
            await self._post(channel, alert)

    async def _post(self, channel: SecurityChannel, alert: SecurityAlert) -> None:
        if self._poster is None:
            return
        try:
            await self._poster.post_alert(channel, alert)
        except Exception as failure:  # the alert is audited and logged already; the command goes on
            logger.warning(
                "could not post alert %s to the security channel: %s",
                alert.kind.value,
                type(failure).__name__,
                extra={"event": f"tapbot.alert.{alert.kind.value}.unposted"},
            )

    async def register_channel(self, operator: Caller, service_url: str, conversation_id: str) -> SecurityChannel:
        """Called once an operator typed `/tap alerts here` in a channel (the caller checked the role)."""
        channel = SecurityChannel(
            service_url=service_url,
            conversation_id=conversation_id,
            tenant_id=operator.tenant_id.lower(),
            registered_by=operator.object_id,
            registered_at=self._clock.now(),
        )
        await self._channels.save_security_channel(channel)
        await self._audit.record(
            AuditEvent(
                at=channel.registered_at,
                action=AuditAction.ALERT,
                outcome=AuditOutcome.SUCCEEDED,
                actor_id=operator.object_id,
                actor_name=operator.display_name,
                detail=f"security channel set: {conversation_id}",
            )
        )
        return channel

    async def registration_refused(self, caller: Caller, rule: Rule) -> None:
        """Someone who may not tried `/tap alerts here`: audited like every refusal."""
        await self._audit.record(
            AuditEvent(
                at=self._clock.now(),
                action=AuditAction.ALERT,
                outcome=AuditOutcome.REFUSED,
                actor_id=caller.object_id,
                actor_name=caller.display_name,
                rule=rule.value,
                detail="security channel not set: the caller may not",
            )
        )


# --- triggers ---------------------------------------------------------------------------------------------------

REFUSAL_ALERTS = {
    Rule.ROLE_HOLDER.value: AlertKind.PRIVILEGED_TARGET_REFUSED,
    Rule.PROTECTED_GROUP.value: AlertKind.PROTECTED_TARGET_REFUSED,
}


class RefusalAlerts:
    """The audit log, raising an alert for every refusal it records for a role holder or a protected account.

    Every path audits its refusals (typed command, form, replace button, approval decision, bulk row at its write),
    so wrapping the log is what makes the alert hold on every path, including ones added later.
    """

    def __init__(self, audit: AuditLog, alerts: AlertSink) -> None:
        self._audit = audit
        self._alerts = alerts

    async def record(self, event: AuditEvent) -> None:
        await self._audit.record(event)
        kind = REFUSAL_ALERTS.get(event.rule or "") if event.outcome is AuditOutcome.REFUSED else None
        if kind is not None:
            await self._alerts.raise_alert(refusal_alert(kind, event))


def refusal_alert(kind: AlertKind, event: AuditEvent) -> SecurityAlert:
    who = event.actor_name or event.actor_id
    whom = event.target_upn or event.target_id or "an account"
    what = (
        "a privileged account (directory role holder)"
        if kind is AlertKind.PRIVILEGED_TARGET_REFUSED
        else ("a protected account (break-glass or service account group)")
    )
    return SecurityAlert(
        kind=kind,
        at=event.at,
        actor_id=event.actor_id,
        actor_label=event.actor_name,
        target_id=event.target_id,
        target_label=event.target_upn,
        summary=f"{who} was refused a Temporary Access Pass ({event.action.value}) for {whom}: {what}.",
    )


class IssuedPassCounts(Protocol):
    """Read from the audit rows in SQL, so every replica counts the same passes and alerts."""

    async def passes_issued_by(self, actor_id: str, since: datetime) -> int:
        """Passes this person created (single, approved or bulk rows) at or after `since`."""
        ...

    async def alerts_raised(self, kind: str, actor_id: str, since: datetime) -> int:
        """Alerts of this kind about this person at or after `since`."""
        ...


VELOCITY_WINDOW = timedelta(hours=1)
DEFAULT_VELOCITY_LIMIT = 20


class VelocityLimit:
    """More than `limit` passes by one operator in a rolling hour: the pass that would exceed it raises an alert
    (once per window) and it, and every further single pass of that operator, waits for a second operator until
    fewer than `limit` passes remain in the last hour."""

    def __init__(self, *, limit: int, counts: IssuedPassCounts, alerts: AlertSink, clock: Clock) -> None:
        self.limit = limit
        self._counts = counts
        self._alerts = alerts
        self._clock = clock

    async def issued_in_window(self, caller: Caller) -> int:
        """The passes this operator created in the last hour (what `exceeded` compares with the limit)."""
        return await self._counts.passes_issued_by(caller.object_id, self._clock.now() - VELOCITY_WINDOW)

    async def exceeded(self, caller: Caller, user: DirectoryUser, *, issued: int | None = None) -> bool:
        """Whether this operator's next pass needs a second operator; raises the window's alert the first time.

        `issued`: `issued_in_window` as the caller read it moments ago (TapService reads it with the user's lock, in
        the same transaction); None reads it now."""
        now = self._clock.now()
        since = now - VELOCITY_WINDOW
        if issued is None:
            issued = await self._counts.passes_issued_by(caller.object_id, since)
        if issued < self.limit:
            return False
        if not await self._counts.alerts_raised(AlertKind.VELOCITY.value, caller.object_id, since):
            who = caller.display_name or caller.object_id
            await self._alerts.raise_alert(
                SecurityAlert(
                    kind=AlertKind.VELOCITY,
                    at=now,
                    actor_id=caller.object_id,
                    actor_label=caller.display_name,
                    target_id=user.object_id,
                    target_label=user.label,
                    summary=f"{who} issued {issued} Temporary Access Passes in the last hour (limit {self.limit}) "
                    f"and asked for another, for {user.label}: further single passes by {who} need a second "
                    "operator's approval until the hour clears.",
                    tenant_id=caller.tenant_id,
                )
            )
        return True
