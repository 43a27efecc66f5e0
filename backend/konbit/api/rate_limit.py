"""Per-key rate limit: a leaked or runaway key slows down, not the whole service.

The ``limits`` library's sliding window counter, in memory: each backend process counts
the requests it serves (with several instances behind one balancer, each allows the
limit). Past the limit: 429 with ``Retry-After``. The counter weighs the previous window's
count by how much of it still overlaps, so one hit costs the same whatever the limit; the
exact moving window keeps a timestamp per request and inserts each at the front of a list,
a cost that grows with the limit (under the load bench's generous one: 4.6% of a web
worker's CPU, against 3.2-3.6% for the counter).
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from konbit.api.problems import Problem


class _SweptStorage(MemoryStorage):
    """``limits``' memory storage, whose expired counters are swept inline once a second.

    ``MemoryStorage`` sweeps in a ``threading.Timer`` of 10 ms that every hit starts again
    when none is alive: under load, a new thread every few milliseconds in each web worker
    (with its sweep, 4-7% of a web worker's CPU under bench/api_load.py's writes, py-spy).
    A counter past its expiry is dropped when read anyway (``MemoryStorage.get``), so the
    sweep only frees memory, and once a second frees it soon enough.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the one MemoryStorage starts; never started again
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    # MemoryStorage.__schedule_expiry, by its mangled name: what every hit calls. Should a
    # later `limits` 5.x rename it, its own timer comes back: slower, never wrong (the
    # tests count the timers started).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            # A renamed sweep only leaves memory unfreed: counters still expire when read.
            sweep = getattr(self, "_MemoryStorage__expire_events", None)
            if sweep is not None:
                sweep()


class KeyRateLimit:
    def __init__(self, rule: str) -> None:
        self.item = parse(rule)
        self.rule = rule
        self.limiter = SlidingWindowCounterRateLimiter(_SweptStorage())

    def hit(self, key_id: int | None) -> None:
        """Count one request of ``key_id``; 429 when its window is full."""
        if self.limiter.hit(self.item, "key", str(key_id)):
            return
        reset_at, _ = self.limiter.get_window_stats(self.item, "key", str(key_id))
        wait = max(1, math.ceil(reset_at - time.time()))
        raise Problem(
            429,
            f"too many requests with this key (limit {self.rule}); retry in {wait} s",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )
