"""CPython's garbage collector set for a long-running server once start-up is over.

The cyclic collector walks a generation's objects each time it runs. Measured under 50 operators at once (bench.load,
400 commands): a full collection walked every object the imports made (the SDKs, msgraph's models) for 215-235 ms,
with every command in flight waiting, and the young generation was collected 120 times (80-116 ms; its threshold is
700 new objects). Once the bot has started and warmed up, the objects alive then (they live as long as the process)
are frozen, never walked again, and the young generation is collected every 20,000 new objects: 4 collections of
~13 ms for the same 400 commands, no full collection over the imports. What it costs: garbage cycles wait longer to
be freed, at most the young generation's 20,000 objects (a few MB; peak RSS unchanged in bench.start).

Only for a process that is the bot's alone (app.py, and the benchmarks' copy of it): a test process making many apps
would freeze each test's leftovers.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 20_000


def settle_after_start() -> None:
    # Frozen as it is: a full collection first would add ~130 ms to the start for the ~20 unreachable objects it finds.
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
