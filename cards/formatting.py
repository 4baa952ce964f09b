"""How times and durations read on a card: the viewer's local time first, UTC beside it."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from bot.domain.eligibility import format_minutes

__all__ = ["format_minutes", "local_and_utc", "zone_name"]


def zone_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def local_and_utc(moment: datetime, tz: tzinfo) -> str:
    """'Thu 26 Nov 2026, 15:05 (Europe/Berlin) · 14:05 UTC'; the date is repeated for UTC when it differs."""
    local = moment.astimezone(tz)
    utc = moment.astimezone(UTC)
    local_text = f"{local:%a %d %b %Y, %H:%M} ({zone_name(tz)})"
    if zone_name(tz) in ("UTC", "Etc/UTC"):
        return f"{utc:%a %d %b %Y, %H:%M} UTC"
    utc_text = f"{utc:%H:%M} UTC" if utc.date() == local.date() else f"{utc:%a %d %b %Y, %H:%M} UTC"
    return f"{local_text} · {utc_text}"
