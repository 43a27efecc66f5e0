"""Lots recorded by concurrent requests, sent as one transaction per cooperative.

Recording lots is the season's busiest write: every delivery at a collection point is one.
Sent one transaction per lot, each costs a signature, a nonce, a gas estimate, a receipt
and a block's worth of the node's time, and each write's simulation replays every lot
still waiting to be sent. Here the lots that arrive while a batch is being recorded wait
for the next one (up to :data:`MAX_LOTS`), and each batch is:

1. **judged lot by lot**: one ``eth_simulateV1`` runs every lot as its own ``recordLot``
   call, in order, after what is in flight. A refused lot changes nothing on the simulated
   chain, so each lot gets exactly the answer it would get alone: its own 409, and nothing
   recorded for it;
2. **claimed and recorded in one database transaction**: each idempotency key claimed by
   ``INSERT ... ON CONFLICT DO NOTHING`` (a concurrent duplicate loses only its own lot: it
   replays the first answer or gets a 409), the plots' private rows, and one outbox row per
   cooperative: ``recordLots`` with the accepted lots in order (``recordLot`` for one).
   ``recordLots`` runs the same checks as ``recordLot`` on each lot, so a batch of lots
   each judged good is good. Each lot's answer keeps its place in the transaction
   (:attr:`konbit.services.writes.Outcome.part`), so that a retry with ``?wait=true``
   gets its own ``LotRecorded`` event, not its neighbours'.

A write that waits for its own events (``?wait=true``, SMS, pages) is recorded alone
(:func:`konbit.services.lots.record_lot`): the first answer it waits for is its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from konbit.access.keys import Actor
from konbit.outbox.models import OutboxTx
from konbit.services import writes
from konbit.services.errors import ServiceError
from konbit.services.writes import Call, Outcome

if TYPE_CHECKING:
    from konbit.runtime import Runtime
    from konbit.services.lots import LotInput

log = logging.getLogger(__name__)

#: Lots judged and sent together at most: one ``eth_simulateV1`` block and one
#: ``recordLots`` must stay well inside a block's gas (about 60k gas a lot).
MAX_LOTS = 100
#: While lots keep arriving, a batch waits for them this long at most, looking every
#: :data:`GATHER_STEP` seconds; a lot alone waits one step. bench/api_load.py, writes only:
#: 11 lots a transaction without it, about 20 with it, and more writes at a lower p50 (the
#: node mines a block per transaction, and the background's work is per transaction).
GATHER_SECONDS = 0.03
GATHER_STEP = 0.003
#: At most this long a batch waits while :attr:`LotBatcher.busy` says other requests come
#: first (the API's reads: bench/api_load.py's mix gave reads p99 228-288 ms without it,
#: 196-258 ms with it, and more writes, in bigger batches).
YIELD_SECONDS = 0.05


@dataclass
class LotRequest:
    """One request's lot, checked, waiting for its batch."""

    actor: Actor
    operation: str
    lot: LotInput
    payload: dict[str, Any]
    idempotency_key: str | None
    future: Future[Outcome] = field(default_factory=Future)

    @property
    def sender(self) -> str:
        return self.actor.organisation


class LotBatcher:
    """Collects lots from any number of threads; one thread of its own records them.

    :meth:`submit` queues a lot; its future gets the outcome once the lot's batch is
    recorded (or the lot refused). The thread starts with the first lot and stops with
    :meth:`close`.
    """

    def __init__(self, runtime: Runtime, *, max_lots: int = MAX_LOTS) -> None:
        self.runtime = runtime
        self.max_lots = max_lots
        self._queue: queue.SimpleQueue[LotRequest | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        #: Set by a channel whose other requests come first (a lot answered 202 is not
        #: waited for by a person; a page or a read is): true while they queue.
        self.busy: Callable[[], bool] | None = None

    def submit(self, request: LotRequest) -> Future[Outcome]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the lot batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="konbit-lot-batches", daemon=True
                )
                self._thread.start()
            # Under the lock: a lot queued after close()'s stop would never be answered.
            self._queue.put(request)
        return request.future

    def close(self) -> None:
        """Record what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            self._gather()
            self._yield()
            batch = [first]
            while len(batch) < self.max_lots:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            try:
                record_batch(self.runtime, batch)
            except BaseException as exc:  # every waiting caller gets an answer
                if not isinstance(exc, ServiceError):
                    log.exception("recording a batch of %d lots failed", len(batch))
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)

    def _gather(self) -> None:
        """Wait while lots keep arriving, for up to GATHER_SECONDS (a lot alone: one step)."""
        until = time.monotonic() + GATHER_SECONDS
        queued = self._queue.qsize()
        while queued < self.max_lots - 1 and time.monotonic() < until:
            time.sleep(GATHER_STEP)
            now = self._queue.qsize()
            if now == queued:
                return
            queued = now

    def _yield(self) -> None:
        """Let requests that come first have the interpreter, for up to YIELD_SECONDS."""
        busy = self.busy
        if busy is None:
            return
        until = time.monotonic() + YIELD_SECONDS
        while busy() and time.monotonic() < until:
            time.sleep(0.002)


def record_batch(runtime: Runtime, batch: list[LotRequest]) -> None:
    """Judge, claim and record ``batch``; every request's future gets its outcome or error."""
    from konbit.services import lots  # lots imports this module for record_lot

    live: list[LotRequest] = []
    checked_senders: dict[str, ServiceError | None] = {}
    for request in batch:
        if request.sender not in checked_senders:
            try:
                writes.require_custodial(runtime, request.sender)
                writes.require_gas(runtime, request.sender)
                checked_senders[request.sender] = None
            except ServiceError as exc:
                checked_senders[request.sender] = exc
        error = checked_senders[request.sender]
        if error is not None:
            request.future.set_exception(error)
        else:
            live.append(request)
    if not live:
        return

    resolved = lots.with_registered_plots(runtime, [r.lot for r in live])
    seals, structs, encoded, encodable = [], [], [], []
    for request, lot in zip(live, resolved, strict=True):
        seal = lots.seal_plot(lot.plot_geohash)
        struct = lots.lot_struct(lot, seal)
        try:
            one = writes.encode(runtime, [Call("Traceability", "recordLot", [struct])])[0]
        except ServiceError as exc:  # this lot alone
            request.future.set_exception(exc)
            continue
        seals.append(seal)
        structs.append(struct)
        encoded.append(one)
        encodable.append(request)
    live = encodable
    if not live:
        return

    judged = _judge(runtime, live, encoded)
    accepted = [i for i, request in enumerate(live) if judged[i] is None]
    for i, request in enumerate(live):
        error = judged[i]
        if error is not None:
            request.future.set_exception(error)
    if not accepted:
        return

    duplicates: list[LotRequest] = []
    answered: list[tuple[LotRequest, Outcome]] = []
    with Session(runtime.engine, expire_on_commit=False) as session:
        claims: dict[int, int] = {}
        kept: list[int] = []
        for i in accepted:
            request = live[i]
            if request.idempotency_key is not None:
                claim_id = writes.claim(
                    session,
                    request.sender,
                    request.idempotency_key,
                    request.operation,
                    writes.fingerprint(request.operation, request.payload),
                )
                if claim_id is None:  # a concurrent duplicate committed first
                    duplicates.append(request)
                    continue
                claims[i] = claim_id
            kept.append(i)
        by_sender: dict[str, list[int]] = {}
        for i in kept:
            by_sender.setdefault(live[i].sender, []).append(i)
        rows: dict[str, OutboxTx] = {}
        for sender, members in by_sender.items():
            lots.store_plots(session, sender, (seals[i] for i in members))
            if len(members) == 1:
                one = encoded[members[0]]
            else:  # the lots' own recordLot encodings, put together
                call = Call("Traceability", "recordLots", [[structs[i] for i in members]])
                to, data = runtime.contracts().encode_items_call(
                    call.contract, call.function, [encoded[i][2] for i in members]
                )
                one = (call, to, data)
            rows[sender] = writes.add_call(
                runtime, session, f"lots:{uuid.uuid4().hex}", sender, one
            )
        session.flush()
        for sender, members in by_sender.items():
            row, shared = rows[sender], len(members) > 1
            for place, i in enumerate(members):
                part = place if shared else None
                claim_id = claims.get(i)
                if claim_id is not None:
                    writes.answer_claim(session, claim_id, {}, [row.id], part=part)
                answered.append((live[i], Outcome(transactions=[row], created={}, part=part)))
        session.commit()
    for request, outcome in answered:
        request.future.set_result(outcome)
    runtime.nudge_outbox()
    for request in duplicates:
        _answer_duplicate(runtime, request)


def _judge(
    runtime: Runtime, live: list[LotRequest], encoded: list[tuple[Call, str, str]]
) -> list[ServiceError | None]:
    """Each lot's refusal (None: accepted), each judged after the lots before it."""
    calls = [
        {"from": request.sender, "to": to, "data": data}
        for request, (_, to, data) in zip(live, encoded, strict=True)
    ]
    results = writes.simulate_each(runtime, calls)
    if results is not None:
        return [
            writes.refusal(runtime, call, result)
            for (call, _, _), result in zip(encoded, results, strict=True)
        ]
    judged: list[ServiceError | None] = []
    for request, one in zip(live, encoded, strict=True):  # a node without eth_simulateV1
        try:
            writes.simulate(runtime, request.sender, [one])
            judged.append(None)
        except ServiceError as exc:
            judged.append(exc)
    return judged


def _answer_duplicate(runtime: Runtime, request: LotRequest) -> None:
    """A lot whose idempotency key another request claimed first: that request's answer."""
    assert request.idempotency_key is not None
    digest = writes.fingerprint(request.operation, request.payload)
    try:
        first = writes.duplicate_answer(runtime, request.sender, request.idempotency_key, digest)
    except ServiceError as exc:
        request.future.set_exception(exc)
    else:
        request.future.set_result(first)
