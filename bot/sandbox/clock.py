"""The sandbox's notion of "now", which tests and the control plane can move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SandboxClock:
    """UTC wall clock plus an offset that only grows.

    With ``frozen_at`` the clock stands still at that instant and moves only through
    :meth:`advance`, which makes expiry tests deterministic.
    """

    def __init__(self, frozen_at: datetime | None = None) -> None:
        if frozen_at is not None and frozen_at.tzinfo is None:
            raise ValueError("frozen_at must be timezone-aware")
        self._frozen_at = frozen_at
        self._offset = timedelta()

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        base = self._frozen_at if self._frozen_at is not None else datetime.now(UTC)
        return base.astimezone(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        self._offset = timedelta()


def parse_graph_datetime(text: str) -> datetime:
    """Parses an ISO 8601 date-time (or a bare date) and returns it in UTC; naive values count as UTC."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_graph_datetime(moment: datetime) -> str:
    """Formats like Graph does: UTC with a ``Z`` suffix, fractional seconds only when there are any."""
    utc = moment.astimezone(UTC)
    timespec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
