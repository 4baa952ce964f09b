"""Adaptive concurrency for bulk work: grow while Graph keeps up, halve and pause when it throttles.

Additive increase, multiplicative decrease (as TCP does): Graph's real budget depends on the tenant's size, the
other apps in it and costs the bot cannot see, so the bot learns the rate from the 429s it gets instead of
assuming a constant.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class AdaptiveLimiter:
    def __init__(
        self,
        *,
        initial: int = 4,
        minimum: int = 1,
        maximum: int = 64,
        increase_every: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = initial
        self._minimum = minimum
        self._maximum = maximum
        self._increase_every = increase_every
        self._in_flight = 0
        self._successes = 0
        self._paused_until = 0.0
        self._clock = clock
        self._changed = asyncio.Condition()
        self.peak = initial
        self.throttled = 0

    @property
    def limit(self) -> int:
        return self._limit

    async def acquire(self) -> None:
        async with self._changed:
            while True:
                wait = self._paused_until - self._clock()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), wait)
                    continue
                if self._in_flight < self._limit:
                    self._in_flight += 1
                    return
                await self._changed.wait()

    async def release(self, *, throttled_for: float | None = None) -> None:
        """Ends one request; `throttled_for` is Graph's Retry-After when it answered 429."""
        async with self._changed:
            self._in_flight -= 1
            if throttled_for is not None:
                self.throttled += 1
                self._limit = max(self._minimum, self._limit // 2)
                self._successes = 0
                self._paused_until = max(self._paused_until, self._clock() + max(throttled_for, 0.0))
            else:
                self._successes += 1
                if self._successes >= self._increase_every and self._limit < self._maximum:
                    self._limit += 1
                    self._successes = 0
                    self.peak = max(self.peak, self._limit)
            self._changed.notify_all()
