"""The lot batcher's own machinery, without a chain: gathering lots, yielding to reads,
and stopping.

What a batch records is tested on a real Anvil in tests/e2e/test_lot_batches.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from konbit.services import lot_batches
from konbit.services.lot_batches import GATHER_SECONDS, GATHER_STEP, YIELD_SECONDS, LotBatcher


def test_a_lot_alone_waits_one_gathering_step() -> None:
    batcher = LotBatcher(runtime=None)  # type: ignore[arg-type]
    start = time.monotonic()
    batcher._gather()
    assert GATHER_STEP <= time.monotonic() - start < GATHER_SECONDS


def test_a_batch_gathers_while_lots_keep_coming_up_to_its_bound() -> None:
    batcher = LotBatcher(runtime=None)  # type: ignore[arg-type]
    stop = threading.Event()

    def arrive() -> None:  # a lot every millisecond, as under load
        while not stop.is_set():
            batcher._queue.put(_request())
            time.sleep(0.001)

    arriving = threading.Thread(target=arrive)
    arriving.start()
    try:
        start = time.monotonic()
        batcher._gather()
        waited = time.monotonic() - start
    finally:
        stop.set()
        arriving.join()
    assert GATHER_SECONDS <= waited < GATHER_SECONDS + 5


def test_a_full_batch_does_not_gather() -> None:
    batcher = LotBatcher(runtime=None, max_lots=4)  # type: ignore[arg-type]
    for _ in range(3):  # with the first lot, taken already: a full batch
        batcher._queue.put(_request())
    start = time.monotonic()
    batcher._gather()
    assert time.monotonic() - start < GATHER_STEP


def test_a_batch_waits_while_reads_queue_then_goes_on() -> None:
    batcher = LotBatcher(runtime=None)  # type: ignore[arg-type]
    asked = []

    def busy() -> bool:
        asked.append(time.monotonic())
        return len(asked) < 4

    batcher.busy = busy
    batcher._yield()
    assert len(asked) == 4


def test_a_batch_waits_for_reads_no_longer_than_its_bound() -> None:
    batcher = LotBatcher(runtime=None)  # type: ignore[arg-type]
    batcher.busy = lambda: True
    start = time.monotonic()
    batcher._yield()
    assert YIELD_SECONDS <= time.monotonic() - start < YIELD_SECONDS + 5


def test_without_a_channel_a_batch_does_not_wait() -> None:
    batcher = LotBatcher(runtime=None)  # type: ignore[arg-type]
    start = time.monotonic()
    batcher._yield()
    assert time.monotonic() - start < YIELD_SECONDS


def test_every_caller_of_a_failed_batch_gets_the_error_and_the_thread_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch that fails outside the service's errors (the database gone) answers every
    lot in it with that error; the next batch is still recorded; close() stops the thread."""
    failing = True

    def record_batch(_runtime: Any, batch: list[Any]) -> None:
        if failing:
            raise OSError("database unreachable")
        for request in batch:
            request.future.set_result("recorded")

    monkeypatch.setattr(lot_batches, "record_batch", record_batch)
    batcher = LotBatcher(runtime=None)  # type: ignore[arg-type]
    first = [batcher.submit(_request()) for _ in range(3)]
    for future in first:
        with pytest.raises(OSError, match="database unreachable"):
            future.result(timeout=10)
    failing = False
    assert batcher.submit(_request()).result(timeout=10) == "recorded"
    batcher.close()
    assert batcher._thread is not None and not batcher._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(_request())


def _request() -> Any:
    return lot_batches.LotRequest(None, "lots.record", None, {}, None)  # type: ignore[arg-type]
