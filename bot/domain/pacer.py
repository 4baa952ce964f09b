"""Pacing Graph requests: each is admitted against every limit it counts toward, interactive commands first.

Graph limits identity-and-access requests along several dimensions at once (resource units and writes per app and
tenant, writes per tenant) and publishes them; for authentication-method endpoints it publishes none. So a
dimension either has a published quota, which the pacer fills up to a share of (BULK_SHARE for bulk work, all of it
for a technician's command), or an unknown one that it learns from Graph's answers:

- a 429 names its dimension (`x-ms-throttle-scope`) or, unscoped, concerns the unpublished dimensions the request
  counted toward; its `Retry-After` closes those dimensions to everyone until then, and the number of requests
  the pacer had admitted in the window just before the refused one becomes the dimension's learned limit;
- `x-ms-throttle-limit-percentage` (sent above 0.8 of a limit) saying Graph sees more of the limit used than this
  process admitted — another replica of the bot, or a smaller tenant than assumed — lowers the limit so that this
  process's own use stands at that share;
- an unpublished dimension is approached evenly (not in bursts) from a guess that grows with every request Graph
  accepts (slow start; bulk lane only, the interactive lane is not held to a guess) until its first 429;
  a learned limit creeps back up by about 5 % every PROBE_WINDOWS windows of accepted requests.

Two lanes: a request waits in its lane until every dimension it counts toward has room. Interactive requests go
first: a bulk request never takes room an interactive one is waiting for, and bulk work stops taking new rows
while its own lane has a backlog, while Graph said to wait, and (down to a trickle) while technicians are at work
(`ready`): their commands share the bot's CPU and database with the job too. The lane is carried by a context
variable (`lane(...)`), so the domain says which work is bulk and the Graph adapter reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum


class Lane(Enum):
    INTERACTIVE = "interactive"
    BULK = "bulk"


_LANE: ContextVar[Lane] = ContextVar("tapbot_graph_lane", default=Lane.INTERACTIVE)


def current_lane() -> Lane:
    return _LANE.get()


@contextmanager
def lane(which: Lane) -> Iterator[None]:
    """Graph requests made inside (and in tasks started inside) go through `which` lane."""
    token = _LANE.set(which)
    try:
        yield
    finally:
        _LANE.reset(token)


# Bulk work fills a published limit up to this share; the rest is the technicians' (and the slack for requests in
# flight, whose arrival order at Graph may differ from their admission order here).
BULK_SHARE = 0.95
# Graph's tightest documented identity limit is 5 requests per 10 s (identity reports); a 429 after fewer requests
# than this in the window is not explained by this process's rate: Retry-After is honoured, nothing is learned.
MIN_LEARNED = 5
# Before its first 429, an unpublished dimension's bulk guess grows by this many requests per window for every
# request Graph accepts: doubling about every window_s / SLOW_START_GAIN seconds while bulk work waits for it (1 s
# for the 10-s windows). The first 429 then refuses about the requests in flight at that rate: with bench.bulk_issue's
# tight limit of 20 creations per 10 s and 150 ms per request, 2 requests at a gain of 5, 4 at 10, 6 at 20 (2.2 % of
# a 100-row job's requests); a 1,000-row job lost about 5 s of its first 25 to the ramp at 5.
SLOW_START_GAIN = 10.0
PROBE_WINDOWS = 6  # a learned limit grows by about 5 % (at least 1) per this many windows of accepted requests
LEARNED_DECREASE = 0.9
PROBE_GROWTH = 0.05
# x-ms-throttle-limit-percentage is "returned only when the application consumed more than 0.8 of its limit".
LIMIT_PERCENTAGE_THRESHOLD = 0.8
MAX_NAP_SECONDS = 1.0  # a waiter looks again at least this often, even if nothing told it to
BULK_BACKLOG = 2  # bulk work starts no new row while this many of its requests wait for admission
# While technicians are at work (a request of theirs in flight, or admitted within TECHNICIANS_QUIET_S), bulk work
# starts a new row only with fewer than this many of its requests in flight: the bot's own CPU and database are
# shared too, and a job of thousands of rows must not make a single command slow.
BULK_IN_FLIGHT_WHILE_BUSY = 2
TECHNICIANS_QUIET_S = 1.0
# ... and at most this many new rows a second. Requests in flight say little when Graph answers fast: measured with
# 50 technicians at work, a job kept starting ~85 rows a second and their p99 grew from 0.7-1.0 s to 1.4-2.3 s; at
# 10-25 rows a second it stayed that of the technicians alone.
BULK_ROWS_PER_SECOND_WHILE_BUSY = 20.0
_INSTANT = 1e-6  # a wait shorter than this is none (a clock's rounding must not keep a row waiting)


@dataclass(frozen=True)
class Limit:
    name: str
    window_s: float
    published: int | None = None
    """The documented quota per window; None: Graph publishes none, the pacer learns it."""
    bulk_start: int | None = 20
    """Unpublished only: the bulk lane's first guess per window, before any 429 (None: no guess, as for a
    technician's requests)."""
    reported: bool = False
    """Whether Graph's x-ms-throttle-limit-percentage speaks of this limit (the app's own quotas)."""


class Dimension:
    """One limit as this process sees it: what it admitted in the window, what it learned, when it may go on."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._entries: deque[tuple[float, int]] = deque()
        self._used = 0
        self.learned: float | None = None
        self.guess = None if limit.bulk_start is None else float(limit.bulk_start)
        self.blocked_until = 0.0
        self._last_admitted: float | None = None

    @property
    def name(self) -> str:
        return self.limit.name

    def used(self, now: float) -> int:
        window = self.limit.window_s
        while self._entries and self._entries[0][0] <= now - window:
            self._used -= self._entries.popleft()[1]
        return self._used

    def ceiling(self) -> float | None:
        """The limit the pacer believes in: published, lowered by what Graph said; None while unknown."""
        published = self.limit.published
        if published is None:
            return self.learned
        return published if self.learned is None else min(float(published), self.learned)

    def cap(self, lane: Lane) -> float | None:
        ceiling = self.ceiling()
        if ceiling is None:
            # Unpublished and not yet taught by a 429: a technician is not held to a guess, bulk work ramps up.
            return None if lane is Lane.INTERACTIVE or self.guess is None else self.guess
        if self.limit.published is None:
            # A learned limit is already below what Graph allowed (the count before a refusal, seen from here a
            # little late); bulk work takes all of it, a technician's request still goes first when room appears.
            return ceiling
        return ceiling * (BULK_SHARE if lane is Lane.BULK else 1.0)

    def wait(self, now: float, amount: int, lane: Lane) -> float:
        """Seconds until `amount` more may go in this lane (0: now)."""
        wait = max(0.0, self.blocked_until - now)
        cap = self.cap(lane)
        if cap is None:
            return wait
        used = self.used(now)
        excess = used + amount - cap
        if excess > 0 and used > 0:
            # Until enough has slid out of the window; a request larger than the whole cap waits for an empty one.
            freed = 0
            for moment, admitted in self._entries:
                freed += admitted
                if freed >= excess or freed >= used:
                    wait = max(wait, moment + self.limit.window_s - now)
                    break
        if self.limit.published is None and self.learned is None and self._last_admitted is not None:
            # An unknown limit is approached evenly: a burst would be refused as a burst. Once a 429 taught it, the
            # window alone decides (a pause, e.g. a busy CPU, is then made up for, as Graph's own window allows).
            wait = max(wait, self._last_admitted + self.limit.window_s / max(cap, 1e-9) - now)
        return wait

    def take(self, now: float, amount: int) -> None:
        self._entries.append((now, amount))
        self._used += amount
        self._last_admitted = now

    def refund(self, at: float, amount: int) -> None:
        """A refused request counts against nothing (Graph's answer); forget it."""
        if self._forget(at, amount):
            self._used -= amount

    def settle(self, at: float, amount: int, now: float, kept: int) -> None:
        """A `$batch` answered: of the `amount` admitted at `at`, the `kept` Graph accepted count from the answer on
        (as `restamp`), the items it refused against nothing (as `refund`)."""
        self.refund(at, amount)
        if kept > 0:
            self._entries.append((now, kept))
            self._used += kept

    def restamp(self, at: float, amount: int, now: float) -> None:
        """Counts an accepted request from its answer on: Graph counted it on arrival, somewhere between admission
        and answer, so the window seen from here ends no earlier than Graph's (a request that left late, from a
        busy process, would otherwise slide out here while Graph still counts it)."""
        if self._forget(at, amount):
            self._entries.append((now, amount))

    def _forget(self, at: float, amount: int) -> bool:
        """Removes one entry admitted at `at` for `amount`, if still in the window. Searched from the newest end: an
        answer comes soon after its admission, while a bulk job keeps thousands of older entries ahead of it (equal
        entries are interchangeable, so which of them goes changes nothing)."""
        entries = self._entries
        wanted = (at, amount)
        for offset, entry in enumerate(reversed(entries)):
            if entry == wanted:
                del entries[len(entries) - 1 - offset]
                return True
        return False

    def accepted(self) -> None:
        if self.limit.published is None and self.learned is None:
            if self.guess is not None:
                self.guess += SLOW_START_GAIN
            return
        if self.learned is None:
            return
        self.learned += max(1.0, PROBE_GROWTH * self.learned) / (PROBE_WINDOWS * max(self.learned, 1.0))
        if self.limit.published is not None and self.learned >= self.limit.published:
            self.learned = None  # back to the published quota

    def throttled(self, now: float, retry_after_s: float, used_before: int) -> None:
        self.blocked_until = max(self.blocked_until, now + retry_after_s)
        if used_before < MIN_LEARNED:
            return
        ceiling = self.ceiling()
        if ceiling is None:
            self.learned = float(used_before)
        elif self.learned is None:
            self.learned = min(ceiling, float(used_before))
        else:
            # Once learned, one refusal lowers it by a tenth at most: a request refused right after a pause (the
            # window seen from here empties a little before Graph's) says little about the limit.
            self.learned = max(min(ceiling, float(used_before)), LEARNED_DECREASE * self.learned)

    def reported(self, now: float, share: float) -> None:
        """Graph says `share` of this limit is in use; if this process admitted less than that, the rest is
        someone else's (another replica) or the quota is smaller than assumed: lower it to match."""
        ceiling = self.ceiling()
        if ceiling is None or share <= 0:
            return
        used = self.used(now)
        if used / ceiling >= share:
            return
        floor = max(1.0, (self.limit.published or ceiling) * 0.05)
        self.learned = max(floor, min(ceiling, used / share))


class Overdue(Exception):
    """The request would wait longer for admission than its caller may: nothing was sent."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"admission in {seconds:.1f} s")
        self.seconds = seconds


@dataclass
class Ticket:
    """One admitted request: what it counted toward, in which lane, and how full each window was before it."""

    lane: Lane
    charges: dict[str, int]
    at: float
    used_before: dict[str, int]


@dataclass(frozen=True)
class ItemAnswer:
    """Graph's answer to one item of a `$batch` (Graph evaluates each item against its limits on its own and answers
    the batch 200 with a 429 per refused item): what the item counted toward, whether it was refused, the item's
    Retry-After and the dimensions its `x-ms-throttle-scope` names."""

    charges: Mapping[str, int]
    throttled: bool = False
    retry_after_s: float | None = None
    scope: tuple[str, ...] = ()


@dataclass
class _Waiter:
    lane: Lane
    charges: dict[str, int]


@dataclass
class PacerStats:
    admitted: Counter[Lane] = field(default_factory=Counter[Lane])
    throttled: int = 0
    waited: Counter[Lane] = field(default_factory=Counter[Lane])
    """Requests of each lane that had to wait for admission."""
    overdue: Counter[Lane] = field(default_factory=Counter[Lane])
    """Requests of each lane given up because admission was further away than their caller could wait."""


class Pacer:
    def __init__(
        self,
        limits: Iterable[Limit],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._dimensions = {limit.name: Dimension(limit) for limit in limits}
        self._clock = clock
        self._sleep = sleep
        self._waiting: dict[Lane, list[_Waiter]] = {which: [] for which in Lane}
        self._changed: asyncio.Event | None = None
        self.stats = PacerStats()
        self._in_flight: Counter[Lane] = Counter()
        self._last_interactive = float("-inf")
        self._last_bulk_row = float("-inf")

    def dimension(self, name: str) -> Dimension:
        return self._dimensions[name]

    @property
    def dimensions(self) -> Mapping[str, Dimension]:
        return self._dimensions

    def waiting(self, which: Lane) -> int:
        """Requests of this lane waiting for admission now."""
        return len(self._waiting[which])

    async def admit(
        self, charges: Mapping[str, int], which: Lane | None = None, *, max_wait_s: float | None = None
    ) -> Ticket:
        """Waits until every dimension the request counts toward has room in its lane, then counts it. Raises
        Overdue, at once, when admission is further away than `max_wait_s` from the call."""
        which = which or current_lane()
        kept = {name: amount for name, amount in charges.items() if name in self._dimensions and amount > 0}
        waiter = _Waiter(which, kept)
        queue = self._waiting[which]
        queue.append(waiter)
        waited = False
        started = self._clock()
        try:
            while True:
                now = self._clock()
                wait = self._wait_of(waiter, now)
                if wait <= 0:
                    return self._take(waiter, now)
                if max_wait_s is not None and now - started + wait > max_wait_s:
                    self.stats.overdue[which] += 1
                    raise Overdue(wait)
                if not waited:
                    waited = True
                    self.stats.waited[which] += 1
                await self._nap(wait)
        finally:
            queue.remove(waiter)
            self._poke()

    async def ready(self, which: Lane = Lane.BULK, backlog: int = BULK_BACKLOG) -> None:
        """Returns once fewer than `backlog` requests of the lane wait and no limit is closed by a Retry-After: bulk
        work takes a new row only then, so rows do not pile up (each holding its user's lock) behind a binding
        limit, nor start while Graph said to wait. While technicians are at work, bulk rows also start spaced out
        (BULK_ROWS_PER_SECOND_WHILE_BUSY)."""
        while True:
            now = self._clock()
            closed = max((d.blocked_until - now for d in self._dimensions.values()), default=0.0)
            busy = which is Lane.BULK and self._technicians_busy(now)
            crowded = busy and self._in_flight[which] >= BULK_IN_FLIGHT_WHILE_BUSY
            spacing = (self._last_bulk_row + 1 / BULK_ROWS_PER_SECOND_WHILE_BUSY - now) if busy else 0.0
            if len(self._waiting[which]) < backlog and closed <= 0 and not crowded and spacing < _INSTANT:
                if which is Lane.BULK:
                    self._last_bulk_row = now
                return
            await self._nap(closed if closed > 0 else spacing if spacing > 0 else MAX_NAP_SECONDS)

    def _technicians_busy(self, now: float) -> bool:
        return self._in_flight[Lane.INTERACTIVE] > 0 or now - self._last_interactive < TECHNICIANS_QUIET_S

    def abandoned(self, ticket: Ticket) -> None:
        """An admitted request that got no answer (a transport error, a timeout): it stays counted, as it may have
        reached Graph, but is no longer in flight."""
        self._in_flight[ticket.lane] -= 1
        self._poke()

    def answered(
        self,
        ticket: Ticket,
        *,
        throttled: bool = False,
        retry_after_s: float | None = None,
        scope: Iterable[str] = (),
        limit_percentage: float | None = None,
    ) -> None:
        """What Graph answered to an admitted request: a 429 (with its Retry-After and the dimensions its scope
        names, if any), or an accepted request (with the limit-percentage header, if sent)."""
        now = self._clock()
        self._in_flight[ticket.lane] -= 1
        charged = [self._dimensions[name] for name in ticket.charges]
        if throttled:
            for dimension in charged:
                dimension.refund(ticket.at, ticket.charges[dimension.name])
            self._refused(now, ticket.charges, ticket.used_before, retry_after_s, scope)
        else:
            for dimension in charged:
                dimension.restamp(ticket.at, ticket.charges[dimension.name], now)
                dimension.accepted()
            self._reported(now, charged, limit_percentage)
        self._poke()

    def answered_batch(
        self, ticket: Ticket, items: Sequence[ItemAnswer], *, limit_percentage: float | None = None
    ) -> None:
        """Graph answered an admitted `$batch` (not refused as a whole), item by item (`items`: each item's charges
        summing to the ticket's). An accepted item counts as an accepted request; a refused one as a refused request:
        it counts against nothing, its Retry-After closes the dimensions it names (or the unpublished ones it counted
        toward) before it is sent again on its own, and the items of the batch ahead of it that Graph accepted count
        as admitted before it when a limit is learned."""
        now = self._clock()
        self._in_flight[ticket.lane] -= 1
        kept = {name: 0 for name in ticket.charges}
        refused: list[tuple[ItemAnswer, dict[str, int]]] = []
        for item in items:
            charges = {name: amount for name, amount in item.charges.items() if name in kept and amount > 0}
            if item.throttled:
                refused.append((item, {name: ticket.used_before[name] + kept[name] for name in charges}))
                continue
            for name, amount in charges.items():
                kept[name] += amount
                self._dimensions[name].accepted()
        for name, amount in ticket.charges.items():
            self._dimensions[name].settle(ticket.at, amount, now, min(amount, kept[name]))
        for item, before in refused:
            charges = {name: amount for name, amount in item.charges.items() if name in before}
            self._refused(now, charges, before, item.retry_after_s, item.scope)
        self._reported(now, [self._dimensions[name] for name in ticket.charges], limit_percentage)
        self._poke()

    def _refused(
        self,
        now: float,
        charges: Mapping[str, int],
        used_before: Mapping[str, int],
        retry_after_s: float | None,
        scope: Iterable[str],
    ) -> None:
        """A request Graph answered 429: its Retry-After closes the dimensions its scope names, else the unpublished
        ones it counted toward, else all it counted toward; those learn from how full they were before it."""
        self.stats.throttled += 1
        charged = [self._dimensions[name] for name in charges]
        named = {name for name in scope if name in charges}
        unpublished = [d for d in charged if d.limit.published is None]
        culprits = [d for d in charged if d.name in named] if named else unpublished or charged
        for dimension in culprits:
            dimension.throttled(now, retry_after_s or 0.0, used_before[dimension.name])

    def _reported(self, now: float, charged: Sequence[Dimension], limit_percentage: float | None) -> None:
        if limit_percentage is not None and limit_percentage > LIMIT_PERCENTAGE_THRESHOLD:
            reported = [d for d in charged if d.limit.reported]
            if reported:
                fullest = max(reported, key=lambda d: d.used(now) / (d.ceiling() or 1.0))
                fullest.reported(now, limit_percentage)

    def _wait_of(self, waiter: _Waiter, now: float) -> float:
        wait = 0.0
        for name, amount in waiter.charges.items():
            wait = max(wait, self._dimensions[name].wait(now, amount, waiter.lane))
        if waiter.lane is Lane.BULK:
            for other in self._waiting[Lane.INTERACTIVE]:
                if other.charges.keys() & waiter.charges.keys():
                    # A technician waits for room in a limit this request would also take: they go first.
                    return max(wait, MAX_NAP_SECONDS)
        return wait

    def _take(self, waiter: _Waiter, now: float) -> Ticket:
        used_before: dict[str, int] = {}
        for name, amount in waiter.charges.items():
            dimension = self._dimensions[name]
            used_before[name] = dimension.used(now)
            dimension.take(now, amount)
        self.stats.admitted[waiter.lane] += 1
        self._in_flight[waiter.lane] += 1
        if waiter.lane is Lane.INTERACTIVE:
            self._last_interactive = now
        return Ticket(waiter.lane, waiter.charges, now, used_before)

    async def _nap(self, seconds: float) -> None:
        """Sleeps `seconds` (at most MAX_NAP_SECONDS), or less if anything changes meanwhile."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = asyncio.ensure_future(self._changed.wait())
        slept = asyncio.ensure_future(self._sleep(min(seconds, MAX_NAP_SECONDS)))
        try:
            await asyncio.wait({changed, slept}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, slept):
                if not task.done():
                    task.cancel()

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
