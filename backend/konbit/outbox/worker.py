"""The outbox worker: sign, send in nonce order per sender, wait, record; reconcile crashes.

Each step ends in a commit, so a crash leaves every row in a state the next pass finishes:

* ``queued`` -> estimate gas, allocate the nonce, sign -> ``signed`` (nonces and rows
  commit together: no gap, no reuse). A revert at estimation fails the row without using
  a nonce, unless earlier transactions of the same sender are still in flight: then the
  row waits for them and is estimated again.
* ``signed`` -> broadcast the stored raw bytes -> ``sent``. A ``signed`` row found after a
  crash is broadcast again as the same bytes: the node takes it, already has it, or has
  mined it (then the receipt says so).
* ``sent`` -> receipt -> ``mined``, or ``failed`` with the custom error decoded.

Nonces come from ``outbox_sender.next_nonce``, allocated under a row lock (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite serialises writers). When the node answers "nonce too
low" for a transaction it never mined, the sender's unmined transactions go back to
``queued`` and the nonce is resynced from the chain.

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
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from konbit.chain.contracts import DecodedError, ErrorDecoder
from konbit.chain.rpc import RpcClient, RpcError
from konbit.outbox.models import IN_FLIGHT, PENDING, OutboxSender, OutboxTx, TxStatus, utcnow

log = logging.getLogger(__name__)

#: Crash hook for tests: ``KONBIT_OUTBOX_CRASH_AT=signed:3`` ends the process with
#: ``os._exit(75)`` when the third transaction reaches that step (``signed``: committed
#: signed, not sent; ``broadcast``: sent, not recorded; ``sent``: recorded, no receipt).
CRASH_ENV = "KONBIT_OUTBOX_CRASH_AT"
CRASH_EXIT_CODE = 75
HOST = socket.gethostname()[:40]


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


def _says(error: RpcError, *phrases: str) -> bool:
    message = error.message.lower()
    return any(p in message for p in phrases)


def _is_nonce_too_low(error: RpcError) -> bool:
    return _says(error, "nonce too low", "nonce has already been used")


def _is_already_known(error: RpcError) -> bool:
    return _says(error, "already known", "already imported", "known transaction")


def _is_underfunded(error: RpcError) -> bool:
    return _says(error, "insufficient funds", "lack of funds")


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
        self.crash_hook = crash_hook or _crash_hook_from_env()
        self.worker_id = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.chain_id = int(rpc.call("eth_chainId"), 16)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="outbox")
        # The lease keeps other workers off a sender; this keeps this worker's own
        # concurrent passes (run_forever beside drain) off it.
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    # ---- loop -----------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass over every sender with pending rows; returns how many rows finished."""
        with Session(self.engine) as session:
            senders = session.exec(
                select(OutboxTx.sender).where(col(OutboxTx.status).in_(PENDING)).distinct()
            ).all()
        if not senders:
            return 0
        fees = self._fees()
        return sum(self._pool.map(lambda s: self._process_sender(s, fees), senders))

    def pending(self) -> int:
        with Session(self.engine) as session:
            return session.exec(
                select(func.count()).select_from(OutboxTx).where(col(OutboxTx.status).in_(PENDING))
            ).one()

    def drain(self, timeout: float = 120.0, poll: float = 0.02) -> None:
        """Run until nothing is pending (tests, deploys, CLI one-shots)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"outbox still has {self.pending()} pending after {timeout}s")
            if not self.run_once():
                time.sleep(poll)

    def run_forever(self, stop: threading.Event, poll: float = 0.2) -> None:
        log.info("outbox worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                if not self.run_once():
                    stop.wait(poll)
            except Exception:  # keep serving; every row keeps its state
                log.exception("outbox pass failed; retrying")
                stop.wait(1.0)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # ---- one sender -----------------------------------------------------------------

    def _process_sender(self, sender: str, fees: Fees) -> int:
        with self._busy_lock:
            if sender in self._busy:
                return 0
            self._busy.add(sender)
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
                .order_by(col(OutboxTx.nonce) if by_nonce else col(OutboxTx.id), col(OutboxTx.id))
                .limit(self.batch)
            ).all()
        )

    # ---- reconcile after a crash or a lost broadcast ---------------------------------

    def _reconcile(self, sender: str) -> int:
        """Finish ``sent`` rows whose receipt exists; send again those the node lost."""
        finished = 0
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
            session.commit()
        return finished

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
        ).one()
        return count > 0

    def _allocate_and_sign(
        self, session: Session, sender: str, ready: list[tuple[OutboxTx, int]], fees: Fees
    ) -> None:
        state = session.exec(
            select(OutboxSender).where(OutboxSender.sender == sender).with_for_update()
        ).one()
        if state.next_nonce is None:
            state.next_nonce = int(self.rpc.call("eth_getTransactionCount", sender, "pending"), 16)
        now = utcnow()
        with self.signer.signer(sender) as account:
            for row, gas in ready:
                tx: dict[str, Any] = {
                    "chainId": self.chain_id,
                    "nonce": state.next_nonce,
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
                row.nonce = state.next_nonce
                row.gas_limit = gas
                row.max_fee_per_gas = fees.max_fee_per_gas
                row.max_priority_fee_per_gas = fees.max_priority_fee_per_gas
                row.raw_tx = "0x" + bytes(signed.raw_transaction).hex()
                row.tx_hash = "0x" + bytes(signed.hash).hex()
                row.status = TxStatus.SIGNED.value
                row.signed_at = row.updated_at = now
                session.add(row)
                state.next_nonce += 1
        session.add(state)

    # ---- signed -> sent --------------------------------------------------------------

    def _send_signed(self, sender: str) -> None:
        """Broadcast in nonce order, one commit for the batch.

        A crash before that commit leaves the rows ``signed``: the next pass sends the same
        bytes again, and the node answers "already known" or, once mined, "nonce too low"
        with a receipt to find.
        """
        sent = 0
        with Session(self.engine) as session:
            for row in self._rows(session, sender, TxStatus.SIGNED.value):
                try:
                    self.rpc.call("eth_sendRawTransaction", row.raw_tx)
                except RpcError as exc:
                    if _is_nonce_too_low(exc):
                        (receipt,) = self._receipts([row.tx_hash])
                        if receipt is None:
                            self._resync(session, row)
                            return
                        self._finish(session, row, receipt, commit=False)
                        continue
                    if not _is_already_known(exc):
                        row.attempts += 1
                        row.last_error = exc.message[:500]
                        self._touch(session, row, commit=False)
                        if _is_underfunded(exc) and self.sponsor is not None:
                            needed = (row.gas_limit or 0) * (row.max_fee_per_gas or 0)
                            self.sponsor.ensure_funded(sender, needed)
                        break  # later nonces cannot be mined before this one
                self._crash("broadcast")
                row.status = TxStatus.SENT.value
                row.sent_at = utcnow()
                row.attempts += 1
                self._touch(session, row, commit=False)
                sent += 1
            session.commit()
        for _ in range(sent):
            self._crash("sent")

    def _resync(self, session: Session, row: OutboxTx) -> None:
        """The nonce was used by a transaction we did not send: sign again from the chain's."""
        log.warning("nonce %s of %s was used elsewhere; resyncing", row.nonce, row.sender)
        for stale in self._rows(session, row.sender, *IN_FLIGHT):
            if stale.nonce is not None and row.nonce is not None and stale.nonce >= row.nonce:
                stale.status = TxStatus.QUEUED.value
                stale.nonce = stale.raw_tx = stale.tx_hash = None
                stale.last_error = "nonce used elsewhere; signed again with a fresh nonce"
                session.add(stale)
        state = session.get(OutboxSender, row.sender)
        if state is not None:
            state.next_nonce = None
            session.add(state)
        session.commit()

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

    def _receipts(self, hashes: list[str | None]) -> list[dict[str, Any] | None]:
        replies = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        out: list[dict[str, Any] | None] = []
        for reply in replies:
            if isinstance(reply, RpcError):
                raise reply
            out.append(reply)
        return out

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


def _call(row: OutboxTx) -> dict[str, Any]:
    call: dict[str, Any] = {"from": row.sender, "data": row.data, "value": hex(int(row.value_wei))}
    if row.to_address:
        call["to"] = row.to_address
    return call


def _checksum(address: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
