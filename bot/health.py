"""Readiness: can this replica serve a turn right now? The database answers, and Microsoft Graph answers a read.

`/healthz` (liveness) checks nothing outside the process; `/readyz` runs these probes, each with a short timeout,
so a load balancer sends no traffic to a replica that cannot reach its database or Graph. The answers say which
dependency failed and how, but never echo a database error's text (it may name hosts and users): that goes to the log.

`/readyz` needs no token, so whoever reaches it must not be able to spend the bot's Graph budget or its database
connections: `ReadinessCache` answers from the last check for `READY_CACHE_SECONDS` and runs at most one check at a
time (callers arriving meanwhile wait for that one). However many requests arrive, a replica reads Graph at most once
per window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from bot.domain.errors import TapError
from bot.domain.model import TapPolicy

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 5.0
READY_CACHE_SECONDS = 10.0


class Pingable(Protocol):
    async def ping(self) -> None: ...


class PolicyReader(Protocol):
    async def tap_policy(self) -> TapPolicy: ...


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str
    milliseconds: int


@dataclass(frozen=True)
class Readiness:
    probes: tuple[Probe, ...]

    @property
    def ready(self) -> bool:
        return all(probe.ok for probe in self.probes)

    def document(self) -> dict[str, object]:
        """The JSON answer of /readyz."""
        body: dict[str, object] = {
            "status": "ready" if self.ready else "not ready",
            "checks": [asdict(probe) for probe in self.probes],
        }
        if not self.ready:
            body["failed"] = [probe.name for probe in self.probes if not probe.ok]
        return body


async def check_readiness(store: Pingable, graph: PolicyReader, *, timeout: float = READY_TIMEOUT_SECONDS) -> Readiness:
    """Both probes at once, each bounded by `timeout`."""
    probes = await asyncio.gather(
        _probe("database", _database(store), timeout),
        _probe("graph", _graph(graph), timeout),
    )
    return Readiness(tuple(probes))


class ReadinessCache:
    """The last readiness answer, reused for `seconds`; one check at a time (single flight)."""

    def __init__(
        self,
        seconds: float = READY_CACHE_SECONDS,
        *,
        timeout: float = READY_TIMEOUT_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.timeout = timeout
        self._monotonic = monotonic
        self._last: tuple[float, Readiness] | None = None
        self._running: asyncio.Future[Readiness] | None = None
        self.checks = 0
        """How many real checks ran (each reads Graph once and the database once)."""

    async def check(self, store: Pingable, graph: PolicyReader) -> Readiness:
        if self._last is not None and self._monotonic() - self._last[0] < self.seconds:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._check(store, graph))
        # shield: a caller that hangs up does not cancel the check the others wait for
        return await asyncio.shield(self._running)

    async def _check(self, store: Pingable, graph: PolicyReader) -> Readiness:
        try:
            self.checks += 1
            readiness = await check_readiness(store, graph, timeout=self.timeout)
            self._last = (self._monotonic(), readiness)
            return readiness
        finally:
            self._running = None


async def _database(store: Pingable) -> str:
    await store.ping()
    return "answered SELECT 1"


async def _graph(graph: PolicyReader) -> str:
    policy = await graph.tap_policy()
    return f"read the Temporary Access Pass policy ({'enabled' if policy.enabled else 'disabled'})"


async def _probe(name: str, work: Awaitable[str], timeout: float) -> Probe:
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        detail = await asyncio.wait_for(work, timeout)
    except TimeoutError:
        logger.warning("readiness: %s did not answer within %s s", name, timeout, extra={"probe": name})
        return Probe(name, False, f"no answer within {timeout:g} s", elapsed())
    except TapError as error:
        logger.warning("readiness: %s failed: %s", name, error.user_message, extra={"probe": name})
        return Probe(name, False, error.user_message, elapsed())
    except Exception as error:
        logger.warning("readiness: %s failed", name, exc_info=True, extra={"probe": name})
        return Probe(name, False, f"failed ({type(error).__name__}); see the log", elapsed())
    return Probe(name, True, detail, elapsed())
