"""The security alert card, posted to the security channel (`/tap alerts here`). Never a pass value: who, for
whom, when, and the alert's sentence."""

from __future__ import annotations

from datetime import tzinfo

from bot.domain.alerts import AlertKind, SecurityAlert
from cards.formatting import local_and_utc
from cards.passes import CardJson, facts, heading, render, sentence

ALERT_TITLES = {
    AlertKind.VERIFICATION_FAILED: "Verification of a person failed",
    AlertKind.NOT_THEM: "A manager said: this is not them",
    AlertKind.VELOCITY: "Unusually many passes from one operator",
    AlertKind.PRIVILEGED_TARGET_REFUSED: "Pass refused for a privileged account",
    AlertKind.PROTECTED_TARGET_REFUSED: "Pass refused for a protected account",
    AlertKind.BULK_ABOVE_THRESHOLD: "Large bulk run started",
    AlertKind.UNDELIVERED_PASS_LIVE: "A pass nobody was shown is still live",
}


def alert_card(alert: SecurityAlert, *, tz: tzinfo) -> CardJson:
    pairs = [("Who", _person(alert.actor_label, alert.actor_id))]
    if alert.target_id or alert.target_label:
        pairs.append(("For", _person(alert.target_label or "", alert.target_id or "")))
    pairs += [("When", local_and_utc(alert.at, tz)), ("Alert", f"tapbot.alert.{alert.kind.value}")]
    return render(
        heading(f"Security alert: {ALERT_TITLES[alert.kind]}"),
        sentence(alert.summary),
        facts(*pairs),
        sentence("Details are in the audit log (/tap audit export) and in the bot's logs.", subtle=True),
    )


def _person(label: str, object_id: str) -> str:
    if label and object_id and label != object_id:
        return f"{label} ({object_id})"
    return label or object_id
