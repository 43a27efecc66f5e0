"""``konbit verify``: compare the SQL projection with contract state, read at the cursor block.

Reads every lot, consignment, order, advance, job and farmer the projection knows through
the contracts' view functions (eth_call batched over the lean RPC client), the counters
(so rows missing from SQL show too), each order's settlement and held amount, and the
escrow's token balance against the deposits minus the payouts recorded in SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from konbit.chain.contracts import FunctionCodec
from konbit.chain.rpc import RpcError
from konbit.mirror.models import (
    Advance,
    BlockHeader,
    Consignment,
    EscrowMovement,
    Farmer,
    Lot,
    MirrorCursor,
    OrderStatus,
    Payout,
    SaleOrder,
    TransportJob,
)

ZERO = "0x" + "00" * 20
ZERO_HASH = "0x" + "00" * 32
BATCH = 500


@dataclass(frozen=True)
class Mismatch:
    """One value that differs between SQL and the chain."""

    entity: str
    key: Any
    field: str
    sql: Any
    chain: Any

    def __str__(self) -> str:
        where = f"{self.entity} {self.key}: {self.field}"
        return f"{where} is {self.sql!r} in SQL, {self.chain!r} on chain"


@dataclass
class VerifyReport:
    block: int = -1
    checked: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _addr(value: str | None) -> str:
    return value if value is not None else ZERO


class _Reader:
    def __init__(self, runtime: Any, block: int) -> None:
        self.rpc = runtime.rpc
        self.book = runtime.address_book()
        self.tag = hex(block)

    def calls(
        self, contract: str, function: str, args: Iterable[Sequence[Any]]
    ) -> list[tuple[Any, ...] | None]:
        codec = FunctionCodec(contract, function)
        to = self.book.address(contract)
        requests = [("eth_call", [{"to": to, "data": codec.encode(*a)}, self.tag]) for a in args]
        out: list[tuple[Any, ...] | None] = []
        for start in range(0, len(requests), BATCH):
            for reply in self.rpc.batch(requests[start : start + BATCH]):
                out.append(None if isinstance(reply, RpcError) else codec.decode(reply))
        return out

    def one(self, contract: str, function: str, *args: Any) -> tuple[Any, ...]:
        value = self.calls(contract, function, [args])[0]
        if value is None:
            raise RuntimeError(f"{contract}.{function} failed")
        return value


def verify(runtime: Any) -> VerifyReport:
    """Compare the projection with the chain; the report lists every mismatch."""
    report = VerifyReport()
    with runtime.engine.connect() as conn:
        cursor = conn.execute(select(MirrorCursor.__table__)).mappings().first()  # type: ignore[attr-defined]
        if cursor is None:
            report.mismatches.append(Mismatch("mirror", "cursor", "last_block", None, "any"))
            return report
        report.block = int(cursor["last_block"])
        if not _cursor_on_chain(conn, runtime, cursor, report):
            return report  # nothing to read the contracts at
        reader = _Reader(runtime, report.block)
        for check in _CHECKS:
            check(conn, reader, report)
    return report


def _cursor_on_chain(conn: Connection, runtime: Any, cursor: Any, report: VerifyReport) -> bool:
    """The block the projection stands on must be the chain's (a node that lost blocks, or
    a reorg, not yet followed by the mirror: it rolls back on its next pass)."""
    block = runtime.rpc.call("eth_getBlockByNumber", hex(report.block), False)
    if block is None:
        head = int(runtime.rpc.call("eth_blockNumber"), 16)
        report.mismatches.append(Mismatch("mirror", "cursor", "last_block", report.block, head))
        return False
    stored = conn.execute(
        select(BlockHeader.__table__.c.hash).where(  # type: ignore[attr-defined]
            BlockHeader.__table__.c.chain_id == cursor["chain_id"],  # type: ignore[attr-defined]
            BlockHeader.__table__.c.number == report.block,  # type: ignore[attr-defined]
        )
    ).scalar()
    if stored is not None and str(stored).lower() != str(block["hash"]).lower():
        report.mismatches.append(
            Mismatch("mirror", report.block, "block hash", stored, block["hash"])
        )
        return False
    return True


def _rows(conn: Connection, model: Any, order: Any) -> list[Any]:
    return list(conn.execute(select(model.__table__).order_by(order)).mappings())


def _compare(
    report: VerifyReport,
    entity: str,
    key: Any,
    pairs: Iterable[tuple[str, Any, Any]],
) -> None:
    for name, sql, chain in pairs:
        if not _same(sql, chain):
            report.mismatches.append(Mismatch(entity, key, name, sql, chain))


def _counter(report: VerifyReport, entity: str, sql_count: int, chain_next: int) -> None:
    if sql_count != chain_next - 1:
        report.mismatches.append(Mismatch(entity, "count", "rows", sql_count, chain_next - 1))


def check_lots(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    lots = _rows(conn, Lot, Lot.lot_id)
    report.checked["lots"] = len(lots)
    _counter(report, "lot", len(lots), reader.one("Traceability", "nextLotId")[0])
    states = reader.calls("Traceability", "lots", [(r["lot_id"],) for r in lots])
    for r, state in zip(lots, states, strict=True):
        if state is None:
            report.mismatches.append(Mismatch("lot", r["lot_id"], "call", "row", "failed"))
            continue
        farmer, grams, grade, status, inspection, consignment_id = state
        _compare(
            report,
            "lot",
            r["lot_id"],
            [
                ("farmer", r["farmer"], farmer),
                ("grams", r["grams"], grams),
                ("grade", r["grade"], grade),
                ("status", r["status"], status),
                ("inspection", r["inspection"], inspection),
                # the consignment the lot was last added to (0 if none, or removed)
                ("consignment_id", r["consignment_id"] or 0, consignment_id),
            ],
        )


def check_consignments(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    rows = _rows(conn, Consignment, Consignment.consignment_id)
    report.checked["consignments"] = len(rows)
    _counter(report, "consignment", len(rows), reader.one("Traceability", "nextConsignmentId")[0])
    keys = [(r["consignment_id"],) for r in rows]
    infos = reader.calls("Traceability", "consignmentInfo", keys)
    custody = reader.calls("Traceability", "custodyInfo", keys)
    for r, info, cust in zip(rows, infos, custody, strict=True):
        if info is None or cust is None:
            report.mismatches.append(
                Mismatch("consignment", r["consignment_id"], "call", "row", "failed")
            )
            continue
        coop, order_id, status, min_grade, lot_count, total, eligible = info
        custodian, previous, pending, _since = cust
        _compare(
            report,
            "consignment",
            r["consignment_id"],
            [
                ("cooperative", r["cooperative"], coop),
                ("order_id", r["order_id"], order_id),
                ("status", r["status"], status),
                ("min_grade", r["min_grade"], min_grade),
                ("lot_count", r["lot_count"], lot_count),
                ("total_grams", r["total_grams"], total),
                ("eligible_grams", r["eligible_grams"], eligible),
                ("custodian", r["custodian"], custodian),
                ("previous_custodian", _addr(r["previous_custodian"]), previous),
                ("pending_custodian", _addr(r["pending_custodian"]), pending),
            ],
        )


def _held(order: Any) -> int:
    status = order["status"]
    if OrderStatus.FUNDED <= status <= OrderStatus.RESOLVED:
        return int(order["deposit"])
    if status == OrderStatus.SETTLING:
        return int(order["farmer_pool"] or 0) - int(order["paid_to_farmers"] or 0)
    return 0


def check_orders(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    rows = _rows(conn, SaleOrder, SaleOrder.order_id)
    report.checked["orders"] = len(rows)
    _counter(report, "order", len(rows), reader.one("SaleEscrow", "nextOrderId")[0])
    keys = [(r["order_id"],) for r in rows]
    orders = reader.calls("SaleEscrow", "getOrder", keys)
    settlements = reader.calls("SaleEscrow", "settlements", keys)
    held = reader.calls("SaleEscrow", "amountHeld", keys)
    releases = reader.calls("SaleEscrow", "releases", keys)
    fundings = reader.calls("SaleEscrow", "fundings", keys)
    funders = reader.calls("SaleEscrow", "funderOf", keys)
    paid: dict[int, int] = defaultdict(int)
    for p in conn.execute(select(Payout.__table__)).mappings():  # type: ignore[attr-defined]
        if p["kind"] == "farmer":
            paid[p["order_id"]] += int(p["amount"])
    for r, order, settlement, amount, release, funding, funder in zip(
        rows, orders, settlements, held, releases, fundings, funders, strict=True
    ):
        oid = r["order_id"]
        if any(v is None for v in (order, settlement, amount, release, funding, funder)):
            report.mismatches.append(Mismatch("order", oid, "call", "row", "failed"))
            continue
        assert order and settlement and amount and release and funding and funder
        o = order[0]
        pool, _eligible, cursor, _cum, paid_to_farmers = settlement
        _compare(
            report,
            "order",
            oid,
            [
                ("status", r["status"], o[2]),
                ("exporter", r["exporter"], o[0]),
                ("cooperative", r["cooperative"], o[4]),
                ("consignment_id", r["consignment_id"] or 0, o[7]),
                ("accepted_grams", r["accepted_grams"] or 0, o[12]),
                ("deposit", r["deposit"], o[13]),
                ("payment", r["payment"] or 0, o[14]),
                ("farmer_pool", r["farmer_pool"] or 0, pool),
                ("settle_cursor", r["settle_cursor"] or 0, cursor),
                ("paid_to_farmers", r["paid_to_farmers"] or 0, paid_to_farmers),
                ("farmer payouts", paid.get(oid, 0), paid_to_farmers),
                ("escrow held", _held(r), amount[0]),
            ],
        )
        agent, window, state, _by_cooperative, waived, documents_hash = release
        financier, _funded, agreement_hash = funding
        _compare(
            report,
            "order",
            oid,
            [
                ("funder", _addr(r["funder"]), funder[0]),
                ("funding_financier", _addr(r["funding_financier"]), financier),
                (
                    "funding_agreement_hash",
                    r["funding_agreement_hash"] or ZERO_HASH,
                    agreement_hash,
                ),
                ("release_agent", _addr(r["release_agent"]), agent),
                ("agent_window", r["agent_window"] or 0, window),
                ("release_state", r["release_state"], state),
                ("release_waived", bool(r["release_waived"]), waived),
                ("documents_hash", r["documents_hash"] or ZERO_HASH, documents_hash),
            ],
        )


def check_escrow_balance(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    """balanceOf(escrow) per token == deposits in - refunds and payouts out, per SQL."""
    balances: dict[str, int] = defaultdict(int)
    for m in conn.execute(select(EscrowMovement.__table__)).mappings():  # type: ignore[attr-defined]
        sign = 1 if m["direction"] == "in" else -1
        balances[m["token"]] += sign * int(m["amount"])
    tokens = sorted(balances)
    report.checked["escrow tokens"] = len(tokens)
    escrow = reader.book.address("SaleEscrow")
    calls = [("eth_call", [{"to": t, "data": _BALANCE.encode(escrow)}, reader.tag]) for t in tokens]
    for token, reply in zip(tokens, reader.rpc.batch(calls), strict=True):
        chain = None if isinstance(reply, RpcError) else _BALANCE.decode(reply)[0]
        if chain != balances[token]:
            report.mismatches.append(
                Mismatch("escrow balance", token, "balanceOf(escrow)", balances[token], chain)
            )


def check_advances(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    rows = _rows(conn, Advance, Advance.advance_id)
    report.checked["advances"] = len(rows)
    _counter(report, "advance", len(rows), reader.one("FinanceMarket", "nextRequestId")[0])
    states = reader.calls("FinanceMarket", "requests", [(r["advance_id"],) for r in rows])
    for r, state in zip(rows, states, strict=True):
        if state is None:
            report.mismatches.append(Mismatch("advance", r["advance_id"], "call", "row", "failed"))
            continue
        coop, order_id, status, financier, _amount, due = state
        _compare(
            report,
            "advance",
            r["advance_id"],
            [
                ("cooperative", r["cooperative"], coop),
                ("order_id", r["order_id"], order_id),
                ("status", r["status"], status),
                ("financier", _addr(r["financier"]), financier),
                ("due", r["due"] or 0, due),
            ],
        )


def check_jobs(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    rows = _rows(conn, TransportJob, TransportJob.job_id)
    report.checked["jobs"] = len(rows)
    _counter(report, "job", len(rows), reader.one("LogisticsMarket", "nextJobId")[0])
    states = reader.calls("LogisticsMarket", "jobs", [(r["job_id"],) for r in rows])
    for r, state in zip(rows, states, strict=True):
        if state is None:
            report.mismatches.append(Mismatch("job", r["job_id"], "call", "row", "failed"))
            continue
        _compare(
            report,
            "job",
            r["job_id"],
            [
                ("status", r["status"], state[2]),
                ("carrier", _addr(r["carrier"]), state[3]),
                ("fee", r["fee"] or 0, state[8]),
            ],
        )


def check_farmers(conn: Connection, reader: _Reader, report: VerifyReport) -> None:
    rows = _rows(conn, Farmer, Farmer.address)
    report.checked["farmers"] = len(rows)
    states = reader.calls("ClusterRegistry", "farmerInfo", [(r["address"],) for r in rows])
    for r, state in zip(rows, states, strict=True):
        if state is None:
            report.mismatches.append(Mismatch("farmer", r["address"], "call", "row", "failed"))
            continue
        _compare(
            report,
            "farmer",
            r["address"],
            [("cooperative", r["cooperative"], state[0]), ("active", r["active"], state[1])],
        )


_BALANCE = FunctionCodec("TestStablecoin", "balanceOf")

_CHECKS: tuple[Callable[[Connection, _Reader, VerifyReport], None], ...] = (
    check_lots,
    check_consignments,
    check_orders,
    check_escrow_balance,
    check_advances,
    check_jobs,
    check_farmers,
)
