"""The outbox worker: sign, send in nonce order per sender, wait, record; reconcile crashes.

Each step ends in a commit, so a crash leaves every row in a state the next pass finishes:

* ``queued`` -> estimate gas, allocate the nonce, sign -> ``signed`` (nonces and rows
  commit together: no gap, no reuse). A revert at estimation fails the row without using
  a nonce, unless earlier transactions of the same sender are still in flight: then the
  row waits for them and is estimated again.
* ``signed`` -> broadcast the stored raw bytes -> ``sent``. A ``signed`` row found after a
  crash is broadcast again as the same bytes: the node takes it, already has it, or has
  mined it (then the receipt says so). When the node refuses the bytes because their fee
  no longer covers the base fee, the row is signed again for the same nonce at today's
  fees; the earlier signatures are kept (``replaced_json``), since any one of them may be
  the one that is mined.
* ``sent`` -> receipt -> ``mined``, or ``failed`` with the custom error decoded.

Nonces come from ``outbox_sender.next_nonce``, allocated under a row lock (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite serialises writers). When the node answers "nonce too
low" for a transaction none of whose signatures was mined, another transaction took the
nonce: that row alone goes back to ``queued`` (to be signed with a fresh nonce; the rows
after it keep theirs, which stay valid) and ``next_nonce`` moves past the chain's.

**The outbox is the write-ahead log of the chain.** A node may lose blocks it had mined
(a local Anvil killed before its state dump, a reorg) and with them the receipts the
outbox recorded. :meth:`OutboxWorker.reconcile` brings the outbox back in line with the
chain. It runs when the worker starts, after the node could not be reached, when asked
(the mirror asks when it sees a reorg or a reset) and every ``chain_check_seconds``
(the blocks of the receipts recorded since the previous check, compared with the node's;
each block of each recorded receipt, not only the highest: the writes sent again after a
loss are recorded at heights the lost ones had). It:

1. finds the rows whose block the chain no longer has; a row whose transaction was mined
   again elsewhere takes its new receipt, the others go back to ``signed``;
2. takes every ``signed`` / ``sent`` row: one already mined is recorded; one whose nonce
   the chain has used for another transaction goes back to ``queued``;
3. per sender, fills a nonce that neither the chain nor a row holds (a transaction sent
   outside the outbox and lost) with a zero-value transfer to itself, so that the rows
   above it can be mined, and resyncs ``next_nonce`` with the chain;
4. broadcasts them all again as the same signed bytes, in the order they first reached
   the chain (lost blocks first, by block, then the rest as they were signed), each
   sender in nonce order, waiting for each receipt before the next sender's transaction
   so that one sender's write that depends on another's lands after it again.

Each row says which chain it is for (``chain_genesis``, the hash of its genesis block; see
konbit.services.chains): a worker handles the rows of the chain its node runs, and those
that say none, and nothing else; ``outbox_sender.next_nonce`` counts on the chain named
beside it (another: resynced). So the rows of another chain instance with the same chain
id (a local chain started again afresh) never block this one, nor are sent to it.

So every accepted write lands exactly once. When none of the blocks the outbox recorded
is on the node any more (another chain, or one restarted without its state), nothing is
replayed: that is a reset, for an operator to look at (``konbit verify`` reports it).

A worker holds a sender through a lease (``lease_owner`` / ``lease_until``), so several
workers (or backend instances on one PostgreSQL) never interleave one sender's nonces; a
lease left by a dead worker on the same host is taken over at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import rlp
from eth_account.signers.local import LocalAccount
from sqlalchemy import and_, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from konbit.chain.contracts import DecodedError, ErrorDecoder
from konbit.chain.rpc import RpcClient, RpcError
from konbit.outbox.models import IN_FLIGHT, PENDING, OutboxSender, OutboxTx, TxStatus, utcnow
from konbit.outbox.service import request_hash
from konbit.outbox.wake import WakeListener

log = logging.getLogger(__name__)

#: Crash hook for tests: ``KONBIT_OUTBOX_CRASH_AT=signed:3`` ends the process with
#: ``os._exit(75)`` when the third transaction reaches that step (``signed``: committed
#: signed, not sent; ``broadcast``: sent, not recorded; ``sent``: recorded, no receipt).
CRASH_ENV = "KONBIT_OUTBOX_CRASH_AT"
CRASH_EXIT_CODE = 75
HOST = socket.gethostname()[:40]
#: The label of the zero-value self-transfers that fill a nonce nobody else will.
NONCE_FILLER = "nonce-filler"
#: Blocks looked up per JSON-RPC batch when checking the blocks the outbox recorded.
BLOCK_PAGE = 500
#: A periodic check looks again at receipts recorded this long before the previous check
#: (commit delays, clocks of other workers).
RECHECK_MARGIN = timedelta(seconds=30)
#: Signatures of one nonce at most (each at least 12.5% dearer than the one before).
MAX_SIGNATURES = 8


class TxSigner(Protocol):
    """What the worker needs of the vault: a short-lived signing account per sender."""

    def signer(self, address: str) -> AbstractContextManager[LocalAccount]: ...


class GasSponsor(Protocol):
    """Keeps custodial senders able to pay gas, so users never hold or see it."""

    def ensure_funded(self, sender: str, needed_wei: int) -> bool:
        """True when ``sender`` can pay ``needed_wei`` now; else arrange a top-up."""
        ...


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass
class ReconcileReport:
    """What one :meth:`OutboxWorker.reconcile` found and did."""

    #: Blocks the outbox recorded receipts in that the chain no longer has.
    lost_blocks: int = 0
    #: Rows recorded as mined (or failed) in a block the chain no longer has.
    lost: int = 0
    #: Of those, mined again in another block (their receipt was found).
    remined: int = 0
    #: ``signed`` / ``sent`` rows found mined.
    finished: int = 0
    #: Rows whose nonce the chain used for another transaction: back to ``queued``.
    requeued: int = 0
    #: Zero-value self-transfers signed for nonces nothing else holds.
    fillers: int = 0
    #: Rows broadcast again (same bytes, or re-signed for a higher fee).
    resent: int = 0
    #: None of the outbox's blocks is on the node: another chain, nothing replayed.
    reset: bool = False
    #: Senders another worker holds: reconciled later.
    busy_senders: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.lost or self.finished or self.requeued or self.fillers or self.resent)


def _says(error: RpcError, *phrases: str) -> bool:
    message = error.message.lower()
    return any(p in message for p in phrases)


def _is_nonce_too_low(error: RpcError) -> bool:
    return _says(error, "nonce too low", "nonce has already been used")


def _is_already_known(error: RpcError) -> bool:
    return _says(error, "already known", "already imported", "known transaction")


def _is_underfunded(error: RpcError) -> bool:
    return _says(error, "insufficient funds", "lack of funds")


def _is_fee_too_low(error: RpcError) -> bool:
    return _says(
        error,
        "less than block base fee",
        "fee cap less than",
        "feecap",
        "underpriced",
        "fee too low",
        "max fee per gas less than",
    )


def _is_revert(error: RpcError) -> bool:
    return error.code == 3 or _says(error, "revert")


def _crash_hook_from_env() -> Callable[[str], None] | None:
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return None
    step, _, count = spec.partition(":")
    remaining = [int(count or "1")]
    lock = threading.Lock()

    def hook(reached: str) -> None:
        if reached == step:
            with lock:
                remaining[0] -= 1
                if remaining[0] <= 0:
                    os._exit(CRASH_EXIT_CODE)

    return hook


def raw_nonce(raw_tx: str) -> int:
    """The nonce inside signed transaction bytes (legacy or typed)."""
    data = bytes.fromhex(raw_tx.removeprefix("0x"))
    if data[0] >= 0xC0:  # legacy: rlp([nonce, gasPrice, ...])
        fields = rlp.decode(data)
        return int.from_bytes(fields[0], "big")
    fields = rlp.decode(data[1:])  # typed: type byte, rlp([chainId, nonce, ...])
    return int.from_bytes(fields[1], "big")


def signatures(row: OutboxTx) -> list[tuple[str, str | None]]:
    """(tx hash, raw bytes) of every signature of the row, the current one first."""
    out: list[tuple[str, str | None]] = []
    if row.tx_hash:
        out.append((row.tx_hash, row.raw_tx))
    for tx_hash, raw in json.loads(row.replaced_json or "[]"):
        out.append((tx_hash, raw))
    return out


class OutboxWorker:
    """Drives every pending outbox row to ``mined`` or ``failed``."""

    def __init__(
        self,
        engine: Engine,
        rpc: RpcClient,
        signer: TxSigner,
        errors: ErrorDecoder,
        *,
        sponsor: GasSponsor | None = None,
        threads: int = 8,
        batch: int = 64,
        gas_margin_bps: int = 2_000,
        lease_seconds: int = 60,
        receipt_timeout: float = 30.0,
        chain_check_seconds: float = 2.0,
        replay_wait: float = 5.0,
        stuck_seconds: float = 20.0,
        recheck_window: timedelta = timedelta(days=1),
        reconcile_requests: threading.Event | None = None,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.rpc = rpc
        self.signer = signer
        self.errors = errors
        self.sponsor = sponsor
        self.batch = batch
        self.gas_margin_bps = gas_margin_bps
        self.lease = timedelta(seconds=lease_seconds)
        self.receipt_timeout = receipt_timeout
        self.chain_check_seconds = chain_check_seconds
        self.replay_wait = replay_wait
        self.stuck_seconds = stuck_seconds
        self.recheck_window = recheck_window
        #: Set by anyone (the mirror, on a reorg or a reset) to have the next pass reconcile.
        self.reconcile_requests = reconcile_requests or threading.Event()
        self.crash_hook = crash_hook or _crash_hook_from_env()
        self.worker_id = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.chain_id = int(rpc.call("eth_chainId"), 16)
        #: The chain instance this worker sends to: its rows, and those naming none.
        self.genesis = rpc.genesis()
        self._ours = or_(
            col(OutboxTx.chain_genesis) == self.genesis, col(OutboxTx.chain_genesis).is_(None)
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="outbox")
        # The lease keeps other workers off a sender; this keeps this worker's own
        # concurrent passes (run_forever beside drain) off it.
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._reconcile_lock = threading.Lock()
        self._full_reconcile_due = True  # at start: a crash may have left anything behind
        self._next_chain_check = 0.0
        self._checked_until: datetime | None = None  # receipts recorded before: checked
        self._reset_logged: tuple[int, str] | None = None

    # ---- loop -----------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass over every sender with pending rows; returns how many rows finished."""
        finished = self._reconcile_if_due()
        with Session(self.engine) as session:
            senders = session.exec(
                select(OutboxTx.sender)
                .where(col(OutboxTx.status).in_(PENDING))
                .where(self._ours)
                .distinct()
            ).all()
        if not senders:
            return finished
        fees = self._fees()
        return finished + sum(self._pool.map(lambda s: self._process_sender(s, fees), senders))

    def pending(self) -> int:
        with Session(self.engine) as session:
            return session.exec(
                select(func.count())
                .select_from(OutboxTx)
                .where(col(OutboxTx.status).in_(PENDING))
                .where(self._ours)
            ).one()

    def drain(self, timeout: float = 120.0, poll: float = 0.02) -> None:
        """Run until nothing is pending (tests, deploys, CLI one-shots)."""
        deadline = time.monotonic() + timeout
        while True:
            worked = self.run_once()  # the first one also reconciles with the chain
            if not self.pending():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"outbox still has {self.pending()} pending after {timeout}s")
            if not worked:
                time.sleep(poll)

    def run_forever(
        self,
        stop: threading.Event,
        poll: float = 0.2,
        *,
        wake: WakeListener | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """Pass after pass until ``stop``; idle, wait ``poll`` or until ``wake`` hears a
        write recorded. ``on_finished``: called after a pass that finished rows (the
        mirror wakes up for their blocks)."""
        log.info("outbox worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                finished = self.run_once()
                if finished and on_finished is not None:
                    on_finished()
                if not finished:
                    # A nudge sent during the pass is still queued: no write waits a poll.
                    if wake is not None:
                        wake.wait(stop, poll)
                    else:
                        stop.wait(poll)
            except Exception as exc:  # keep serving; every row keeps its state
                # The node may have been down, or restarted from an older state: look at
                # the whole outbox again once it answers.
                self._full_reconcile_due = True
                if isinstance(exc, OSError | RpcError):  # requests' errors are OSErrors
                    log.warning("outbox pass failed (%s); retrying", exc)
                else:
                    log.exception("outbox pass failed; retrying")
                stop.wait(1.0)

    def request_reconcile(self) -> None:
        """Have the next pass reconcile the outbox with the chain (thread-safe)."""
        self.reconcile_requests.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # ---- one sender -----------------------------------------------------------------

    def _process_sender(self, sender: str, fees: Fees) -> int:
        if not self._hold(sender):
            return 0
        try:
            if not self._claim(sender):
                return 0
            try:
                finished = self._reconcile(sender)
                self._sign_queued(sender, fees)
                self._send_signed(sender)
                self._claim(sender)  # renew the lease before the longest wait
                return finished + self._collect_receipts(sender)
            finally:
                self._release(sender)
        finally:
            self._unhold(sender)

    def _hold(self, sender: str) -> bool:
        with self._busy_lock:
            if sender in self._busy:
                return False
            self._busy.add(sender)
            return True

    def _unhold(self, sender: str) -> None:
        with self._busy_lock:
            self._busy.discard(sender)

    def _claim(self, sender: str) -> bool:
        now = utcnow()
        with Session(self.engine) as session:
            if session.get(OutboxSender, sender) is None:
                session.add(OutboxSender(sender=sender))
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
            claimed = session.execute(
                update(OutboxSender)
                .where(col(OutboxSender.sender) == sender)
                .where(
                    or_(
                        col(OutboxSender.lease_owner).is_(None),
                        col(OutboxSender.lease_owner) == self.worker_id,
                        col(OutboxSender.lease_until) < now,
                    )
                )
                .values(lease_owner=self.worker_id, lease_until=now + self.lease)
            )
            session.commit()
            if claimed.rowcount:  # type: ignore[attr-defined]
                return True
            return self._take_over_dead_owner(session, sender, now)

    def _take_over_dead_owner(self, session: Session, sender: str, now: datetime) -> bool:
        """A worker on this host that died (killed, crashed) leaves its lease: take it over."""
        owner = session.exec(
            select(OutboxSender.lease_owner).where(OutboxSender.sender == sender)
        ).first()
        host, _, rest = (owner or "").partition(":")
        pid = rest.partition(":")[0]
        if host != HOST or not pid.isdigit() or _process_alive(int(pid)):
            return False
        taken = session.execute(
            update(OutboxSender)
            .where(col(OutboxSender.sender) == sender)
            .where(col(OutboxSender.lease_owner) == owner)
            .values(lease_owner=self.worker_id, lease_until=now + self.lease)
        )
        session.commit()
        if taken.rowcount:  # type: ignore[attr-defined]
            log.info("took over %s from dead worker %s", sender, owner)
            return True
        return False

    def _release(self, sender: str) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(OutboxSender)
                .where(col(OutboxSender.sender) == sender)
                .where(col(OutboxSender.lease_owner) == self.worker_id)
                .values(lease_owner=None, lease_until=None)
            )
            session.commit()

    def _rows(self, session: Session, sender: str, *statuses: str) -> list[OutboxTx]:
        by_nonce = statuses != (TxStatus.QUEUED.value,)
        return list(
            session.exec(
                select(OutboxTx)
                .where(OutboxTx.sender == sender)
                .where(col(OutboxTx.status).in_(statuses))
                .where(self._ours)
                .order_by(col(OutboxTx.nonce) if by_nonce else col(OutboxTx.id), col(OutboxTx.id))
                .limit(self.batch)
            ).all()
        )

    # ---- reconcile after a crash or a lost broadcast ---------------------------------

    def _reconcile(self, sender: str) -> int:
        """Finish ``sent`` rows whose receipt exists; send again those the node lost; fill
        a nonce gap that keeps rows waiting for long."""
        finished = 0
        stuck: list[OutboxTx] = []
        stale_before = utcnow() - timedelta(seconds=self.stuck_seconds)
        with Session(self.engine) as session:
            rows = self._rows(session, sender, TxStatus.SENT.value)
            receipts = self._receipts([r.tx_hash for r in rows])
            for row, receipt in zip(rows, receipts, strict=True):
                if receipt is not None:
                    self._finish(session, row, receipt)
                    finished += 1
                elif self.rpc.call("eth_getTransactionByHash", row.tx_hash) is None:
                    row.status = TxStatus.SIGNED.value  # the node lost it: same bytes again
                    self._touch(session, row, commit=False)
                elif row.sent_at is not None and _aware(row.sent_at) < stale_before:
                    stuck.append(row)  # known to the node, not mined for long
            session.commit()
            if stuck:
                fillers = self._repair_nonces(session, sender, self._fees())
                session.commit()
                if not fillers:
                    self._replace_stuck(session, sender, stuck)
                    session.commit()
        return finished

    def _replace_stuck(self, session: Session, sender: str, stuck: list[OutboxTx]) -> None:
        """Sign again, at a higher fee, the stuck rows from the chain's nonce on.

        No nonce is missing, yet the node keeps them unmined: a fee under the base fee it
        climbed to, or (seen with Anvil 1.7 under bursts of concurrent sends) a pool that
        lost track of their readiness. A replacement is a new transaction to the node
        either way; the first signature is kept, in case it is the one mined.
        """
        chain_nonce = int(self.rpc.call("eth_getTransactionCount", sender, "latest"), 16)
        for row in sorted(stuck, key=lambda r: r.nonce if r.nonce is not None else -1):
            if row.nonce is None or row.nonce < chain_nonce:
                continue  # its receipt comes on the next pass
            if not self._resign(session, row):
                break  # cannot sign it: the ones after it wait behind it anyway

    # ---- queued -> signed ------------------------------------------------------------

    def _sign_queued(self, sender: str, fees: Fees) -> None:
        ready: list[tuple[OutboxTx, int]] = []
        with Session(self.engine) as session:
            queued = self._rows(session, sender, TxStatus.QUEUED.value)
            estimates = self.rpc.batch([("eth_estimateGas", [_call(r), "pending"]) for r in queued])
            for row, estimate in zip(queued, estimates, strict=True):
                if isinstance(estimate, RpcError):
                    if not _is_revert(estimate):
                        row.last_error = estimate.message[:500]
                        break  # the node is unwell: try again next pass
                    if ready or self._has_in_flight(session, sender):
                        break  # may depend on an earlier transaction: estimate once it is mined
                    self._fail(session, row, self._decode(estimate), commit=False)
                    continue  # failed without using a nonce
                ready.append((row, int(estimate, 16) * (10_000 + self.gas_margin_bps) // 10_000))
            needed = sum(gas * fees.max_fee_per_gas + int(r.value_wei) for r, gas in ready)
            if (
                ready
                and self.sponsor is not None
                and not self.sponsor.ensure_funded(sender, needed)
            ):
                ready = []  # a top-up is on its way
            if ready:
                self._allocate_and_sign(session, sender, ready, fees)
            session.commit()  # nonces and signed rows together: no gap, no reuse
        for _ in ready:
            self._crash("signed")

    def _has_in_flight(self, session: Session, sender: str) -> bool:
        count = session.exec(
            select(func.count())
            .select_from(OutboxTx)
            .where(OutboxTx.sender == sender)
            .where(col(OutboxTx.status).in_(IN_FLIGHT))
            .where(self._ours)
        ).one()
        return count > 0

    def _allocate_and_sign(
        self, session: Session, sender: str, ready: list[tuple[OutboxTx, int]], fees: Fees
    ) -> None:
        state = session.exec(
            select(OutboxSender).where(OutboxSender.sender == sender).with_for_update()
        ).one()
        if state.next_nonce is None or state.chain_genesis != self.genesis:
            # Never counted, or counted on another chain: start from this chain's count
            # (above this chain's rows in flight, which keep their nonces).
            chain = int(self.rpc.call("eth_getTransactionCount", sender, "pending"), 16)
            top = session.exec(
                select(func.max(OutboxTx.nonce))
                .where(OutboxTx.sender == sender)
                .where(col(OutboxTx.status).in_(IN_FLIGHT))
                .where(self._ours)
            ).one()
            state.next_nonce = max(chain, top + 1 if top is not None else 0)
            state.chain_genesis = self.genesis
        now = utcnow()
        with self.signer.signer(sender) as account:
            for row, gas in ready:
                self._sign_row(account, row, state.next_nonce, gas, fees)
                row.signed_at = row.updated_at = now
                row.chain_genesis = self.genesis  # signed for this chain: its row now
                session.add(row)
                state.next_nonce += 1
        session.add(state)

    def _sign_row(
        self, account: LocalAccount, row: OutboxTx, nonce: int, gas: int, fees: Fees
    ) -> None:
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": nonce,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "value": int(row.value_wei),
            "data": row.data,
            "type": 2,
        }
        if row.to_address:
            tx["to"] = row.to_address
        signed = account.sign_transaction(tx)
        row.nonce = nonce
        row.gas_limit = gas
        row.max_fee_per_gas = fees.max_fee_per_gas
        row.max_priority_fee_per_gas = fees.max_priority_fee_per_gas
        row.raw_tx = "0x" + bytes(signed.raw_transaction).hex()
        row.tx_hash = "0x" + bytes(signed.hash).hex()
        row.status = TxStatus.SIGNED.value

    def _resign(self, session: Session, row: OutboxTx) -> bool:
        """Sign ``row`` again for its nonce at today's fees (at least 12.5% above its own,
        as nodes ask of a replacement); keeps the earlier signature. False: cannot sign."""
        if row.nonce is None or row.gas_limit is None or row.tx_hash is None:
            return False  # signed by its own wallet: only its owner can sign it again
        replaced = json.loads(row.replaced_json or "[]")
        if len(replaced) + 1 >= MAX_SIGNATURES:
            return False  # the node keeps refusing: left to an operator (last_error)
        now = self._fees()
        old_fee, old_tip = row.max_fee_per_gas or 0, row.max_priority_fee_per_gas or 0
        fees = Fees(
            max_fee_per_gas=max(now.max_fee_per_gas, old_fee * 9 // 8 + 1),
            max_priority_fee_per_gas=max(now.max_priority_fee_per_gas, old_tip * 9 // 8 + 1),
        )
        replaced.append([row.tx_hash, row.raw_tx])
        try:
            with self.signer.signer(row.sender) as account:
                self._sign_row(account, row, row.nonce, row.gas_limit, fees)
        except Exception as exc:  # not a custodial account: nothing to sign with
            log.warning("cannot sign outbox tx %s again: %s", row.id, exc)
            return False
        row.replaced_json = json.dumps(replaced)
        log.info(
            "outbox tx %s (nonce %s of %s) signed again at max fee %s",
            row.id,
            row.nonce,
            row.sender,
            fees.max_fee_per_gas,
        )
        self._touch(session, row, commit=False)
        return True

    # ---- signed -> sent --------------------------------------------------------------

    def _send_signed(self, sender: str) -> None:
        """Broadcast in one JSON-RPC batch, read the answers in nonce order, one commit.

        The rows after one the node refused stay ``signed`` although it has them (as
        later nonces, which it holds until the gap is filled): the next pass sends them
        again and hears "already known". A crash before the commit leaves the rows
        ``signed`` the same way, or finds them mined ("nonce too low", a receipt to find).
        """
        sent = 0
        with Session(self.engine) as session:
            rows = self._rows(session, sender, TxStatus.SIGNED.value)
            # One request for them all: a request each cost the worker more than signing.
            replies = self.rpc.batch([("eth_sendRawTransaction", [r.raw_tx]) for r in rows])
            for row, reply in zip(rows, replies, strict=True):
                outcome = self._broadcast(session, row, reply)
                if outcome == "stale":
                    self._nonce_taken(session, row)
                    return
                if outcome == "refused":
                    break  # later nonces cannot be mined before this one
                if outcome == "sent":
                    sent += 1
            session.commit()
        for _ in range(sent):
            self._crash("sent")

    def _broadcast(self, session: Session, row: OutboxTx, answer: Any = None) -> str:
        """Send the row's bytes: "sent", "finished" (it was mined), "stale" (its nonce was
        used by another transaction) or "refused" (the node said no; recorded on the row).

        ``answer``: what the node already answered to these bytes (sent in a batch)."""
        for attempt in range(2):
            try:
                if attempt or answer is None:
                    self.rpc.call("eth_sendRawTransaction", row.raw_tx)
                elif isinstance(answer, RpcError):
                    raise answer
            except RpcError as exc:
                if _is_nonce_too_low(exc):
                    receipt = self._receipt_of_any(row)
                    if receipt is None:
                        return "stale"
                    self._finish(session, row, receipt, commit=False)
                    return "finished"
                if _is_already_known(exc):
                    break
                if attempt == 0 and _is_fee_too_low(exc) and self._resign(session, row):
                    continue  # the same nonce at today's fees
                row.attempts += 1
                row.last_error = exc.message[:500]
                self._touch(session, row, commit=False)
                if _is_underfunded(exc) and self.sponsor is not None:
                    needed = (row.gas_limit or 0) * (row.max_fee_per_gas or 0)
                    self.sponsor.ensure_funded(row.sender, needed + int(row.value_wei))
                return "refused"
            break
        self._crash("broadcast")
        row.status = TxStatus.SENT.value
        row.sent_at = utcnow()
        row.attempts += 1
        self._touch(session, row, commit=False)
        return "sent"

    def _nonce_taken(self, session: Session, row: OutboxTx) -> None:
        """The row's nonce was used by a transaction the outbox did not send.

        Only this row needs another nonce: the sender's later rows keep theirs, which stay
        valid (signing them again could mine them twice: their old bytes may be pending).
        A row signed by its own wallet cannot be signed again: it failed. Nor is a nonce
        filler: its nonce is used, which is all it was there for.
        """
        log.warning("nonce %s of %s was used elsewhere", row.nonce, row.sender)
        if row.nonce is None or row.function == NONCE_FILLER:
            self._fail(
                session,
                row,
                DecodedError("NonceUsedElsewhere", {"nonce": _nonce_of(row)}),
                commit=False,
            )
        else:
            self._requeue(session, row, "nonce used by another transaction; signed again")
            state = session.get(OutboxSender, row.sender)
            if state is not None:
                chain = int(self.rpc.call("eth_getTransactionCount", row.sender, "pending"), 16)
                counted = state.next_nonce if state.chain_genesis == self.genesis else None
                state.next_nonce = max(counted or 0, chain)
                state.chain_genesis = self.genesis
                session.add(state)
        session.commit()

    def _requeue(self, session: Session, row: OutboxTx, why: str) -> None:
        row.status = TxStatus.QUEUED.value
        row.nonce = row.raw_tx = row.tx_hash = row.replaced_json = None
        row.gas_limit = row.max_fee_per_gas = row.max_priority_fee_per_gas = None
        row.signed_at = row.sent_at = None
        row.last_error = why
        self._touch(session, row, commit=False)

    # ---- sent -> mined / failed ------------------------------------------------------

    def _collect_receipts(self, sender: str) -> int:
        finished = 0
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.001
        with Session(self.engine) as session:
            rows = self._rows(session, sender, TxStatus.SENT.value)
            while rows:
                receipts = self._receipts([r.tx_hash for r in rows])
                waiting = []
                for row, receipt in zip(rows, receipts, strict=True):
                    if receipt is None:
                        waiting.append(row)
                    else:
                        self._finish(session, row, receipt, commit=False)
                        finished += 1
                rows = waiting
                if not rows or time.monotonic() > deadline:
                    break  # the rest are finished on a later pass
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            session.commit()
        return finished

    def _receipts(self, hashes: Sequence[str | None]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for start in range(0, len(hashes), 500):
            replies = self.rpc.batch(
                [("eth_getTransactionReceipt", [h]) for h in hashes[start : start + 500]]
            )
            for reply in replies:
                if isinstance(reply, RpcError):
                    raise reply
                out.append(reply)
        return out

    def _receipt_of_any(self, row: OutboxTx) -> dict[str, Any] | None:
        """The receipt of whichever of the row's signatures was mined; the row then holds
        that signature as its own."""
        versions = signatures(row)
        for (tx_hash, raw), receipt in zip(
            versions, self._receipts([h for h, _ in versions]), strict=True
        ):
            if receipt is not None:
                if tx_hash != row.tx_hash:
                    others = [[h, r] for h, r in versions if h != tx_hash]
                    row.tx_hash, row.raw_tx = tx_hash, raw
                    row.replaced_json = json.dumps(others)
                return receipt
        return None

    def _finish(
        self, session: Session, row: OutboxTx, receipt: Mapping[str, Any], *, commit: bool = True
    ) -> None:
        row.block_number = int(receipt["blockNumber"], 16)
        row.block_hash = receipt["blockHash"]
        row.gas_used = int(receipt["gasUsed"], 16)
        row.mined_at = utcnow()
        if receipt.get("contractAddress"):
            row.contract_address = _checksum(receipt["contractAddress"])
        if int(receipt["status"], 16) == 1:
            row.status = TxStatus.MINED.value
            row.error_name = row.error_args_json = None
            self._touch(session, row, commit=commit)
        else:
            self._fail(session, row, self._replay_error(row), commit=commit)

    def _replay_error(self, row: OutboxTx) -> DecodedError:
        """Why a mined transaction reverted: replay it as a call on the block before."""
        call = {**_call(row), "gas": hex(row.gas_limit or 0)}
        try:
            self.rpc.call("eth_call", call, hex(max((row.block_number or 1) - 1, 0)))
        except RpcError as exc:
            return self._decode(exc)
        if row.gas_used is not None and row.gas_limit is not None and row.gas_used >= row.gas_limit:
            return DecodedError("OutOfGas", {"gasLimit": row.gas_limit})
        return DecodedError("Reverted")

    def _decode(self, error: RpcError) -> DecodedError:
        return self.errors.decode(error.revert_data) or DecodedError(
            "Reverted", {"message": error.message}
        )

    def _fail(
        self, session: Session, row: OutboxTx, error: DecodedError, *, commit: bool = True
    ) -> None:
        row.status = TxStatus.FAILED.value
        row.error_name = error.name
        row.error_args_json = json.dumps(error.args, default=str)
        log.info("outbox tx %s (%s.%s) failed: %s", row.id, row.contract, row.function, error)
        self._touch(session, row, commit=commit)

    # ---- the outbox as the chain's write-ahead log -----------------------------------

    def _reconcile_if_due(self) -> int:
        requested = self.reconcile_requests.is_set()
        full = requested or self._full_reconcile_due
        if not full and time.monotonic() < self._next_chain_check:
            return 0
        if not self._reconcile_lock.acquire(blocking=False):
            return 0  # another pass of this worker is at it
        try:
            self.reconcile_requests.clear()
            self._next_chain_check = time.monotonic() + self.chain_check_seconds
            report = self._reconcile_chain(full=full)
            # Only a complete one clears the debt (the node may fail midway: retried).
            self._full_reconcile_due = report.busy_senders > 0
            return report.remined + report.finished
        finally:
            self._reconcile_lock.release()

    def reconcile(self) -> ReconcileReport:
        """Bring the outbox in line with the chain now (see the module doc)."""
        with self._reconcile_lock:
            self.reconcile_requests.clear()
            report = self._reconcile_chain(full=True)
            self._full_reconcile_due = report.busy_senders > 0
            return report

    def _reconcile_chain(self, *, full: bool) -> ReconcileReport:
        """Find the rows recorded in blocks the node no longer has, then replay.

        Every block the outbox recorded a receipt in is compared with the node's block of
        that height: a periodic check looks at the receipts recorded since the previous
        one, a full one (start, request, node unreachable before) at those of the last
        ``recheck_window``, and both at any recorded above the node's head. (Comparing the
        highest block alone is not enough: writes mined again after a loss are recorded at
        heights the lost ones had.) A full one also takes every row in flight.
        """
        report = ReconcileReport()
        started = utcnow()
        since = (
            started - self.recheck_window
            if full or self._checked_until is None
            else self._checked_until - RECHECK_MARGIN
        )
        stale, reset = self._stale_blocks(since)
        report.lost_blocks = len(stale)
        if reset:
            report.reset = True
            top = max(stale)
            if self._reset_logged != top:
                self._reset_logged = top
                log.error(
                    "outbox: the node has none of the blocks the outbox recorded receipts in, "
                    "down to the first (another chain, or one restarted without its state): "
                    "nothing is sent again. `konbit verify` lists the rows."
                )
            stale = set()
        if not stale and not full:
            self._checked_until = started
            return report
        with Session(self.engine) as session:
            senders = {r.sender for r in self._recorded_in(session, stale)}
            if full:
                senders.update(
                    session.exec(
                        select(OutboxTx.sender)
                        .where(col(OutboxTx.status).in_(IN_FLIGHT))
                        .where(self._ours)
                        .distinct()
                    ).all()
                )
        held = self._hold_all(senders, report)
        try:
            # Read under the leases: no other pass signs for these senders meanwhile. Rows
            # stay held for the whole replay, which commits often: no reload after each.
            with Session(self.engine, expire_on_commit=False) as session:
                lost = sorted(
                    self._recorded_in(session, stale, held),
                    key=lambda r: (r.block_number or 0, r.id or 0),
                )
                in_flight = (
                    list(
                        session.exec(
                            select(OutboxTx)
                            .where(col(OutboxTx.sender).in_(held))
                            .where(col(OutboxTx.status).in_(IN_FLIGHT))
                            .where(self._ours)
                        ).all()
                    )
                    if full and held
                    else []
                )
                if lost:
                    log.warning(
                        "outbox: %d transactions were recorded mined in %d blocks the chain "
                        "no longer has; sending them again",
                        len(lost),
                        len(stale),
                    )
                if lost or in_flight:
                    self._replay(session, lost, in_flight, report)
        finally:
            for sender in held:
                self._release(sender)
                self._unhold(sender)
        if not report.busy_senders:  # else the rows of busy senders are found again
            self._checked_until = started
        if report.changed:
            log.info("outbox reconciled with the chain: %s", report)
        return report

    def _recorded_in(
        self, session: Session, blocks: set[tuple[int, str]], senders: set[str] | None = None
    ) -> list[OutboxTx]:
        """The rows recorded mined (or reverted) in ``blocks``, of ``senders`` if given."""
        wanted = {(n, h.lower()) for n, h in blocks}
        numbers = sorted({n for n, _ in blocks})
        out: list[OutboxTx] = []
        for start in range(0, len(numbers), BLOCK_PAGE):
            query = (
                select(OutboxTx)
                .where(col(OutboxTx.block_number).in_(numbers[start : start + BLOCK_PAGE]))
                .where(col(OutboxTx.block_hash).is_not(None))
                .where(col(OutboxTx.status).in_([TxStatus.MINED.value, TxStatus.FAILED.value]))
                .where(self._ours)
            )
            if senders is not None:
                query = query.where(col(OutboxTx.sender).in_(senders))
            out.extend(
                r
                for r in session.exec(query).all()
                if (r.block_number, (r.block_hash or "").lower()) in wanted
            )
        return out

    def _stale_blocks(self, since: datetime) -> tuple[set[tuple[int, str]], bool]:
        """The (number, hash) blocks the outbox recorded receipts in (since ``since``, or
        above the node's head) that the node no longer has; and whether it has none of
        the outbox's blocks down to the first (a reset: another chain)."""
        head = int(self.rpc.call("eth_blockNumber"), 16)
        recorded = and_(
            col(OutboxTx.block_hash).is_not(None),
            col(OutboxTx.block_number).is_not(None),
            col(OutboxTx.status).in_([TxStatus.MINED.value, TxStatus.FAILED.value]),
            self._ours,
        )
        with Session(self.engine) as session:
            blocks = {
                (int(n), str(h))
                for n, h in session.exec(
                    select(OutboxTx.block_number, OutboxTx.block_hash)
                    .where(recorded)
                    .where(or_(col(OutboxTx.mined_at) >= since, col(OutboxTx.block_number) > head))
                    .distinct()
                ).all()
                if n is not None
            }
            stale = self._not_on_chain(blocks, head)
            if not stale:
                return stale, False
            first = session.exec(
                select(OutboxTx.block_number, OutboxTx.block_hash)
                .where(recorded)
                .order_by(col(OutboxTx.block_number))
                .limit(1)
            ).first()
        reset = (
            first is not None
            and first[0] is not None
            and bool(self._not_on_chain({(int(first[0]), str(first[1]))}, head))
        )
        return stale, reset

    def _not_on_chain(self, blocks: set[tuple[int, str]], head: int) -> set[tuple[int, str]]:
        stale = {b for b in blocks if b[0] > head}
        ordered = sorted(b for b in blocks if b[0] <= head)
        for start in range(0, len(ordered), BLOCK_PAGE):
            page = ordered[start : start + BLOCK_PAGE]
            numbers = sorted({n for n, _ in page})
            replies = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
            hashes: dict[int, str | None] = {}
            for number, reply in zip(numbers, replies, strict=True):
                if isinstance(reply, RpcError):
                    raise reply
                hashes[number] = str(reply["hash"]).lower() if reply else None
            stale.update(b for b in page if hashes[b[0]] != b[1].lower())
        return stale

    def _hold_all(self, senders: Iterable[str], report: ReconcileReport) -> set[str]:
        held: set[str] = set()
        for sender in sorted(senders):
            if not self._hold(sender):
                report.busy_senders += 1
                continue
            if not self._claim(sender):
                self._unhold(sender)
                report.busy_senders += 1
                continue
            held.add(sender)
        return held

    def _replay(
        self,
        session: Session,
        lost: list[OutboxTx],
        in_flight: list[OutboxTx],
        report: ReconcileReport,
    ) -> None:
        """Steps 1 to 4 of the module doc, for the senders this worker holds."""
        rows = [*lost, *in_flight]
        senders = sorted({r.sender for r in rows})
        # The chain's nonces first, then the receipts: a transaction mined in between is
        # then found mined, never taken for one whose nonce another transaction used.
        counts = self.rpc.batch([("eth_getTransactionCount", [s, "latest"]) for s in senders])
        chain_nonce: dict[str, int] = {}
        for sender, count in zip(senders, counts, strict=True):
            if isinstance(count, RpcError):
                raise count
            chain_nonce[sender] = int(count, 16)
        hashes = [[h for h, _ in signatures(r)] for r in rows]
        receipts = self._receipts([h for hs in hashes for h in hs])
        order: dict[int, tuple[Any, ...]] = {}
        position = 0
        resend: list[OutboxTx] = []
        lost_ids = {id(r) for r in lost}
        # A row mined after the nonces were read (a crashed worker's last batch, still in
        # the node's pool) used its nonce: no gap to fill there. Kept apart from
        # chain_nonce, which alone may send a row back to be signed again: a receipt
        # found says nothing of the rows whose lookup came before it in the batch.
        used_nonce = dict(chain_nonce)
        for row, row_hashes in zip(rows, hashes, strict=True):
            found = receipts[position : position + len(row_hashes)]
            position += len(row_hashes)
            was_lost = id(row) in lost_ids
            if was_lost:
                report.lost += 1
            mined = next(
                ((h, rc) for h, rc in zip(row_hashes, found, strict=True) if rc is not None), None
            )
            if mined is not None:
                used_nonce[row.sender] = max(used_nonce[row.sender], _nonce_of(row) + 1)
                if mined[0] != row.tx_hash:
                    self._receipt_of_any(row)  # takes the mined signature as its own
                self._finish(session, row, mined[1], commit=False)
                if was_lost:
                    report.remined += 1
                else:
                    report.finished += 1
                continue
            nonce = _nonce_of(row)
            if nonce < chain_nonce[row.sender]:
                # Another transaction has this nonce now: the row is signed again later.
                if row.nonce is None:
                    self._fail(
                        session,
                        row,
                        DecodedError("NonceUsedElsewhere", {"nonce": nonce}),
                        commit=False,
                    )
                else:
                    self._requeue(session, row, "nonce used by another transaction; signed again")
                report.requeued += 1
                continue
            if was_lost:
                order[id(row)] = (0, row.block_number or 0, row.id or 0)
                lost_block = row.block_number
                row.status = TxStatus.SIGNED.value
                row.block_number = row.block_hash = row.gas_used = row.mined_at = None
                row.error_name = row.error_args_json = None
                row.last_error = f"block {lost_block} was lost by the chain; sent again"
                self._touch(session, row, commit=False)
            else:
                signed_at = _aware(row.signed_at) if row.signed_at is not None else utcnow()
                order[id(row)] = (1, signed_at, nonce, row.id or 0)
            resend.append(row)
        session.commit()

        fees = self._fees()
        for sender in senders:
            ours = [r for r in resend if r.sender == sender]
            fillers = self._repair_nonces(session, sender, fees, ours, used_nonce[sender])
            report.fillers += len(fillers)
            first = min((order[id(r)] for r in ours), default=(1, utcnow(), 0, 0))
            for filler in fillers:
                order[id(filler)] = first
            resend.extend(fillers)
        session.commit()
        self._broadcast_in_order(session, resend, order, report)

    def _repair_nonces(
        self,
        session: Session,
        sender: str,
        fees: Fees,
        resend: list[OutboxTx] | None = None,
        chain_nonce: int | None = None,
    ) -> list[OutboxTx]:
        """Fill the nonces between the chain's and the sender's in-flight rows that nothing
        holds; resync ``next_nonce``. Returns the filler rows (``signed``)."""
        if resend is None:
            resend = list(
                session.exec(
                    select(OutboxTx)
                    .where(OutboxTx.sender == sender)
                    .where(col(OutboxTx.status).in_(IN_FLIGHT))
                    .where(self._ours)
                ).all()
            )
        if chain_nonce is None:
            chain_nonce = int(self.rpc.call("eth_getTransactionCount", sender, "latest"), 16)
            lost = session.exec(
                select(func.count())
                .select_from(OutboxTx)
                .where(OutboxTx.sender == sender)
                .where(col(OutboxTx.status).in_([TxStatus.MINED.value, TxStatus.FAILED.value]))
                .where(col(OutboxTx.nonce) >= chain_nonce)
                .where(self._ours)
            ).one()
            if lost:  # rows recorded mined above the chain's nonce: lost blocks, not a gap
                self.request_reconcile()
                return []
        if any(r.nonce is None for r in resend):
            return []  # signed by its own wallet: its owner keeps its nonces
        held = {r.nonce for r in resend if r.nonce is not None}
        held_top = max(held, default=chain_nonce - 1)
        fillers: list[OutboxTx] = []
        gaps = [n for n in range(chain_nonce, held_top + 1) if n not in held]
        if gaps:
            log.warning(
                "outbox: %s has no transaction for nonces %s (sent outside the outbox and "
                "lost?); filling them with zero-value transfers to itself",
                sender,
                gaps,
            )
            try:
                with self.signer.signer(sender) as account:
                    for nonce in gaps:
                        fillers.append(self._filler(session, account, sender, nonce, fees))
            except Exception as exc:  # not a custodial account
                log.error("outbox: cannot fill the nonce gap of %s: %s", sender, exc)
                fillers = []
        state = session.get(OutboxSender, sender)
        if state is not None:
            state.next_nonce = max(chain_nonce, held_top + 1)
            state.chain_genesis = self.genesis
            session.add(state)
        return fillers

    def _filler(
        self, session: Session, account: LocalAccount, sender: str, nonce: int, fees: Fees
    ) -> OutboxTx:
        row = OutboxTx(
            idempotency_key=f"{NONCE_FILLER}:{sender}:{nonce}:{uuid.uuid4().hex}",
            request_hash=request_hash(sender, sender, "0x", 0),
            sender=sender,
            function=NONCE_FILLER,
            to_address=sender,
            chain_genesis=self.genesis,
        )
        self._sign_row(account, row, nonce, 21_000, fees)
        row.signed_at = utcnow()
        row.last_error = "fills a nonce no transaction holds"
        session.add(row)
        session.flush()
        return row

    def _broadcast_in_order(
        self,
        session: Session,
        rows: list[OutboxTx],
        order: Mapping[int, tuple[Any, ...]],
        report: ReconcileReport,
    ) -> None:
        """Send ``rows`` in their first order on the chain, each sender in nonce order.

        After a row that had been mined, the next sender's row waits for its receipt (up
        to ``replay_wait``), so that it lands after it again. Rows that had not been mined
        yet had no place in the chain to keep: they go out at once, as in a normal pass.
        """
        ranked = sorted(rows, key=lambda r: order[id(r)])
        # Each sender keeps its places in the sequence, filled in nonce order.
        by_sender: dict[str, list[OutboxTx]] = defaultdict(list)
        for row in ranked:
            by_sender[row.sender].append(row)
        for sender_rows in by_sender.values():
            sender_rows.sort(key=_nonce_of)
        cursor = {sender: iter(sender_rows) for sender, sender_rows in by_sender.items()}
        sequence = [next(cursor[row.sender]) for row in ranked]
        stopped: set[str] = set()
        renew_at = time.monotonic() + self.lease.total_seconds() / 3
        for i, row in enumerate(sequence):
            if time.monotonic() > renew_at:  # a long replay keeps its senders
                renew_at = time.monotonic() + self.lease.total_seconds() / 3
                for sender in by_sender:
                    self._claim(sender)
            if row.sender in stopped:
                continue
            outcome = self._broadcast(session, row)
            if outcome == "stale":
                self._nonce_taken(session, row)
                report.requeued += 1
            elif outcome == "refused":
                stopped.add(row.sender)  # the normal passes go on from here
            else:
                report.resent += outcome == "sent"
            session.commit()
            following = sequence[i + 1] if i + 1 < len(sequence) else None
            if (
                outcome == "sent"
                and order[id(row)][0] == 0  # it had been mined: its place in the chain counts
                and following is not None
                and following.sender != row.sender
            ):
                self._await_receipt(session, row)

    def _await_receipt(self, session: Session, row: OutboxTx) -> None:
        """Wait (up to ``replay_wait``) until ``row`` is mined, so that the next sender's
        transaction, which may depend on it, lands after it as it did the first time."""
        deadline = time.monotonic() + self.replay_wait
        delay = 0.002
        while True:
            (receipt,) = self._receipts([row.tx_hash])
            if receipt is not None:
                self._finish(session, row, receipt)
                return
            if time.monotonic() > deadline:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    # ---- helpers ---------------------------------------------------------------------

    def _touch(self, session: Session, row: OutboxTx, *, commit: bool = True) -> None:
        row.updated_at = utcnow()
        session.add(row)
        if commit:
            session.commit()

    def _fees(self) -> Fees:
        block, tip = self.rpc.batch(
            [("eth_getBlockByNumber", ["latest", False]), ("eth_maxPriorityFeePerGas", [])]
        )
        if isinstance(block, RpcError):
            raise block
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        priority = 1_000_000_000 if isinstance(tip, RpcError) else int(tip, 16)
        return Fees(max_fee_per_gas=2 * base + priority, max_priority_fee_per_gas=priority)

    def _crash(self, step: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(step)


def _nonce_of(row: OutboxTx) -> int:
    """The row's nonce; a transaction signed by its own wallet carries it in its bytes."""
    if row.nonce is not None:
        return row.nonce
    assert row.raw_tx is not None
    return raw_nonce(row.raw_tx)


def _call(row: OutboxTx) -> dict[str, Any]:
    call: dict[str, Any] = {"from": row.sender, "data": row.data, "value": hex(int(row.value_wei))}
    if row.to_address:
        call["to"] = row.to_address
    return call


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive (they were stored in UTC)."""
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
