"""The outbox against the chain, for ``konbit verify``.

The outbox is the chain's write-ahead log, so the two must agree:

* every row recorded ``mined`` (or ``failed`` with a receipt) has that receipt on the
  chain, in the recorded block, with the recorded outcome;
* per custodial sender, the nonces leave no gap: the rows still in flight hold every
  nonce from the chain's next one up, and the outbox's ``next_nonce`` is not past them
  (a gap would keep every later transaction of the sender waiting forever);
* no row in flight holds a nonce the chain has used for another transaction.

Rows in flight are not mismatches by themselves: a running worker has some. A
transaction mined but not yet recorded is not one either. Only the rows of the node's
chain (and those naming no chain) are compared: rows of another chain instance with the
same id are not this chain's business (konbit.services.chains).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.chain.rpc import RpcClient, RpcError
from konbit.outbox.models import IN_FLIGHT, OutboxSender, OutboxTx, TxStatus

BATCH = 500


@dataclass(frozen=True)
class OutboxMismatch:
    """One way the outbox and the chain disagree."""

    sender: str
    problem: str
    tx_id: int | None = None
    label: str | None = None
    nonce: int | None = None

    def __str__(self) -> str:
        what = f"outbox tx {self.tx_id}" if self.tx_id is not None else "outbox"
        details = [d for d in (self.label, f"sender {self.sender}") if d]
        if self.nonce is not None:
            details.append(f"nonce {self.nonce}")
        return f"{what} ({', '.join(details)}): {self.problem}"


@dataclass
class OutboxAudit:
    checked: dict[str, int] = field(default_factory=dict)
    mismatches: list[OutboxMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _label(row: OutboxTx) -> str:
    if row.contract and row.function:
        return f"{row.contract}.{row.function}"
    return row.function or ("create" if row.to_address is None else "transfer")


def _batch(rpc: RpcClient, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(calls), BATCH):
        for reply in rpc.batch(calls[start : start + BATCH]):
            if isinstance(reply, RpcError):
                raise reply
            out.append(reply)
    return out


def audit(engine: Engine, rpc: RpcClient) -> OutboxAudit:
    """Compare the outbox with the chain; the report lists every mismatch."""
    report = OutboxAudit()
    genesis = rpc.genesis()
    ours = or_(col(OutboxTx.chain_genesis) == genesis, col(OutboxTx.chain_genesis).is_(None))
    with Session(engine) as session:
        mined = list(
            session.exec(
                select(OutboxTx)
                .where(col(OutboxTx.status).in_([TxStatus.MINED.value, TxStatus.FAILED.value]))
                .where(col(OutboxTx.block_number).is_not(None))
                .where(col(OutboxTx.tx_hash).is_not(None))
                .where(ours)
                .order_by(col(OutboxTx.id))
            ).all()
        )
        in_flight = list(
            session.exec(
                select(OutboxTx)
                .where(col(OutboxTx.status).in_(IN_FLIGHT))
                .where(ours)
                .order_by(col(OutboxTx.sender), col(OutboxTx.nonce), col(OutboxTx.id))
            ).all()
        )
        states = {
            s.sender: s
            for s in session.exec(select(OutboxSender)).all()
            if s.chain_genesis in (None, genesis)
        }
    report.checked["outbox mined"] = len(mined)
    report.checked["outbox in flight"] = len(in_flight)
    _check_receipts(rpc, mined, report)
    _check_nonces(rpc, in_flight, states, report)
    return report


def _check_receipts(rpc: RpcClient, rows: list[OutboxTx], report: OutboxAudit) -> None:
    receipts = _batch(rpc, [("eth_getTransactionReceipt", [r.tx_hash]) for r in rows])
    for row, receipt in zip(rows, receipts, strict=True):
        where = f"block {row.block_number}"
        if receipt is None:
            report.mismatches.append(
                OutboxMismatch(
                    row.sender,
                    f"recorded {row.status} in {where}; the chain has no receipt for "
                    f"{row.tx_hash} (a lost block not sent again?)",
                    row.id,
                    _label(row),
                    row.nonce,
                )
            )
            continue
        if str(receipt.get("blockHash", "")).lower() != (row.block_hash or "").lower():
            report.mismatches.append(
                OutboxMismatch(
                    row.sender,
                    f"recorded in {where} ({row.block_hash}); the chain has it in block "
                    f"{int(receipt['blockNumber'], 16)} ({receipt.get('blockHash')})",
                    row.id,
                    _label(row),
                    row.nonce,
                )
            )
        succeeded = int(receipt.get("status", "0x0"), 16) == 1
        if succeeded != (row.status == TxStatus.MINED.value):
            report.mismatches.append(
                OutboxMismatch(
                    row.sender,
                    f"recorded {row.status}; the chain's receipt says "
                    f"{'success' if succeeded else 'reverted'}",
                    row.id,
                    _label(row),
                    row.nonce,
                )
            )


def _check_nonces(
    rpc: RpcClient,
    in_flight: list[OutboxTx],
    states: dict[str, OutboxSender],
    report: OutboxAudit,
) -> None:
    flying: dict[str, list[OutboxTx]] = defaultdict(list)
    for row in in_flight:
        if row.nonce is not None:  # own-wallet transactions keep their owner's nonces
            flying[row.sender].append(row)
    allocated = {s: st.next_nonce for s, st in states.items() if st.next_nonce is not None}
    senders = sorted(set(flying) | set(allocated))
    report.checked["outbox senders"] = len(senders)
    if not senders:
        return
    counts = _batch(rpc, [("eth_getTransactionCount", [s, "latest"]) for s in senders])
    chain_nonce = {s: int(c, 16) for s, c in zip(senders, counts, strict=True)}
    low = [r for s in senders for r in flying[s] if (r.nonce or 0) < chain_nonce[s]]
    receipts = _batch(rpc, [("eth_getTransactionReceipt", [r.tx_hash]) for r in low])
    used_elsewhere = {id(r) for r, rc in zip(low, receipts, strict=True) if rc is None}
    for sender in senders:
        nonce = chain_nonce[sender]
        rows = flying[sender]
        for row in rows:
            if id(row) in used_elsewhere:
                report.mismatches.append(
                    OutboxMismatch(
                        sender,
                        f"{row.status} with nonce {row.nonce}, which the chain has used for "
                        "another transaction",
                        row.id,
                        _label(row),
                        row.nonce,
                    )
                )
        held = {r.nonce for r in rows if r.nonce is not None}
        top = max(held, default=nonce - 1)
        missing = [n for n in range(nonce, top + 1) if n not in held]
        if missing:
            report.mismatches.append(
                OutboxMismatch(
                    sender,
                    f"nonce gap: the chain's next nonce is {nonce}, rows are in flight up to "
                    f"{top}, and no row holds {_ranges(missing)}: they cannot be mined",
                )
            )
        next_nonce = allocated.get(sender)
        if next_nonce is not None and next_nonce > max(nonce, top + 1):
            report.mismatches.append(
                OutboxMismatch(
                    sender,
                    f"the outbox's next nonce is {next_nonce} but the chain's is {nonce} and "
                    f"no row holds {_ranges(list(range(max(nonce, top + 1), next_nonce)))}: "
                    "the next transaction would wait forever",
                )
            )


def _ranges(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"nonce {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"nonces {numbers[0]}..{numbers[-1]}"
    return "nonces " + ", ".join(str(n) for n in numbers)
