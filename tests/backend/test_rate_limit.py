"""The per-key rate limit's counting, and its storage's sweep (konbit.api.rate_limit).

The 429 a client sees, with ``Retry-After``, is tested over HTTP in
tests/e2e/test_hardening.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from konbit.api.problems import Problem
from konbit.api.rate_limit import KeyRateLimit, _SweptStorage


def test_a_key_past_its_limit_gets_429_and_other_keys_do_not() -> None:
    limit = KeyRateLimit("5/minute")
    for _ in range(5):
        limit.hit(1)
    with pytest.raises(Problem) as refused:
        limit.hit(1)
    assert refused.value.status == 429
    assert int(refused.value.extra["headers"]["Retry-After"]) >= 1
    limit.hit(2)


def test_hits_start_no_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """limits' own MemoryStorage starts a timer thread on a hit when none is alive."""
    started = []

    class CountedTimer(threading.Timer):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(threading, "Timer", CountedTimer)
    limit = KeyRateLimit("100000/minute")
    started.clear()  # MemoryStorage.__init__'s own, cancelled at once
    for i in range(300):
        limit.hit(i % 7)
        if i % 50 == 0:
            time.sleep(0.02)  # longer than MemoryStorage's 10 ms timer
    assert started == []


def test_expired_counters_are_swept_once_the_sweep_is_due() -> None:
    storage = _SweptStorage()
    storage.incr("fresh", expiry=60)
    storage.incr("old", expiry=60)
    storage.expirations["old"] = time.time() - 1  # its window ended

    storage.incr("fresh", expiry=60)  # the sweep is not due yet: nothing swept
    assert "old" in storage.storage

    storage._next_sweep = time.monotonic()
    storage.incr("fresh", expiry=60)
    assert "old" not in storage.storage and "old" not in storage.expirations
    assert storage.get("fresh") == 3
