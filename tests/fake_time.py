"""A clock and sleep that only move when every task is waiting: time-based code tested without waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class FakeTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        entry = (self.now + max(0.0, seconds), wake)
        self._sleepers.append(entry)
        try:
            await wake
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    async def settle(self) -> None:
        """Lets every runnable task run until all of them wait (on fake time or on each other)."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def run(self, work: Awaitable[T], *, limit_s: float = 10_000.0) -> T:
        """Runs `work`, moving the clock to the next sleeper's wake-up whenever everything waits."""
        task = asyncio.ensure_future(work)
        deadline = self.now + limit_s
        while not task.done():
            await self.settle()
            if task.done():
                break
            if not self.advance_to_next():
                task.cancel()
                raise AssertionError("every task waits and nobody sleeps: a deadlock")
            if self.now > deadline:
                task.cancel()
                raise AssertionError(f"still running after {limit_s} fake seconds")
        return task.result()

    def advance_to_next(self) -> bool:
        """Moves to the earliest wake-up and wakes whoever is due; False when nobody sleeps."""
        live = [(at, wake) for at, wake in self._sleepers if not wake.done()]
        if not live:
            return False
        earliest = min(at for at, _ in live)
        self.now = max(self.now, earliest)
        for at, wake in live:
            if at <= self.now:
                wake.set_result(None)
        return True
