"""A per-app sliding-window request budget, answering the way Graph throttles (429 + Retry-After)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RequestBudget:
    def __init__(self, limit: int | None, window_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._monotonic = monotonic
        self._admitted_at: deque[float] = deque()
        self.peak_usage = 0

    def admit(self) -> int | None:
        """Records a request; returns None when admitted, else the whole seconds to wait (Retry-After)."""
        now = self._monotonic()
        while self._admitted_at and self._admitted_at[0] <= now - self.window_s:
            self._admitted_at.popleft()
        if self.limit is not None and len(self._admitted_at) >= self.limit:
            # Graph sends whole seconds, and kiota cannot parse fractional ones.
            return max(1, math.ceil(self._admitted_at[0] + self.window_s - now))
        self._admitted_at.append(now)
        self.peak_usage = max(self.peak_usage, len(self._admitted_at))
        return None

    def usage(self) -> int:
        now = self._monotonic()
        return sum(1 for moment in self._admitted_at if moment > now - self.window_s)

    def reset(self) -> None:
        self._admitted_at.clear()
        self.peak_usage = 0
