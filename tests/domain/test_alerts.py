"""The alert service and its triggers without I/O: what is recorded, what is posted, when nothing may break."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from bot.domain.alerts import (
    AlertKind,
    AlertService,
    RefusalAlerts,
    SecurityAlert,
    SecurityChannel,
    VelocityLimit,
)
from bot.domain.audit import AuditAction, AuditEvent, AuditOutcome
from bot.domain.model import Caller
from tests.fakes import ADELE, MEGAN, TENANT, FixedClock, MemoryAudit

ADELE_ID = ADELE.object_id

CALLER = Caller(ADELE_ID, TENANT, "Adele Vance")


@dataclass
class Channels:
    saved: list[SecurityChannel] = field(default_factory=list)
    broken: bool = False

    async def save_security_channel(self, channel: SecurityChannel) -> None:
        self.saved = [c for c in self.saved if c.tenant_id != channel.tenant_id] + [channel]

    async def security_channels(self) -> Sequence[SecurityChannel]:
        if self.broken:
            raise RuntimeError("database gone")
        return self.saved


@dataclass
class Poster:
    posted: list[tuple[str, AlertKind]] = field(default_factory=list)
    fails: bool = False

    async def post_alert(self, channel: SecurityChannel, alert: SecurityAlert) -> None:
        if self.fails:
            raise ConnectionError("Teams refused")
        self.posted.append((channel.conversation_id, alert.kind))


@dataclass
class Recorded:
    alerts: list[SecurityAlert] = field(default_factory=list)

    async def raise_alert(self, alert: SecurityAlert) -> None:
        self.alerts.append(alert)


@dataclass
class Counts:
    issued: int = 0
    alerts: int = 0
    asked: list[datetime] = field(default_factory=list)

    async def passes_issued_by(self, actor_id: str, since: datetime) -> int:
        self.asked.append(since)
        return self.issued

    async def alerts_raised(self, kind: str, actor_id: str, since: datetime) -> int:
        return self.alerts


def alert(kind: AlertKind = AlertKind.NOT_THEM, tenant: str | None = None) -> SecurityAlert:
    return SecurityAlert(kind, FixedClock().now(), ADELE_ID, "Adele Vance", MEGAN.object_id, MEGAN.label, "s.", tenant)


async def test_an_alert_is_audited_and_posted_to_the_registered_channel() -> None:
    audit, channels, poster = MemoryAudit(), Channels(), Poster()
    service = AlertService(audit=audit, channels=channels, clock=FixedClock(), poster=poster)
    await service.register_channel(CALLER, "https://smba/", "19:security")
    await service.raise_alert(alert())
    assert poster.posted == [("19:security", AlertKind.NOT_THEM)]
    assert [(e.action, e.outcome, e.rule) for e in audit.events] == [
        (AuditAction.ALERT, AuditOutcome.SUCCEEDED, None),  # the channel's registration
        (AuditAction.ALERT, AuditOutcome.SUCCEEDED, "not_them"),
    ]


async def test_an_alert_for_another_tenant_is_not_posted_in_this_ones_channel() -> None:
    channels, poster = Channels(), Poster()
    service = AlertService(audit=MemoryAudit(), channels=channels, clock=FixedClock(), poster=poster)
    await service.register_channel(CALLER, "https://smba/", "19:security")
    await service.raise_alert(alert(tenant="another-tenant"))
    assert poster.posted == []


@pytest.mark.parametrize("broken", ["poster", "channels"])
async def test_nothing_that_fails_after_the_audit_reaches_the_caller(broken: str) -> None:
    audit = MemoryAudit()
    channels = Channels(saved=[SecurityChannel("https://smba/", "19:s", TENANT, ADELE_ID, FixedClock().now())])
    channels.broken = broken == "channels"
    service = AlertService(audit=audit, channels=channels, clock=FixedClock(), poster=Poster(fails=broken == "poster"))
    await service.raise_alert(alert())  # does not raise
    assert [e.rule for e in audit.events] == ["not_them"]


@pytest.mark.parametrize(
    ("outcome", "rule", "kind"),
    [
        (AuditOutcome.REFUSED, "role_holder", AlertKind.PRIVILEGED_TARGET_REFUSED),
        (AuditOutcome.REFUSED, "protected_group", AlertKind.PROTECTED_TARGET_REFUSED),
        (AuditOutcome.REFUSED, "guest", None),
        (AuditOutcome.REFUSED, None, None),
        (AuditOutcome.FAILED, "role_holder", None),
    ],
)
async def test_only_refusals_for_privileged_or_protected_accounts_raise_an_alert(
    outcome: AuditOutcome, rule: str | None, kind: AlertKind | None
) -> None:
    inner, raised = MemoryAudit(), Recorded()
    audit = RefusalAlerts(inner, raised)
    event = AuditEvent(FixedClock().now(), AuditAction.ISSUE, outcome, ADELE_ID, "Adele Vance", MEGAN.object_id, "m")
    await audit.record(AuditEvent(**{**event.__dict__, "rule": rule}))
    assert len(inner.events) == 1, "recorded first, as before"
    assert [a.kind for a in raised.alerts] == ([kind] if kind else [])


async def test_velocity_alerts_once_per_window_and_counts_the_last_hour() -> None:
    clock, counts, raised = FixedClock(), Counts(issued=1), Recorded()
    limit = VelocityLimit(limit=2, counts=counts, alerts=raised, clock=clock)
    assert not await limit.exceeded(CALLER, MEGAN)
    assert counts.asked == [clock.now().replace(hour=12)]
    counts.issued = 2
    assert await limit.exceeded(CALLER, MEGAN)
    assert [a.kind for a in raised.alerts] == [AlertKind.VELOCITY]
    assert raised.alerts[0].tenant_id == TENANT and "limit 2" in raised.alerts[0].summary
    counts.alerts = 1  # the alert just raised is in the audit log now
    assert await limit.exceeded(CALLER, MEGAN)
    assert len(raised.alerts) == 1
