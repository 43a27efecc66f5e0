"""Payout receipts: what a farmer was paid for a settled order, and a code to check it.

A receipt is derived from the mirrored settlement alone (``payout`` rows): the farmer's
lots and the amounts ``FarmerPaid`` pushed for them (the net), and the farmer's pro-rata
share of each deduction of the waterfall (advance repayment to the financier, transport,
cooperative fee), by eligible grams. The sale value is the net plus those shares, so the
receipt adds up exactly.

The receipt code is the order id followed by six check digits derived from the chain id,
the order, the farmer, the lots and the net (``7-482913``; digits only, so it can be typed
on a USSD keypad). :func:`check` finds the receipt a code names and confirms it against
the chain: the ``FarmerPaid`` logs of the settlement transactions, read from the node,
must carry exactly the mirrored payouts, from the deployed ``SaleEscrow``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from eth_utils import keccak
from sqlmodel import Session, col, select

from konbit.chain.contracts import konbit_event_decoder
from konbit.mirror.models import OrderStatus, Payout, SaleOrder
from konbit.runtime import Runtime
from konbit.services.errors import ChainUnavailable

CHECK_DIGITS = 6
#: Waterfall kinds a farmer's receipt shows as deductions, in the waterfall's order.
DEDUCTIONS = ("financier", "carrier", "cooperative_fee")


@dataclass(frozen=True)
class LotPaid:
    lot_id: int
    grams: int
    amount: int


@dataclass(frozen=True)
class Receipt:
    """A farmer's payout for one settled order (token minor units, grams)."""

    chain_id: int
    order_id: int
    farmer: str
    token: str
    lots: tuple[LotPaid, ...]
    sale: int
    advance: int
    transport: int
    cooperative_fee: int
    net: int
    tx_hashes: tuple[str, ...]
    block_number: int

    @property
    def grams(self) -> int:
        return sum(lot.grams for lot in self.lots)

    @property
    def check_digits(self) -> str:
        body = ":".join(
            [
                "konbit-receipt",
                str(self.chain_id),
                str(self.order_id),
                self.farmer.lower(),
                ",".join(f"{lot.lot_id}/{lot.grams}/{lot.amount}" for lot in self.lots),
                str(self.net),
            ]
        )
        number = int.from_bytes(keccak(text=body)[:8], "big") % 10**CHECK_DIGITS
        return f"{number:0{CHECK_DIGITS}d}"

    @property
    def code(self) -> str:
        """``<order>-<six digits>``, as printed (:func:`parse_code` takes it without the dash)."""
        return f"{self.order_id}-{self.check_digits}"


@dataclass(frozen=True)
class ReceiptCheck:
    receipt: Receipt
    on_chain: bool
    problems: list[str] = field(default_factory=list)


def parse_code(code: str) -> tuple[int, str] | None:
    """(order id, check digits) of a code typed with or without separators, or None."""
    digits = "".join(c for c in code if c not in " -*#.")
    if not digits.isascii() or not digits.isdigit() or len(digits) <= CHECK_DIGITS:
        return None
    if len(digits) > CHECK_DIGITS + 19:
        return None
    order = int(digits[:-CHECK_DIGITS])
    return (order, digits[-CHECK_DIGITS:]) if order >= 1 else None


def receipts_for_order(runtime: Runtime, order_id: int) -> list[Receipt]:
    """Every farmer's receipt for a settled order (none before it is settled)."""
    with Session(runtime.engine) as session:
        order = session.get(SaleOrder, order_id)
        if order is None or order.status != OrderStatus.SETTLED:
            return []
        rows = session.exec(
            select(Payout)
            .where(Payout.order_id == order_id)
            .order_by(col(Payout.block_number), col(Payout.log_index))
        ).all()
    return _receipts(runtime.chain_id, order, list(rows))


def receipt_for(runtime: Runtime, order_id: int, farmer: str) -> Receipt | None:
    for receipt in receipts_for_order(runtime, order_id):
        if receipt.farmer.lower() == farmer.lower():
            return receipt
    return None


def farmer_receipts(runtime: Runtime, farmer: str, limit: int = 20) -> list[Receipt]:
    """The farmer's receipts, newest order first."""
    with Session(runtime.engine) as session:
        orders = session.exec(
            select(Payout.order_id)
            .where(Payout.payee == farmer, Payout.kind == "farmer")
            .distinct()
            .order_by(col(Payout.order_id).desc())
            .limit(limit)
        ).all()
    out = []
    for order_id in orders:
        receipt = receipt_for(runtime, order_id, farmer)
        if receipt is not None:
            out.append(receipt)
    return out


def _receipts(chain_id: int, order: SaleOrder, rows: list[Payout]) -> list[Receipt]:
    waterfall: dict[str, int] = defaultdict(int)
    by_farmer: dict[str, list[Payout]] = defaultdict(list)
    for row in rows:
        if row.kind == "farmer":
            by_farmer[row.payee].append(row)
        elif row.kind in DEDUCTIONS:
            waterfall[row.kind] += int(row.amount)
    eligible = sum(int(r.grams or 0) for paid in by_farmer.values() for r in paid)
    out = []
    for farmer, paid in by_farmer.items():
        grams = sum(int(r.grams or 0) for r in paid)
        shares = {
            kind: (waterfall[kind] * grams // eligible) if eligible else 0 for kind in DEDUCTIONS
        }
        net = sum(int(r.amount) for r in paid)
        out.append(
            Receipt(
                chain_id=chain_id,
                order_id=order.order_id,
                farmer=farmer,
                token=order.token,
                lots=tuple(
                    LotPaid(int(r.lot_id or 0), int(r.grams or 0), int(r.amount)) for r in paid
                ),
                sale=net + sum(shares.values()),
                advance=shares["financier"],
                transport=shares["carrier"],
                cooperative_fee=shares["cooperative_fee"],
                net=net,
                tx_hashes=tuple(dict.fromkeys(r.tx_hash for r in paid)),
                block_number=max(r.block_number for r in paid),
            )
        )
    return out


def find(runtime: Runtime, code: str) -> Receipt | None:
    """The receipt a code names (from the mirror), or None."""
    parsed = parse_code(code)
    if parsed is None:
        return None
    order_id, digits = parsed
    for receipt in receipts_for_order(runtime, order_id):
        if receipt.check_digits == digits:
            return receipt
    return None


def check(runtime: Runtime, code: str) -> ReceiptCheck | None:
    """The receipt a code names, confirmed against the chain's logs; None when unknown."""
    receipt = find(runtime, code)
    if receipt is None:
        return None
    return ReceiptCheck(receipt, *_on_chain(runtime, receipt))


def _on_chain(runtime: Runtime, receipt: Receipt) -> tuple[bool, list[str]]:
    book = runtime.address_book()
    if book is None:
        return False, ["nothing is deployed on this chain"]
    escrow = book.address("SaleEscrow").lower()
    try:
        replies = runtime.rpc.batch([("eth_getTransactionReceipt", [h]) for h in receipt.tx_hashes])
    except Exception as exc:  # connection errors of the node
        raise ChainUnavailable(f"the chain node cannot be reached: {exc}") from None
    decoder = konbit_event_decoder()
    seen: list[LotPaid] = []
    problems: list[str] = []
    for tx_hash, reply in zip(receipt.tx_hashes, replies, strict=True):
        if not isinstance(reply, dict) or reply.get("status") != "0x1":
            problems.append(f"transaction {tx_hash} is not a successful one on this chain")
            continue
        for log in reply.get("logs", []):
            if str(log.get("address", "")).lower() != escrow:
                continue
            event = decoder.decode(log["topics"], log["data"])
            if event is None or event.name != "FarmerPaid":
                continue
            a = event.args
            if a["orderId"] == receipt.order_id and a["farmer"].lower() == receipt.farmer.lower():
                seen.append(LotPaid(a["lotId"], a["grams"], a["amount"]))
    if sorted(seen, key=lambda p: p.lot_id) != sorted(receipt.lots, key=lambda p: p.lot_id):
        problems.append("the chain's FarmerPaid logs do not match the receipt")
    return not problems, problems
