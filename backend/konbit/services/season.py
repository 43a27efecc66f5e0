"""A scripted season on a local chain, touching every Konbit event (tests, bench, demos).

Onboarding goes through the outbox, signed by the operator's custodial key (only the
operator may register organisations); the other parties are Anvil's unlocked dev
accounts, which keeps a season to a few seconds. Farmers are fresh addresses: they never
send a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import keccak
from sqlmodel import Session

from konbit.chain.contracts import KonbitContracts
from konbit.outbox.service import submit
from konbit.runtime import Runtime

USD = 10**6
DAY = 86_400
MANGO = 1
GEO = b"d7ns5"
PLOT_COMMITMENT = b"\xcd" * 32
EVIDENCE = b"\xab" * 32
CERT = b"\xcd" * 32
META = b"\x11" * 32
AGREEMENT = b"\xa9" * 32
#: Shipping documents presented to a release agent: bill of lading, phytosanitary and
#: hot-water treatment certificates, the buyer's receipt.
DOCUMENTS = [b"\xd1" * 32, b"\xd2" * 32, b"\xd3" * 32, b"\xd4" * 32]
DOCUMENTS_HASH = keccak(b"".join(DOCUMENTS))


@dataclass
class Season:
    """Drives the contracts of one deployment through a season."""

    runtime: Runtime
    contracts: KonbitContracts = field(init=False)
    w3: Any = field(init=False)
    lot_ids: int = 0
    order_ids: int = 0
    consignment_ids: int = 0
    job_ids: int = 0
    bid_ids: int = 0
    request_ids: int = 0
    offer_ids: int = 0

    def __post_init__(self) -> None:
        self.contracts = self.runtime.contracts()
        self.w3 = self.runtime.w3
        accounts = self.w3.eth.accounts
        self.coop, self.exporter, self.carrier = accounts[1], accounts[2], accounts[3]
        self.financier, self.inspector, self.arbiter = accounts[4], accounts[5], accounts[6]
        self.farmers = [Account.create().address for _ in range(4)]
        self.c = self.contracts
        self.usd = self.c.stablecoin

    # ------------------------------------------------------------------ plumbing

    def send(self, fn: Any, sender: str) -> Any:
        tx_hash = fn.transact({"from": sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction reverted: {fn}")
        return receipt

    def operator_calls(self, calls: list[tuple[str, str, list[Any]]]) -> None:
        """Send (contract, function, args) as the operator through the outbox, then drain."""
        operator = self.runtime.operator()
        assert operator is not None
        book = self.contracts.book
        with Session(self.runtime.engine) as session:
            for i, (contract, function, args) in enumerate(calls):
                key = (
                    f"season:{book.chain_id}:{self.runtime.genesis[:18]}:"
                    f"{book.address(contract)}:{function}:{i}:{args!r}"
                )
                submit(
                    session,
                    key=key[:200],
                    sender=operator,
                    contracts=self.contracts,
                    contract=contract,
                    function=function,
                    args=args,
                    chain_genesis=self.runtime.genesis,
                )
        worker = self.runtime.worker(threads=1)
        try:
            worker.drain(timeout=120)
        finally:
            worker.close()

    def travel(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def lot(self, farmer: str, grams: int, grade: int = 3) -> tuple[Any, ...]:
        return (farmer, MANGO, grams, grade, self.now(), GEO, PLOT_COMMITMENT, EVIDENCE)

    def record(self, lots: list[tuple[str, int]], grade: int = 3) -> list[int]:
        self.send(
            self.c.traceability.functions.recordLots([self.lot(f, g, grade) for f, g in lots]),
            self.coop,
        )
        first = self.lot_ids + 1
        self.lot_ids += len(lots)
        return list(range(first, first + len(lots)))

    # ------------------------------------------------------------------ steps

    def setup(self) -> None:
        reg = self.c.registry.functions
        roles = {
            self.coop: "COOPERATIVE_ROLE",
            self.exporter: "EXPORTER_ROLE",
            self.carrier: "LOGISTICS_ROLE",
            self.financier: "FINANCIER_ROLE",
            self.inspector: "INSPECTOR_ROLE",
            self.arbiter: "ARBITER_ROLE",
        }
        calls: list[tuple[str, str, list[Any]]] = [
            ("ClusterRegistry", "registerOrganisation", [who, getattr(reg, role)().call(), META])
            for who, role in roles.items()
        ]
        calls.append(("ClusterRegistry", "updateOrganisationMetadata", [self.coop, b"\x22" * 32]))
        calls.append(("FinanceMarket", "setLtvBps", [8000]))
        calls.append(("SaleEscrow", "setDisputeWindow", [2 * DAY]))
        self.operator_calls(calls)
        for farmer in self.farmers:
            self.send(reg.enrollFarmer(farmer), self.coop)
        self.send(reg.setFarmerActive(self.farmers[3], False), self.coop)
        self.send(reg.setFarmerActive(self.farmers[3], True), self.coop)
        usd = self.usd.functions
        for who, spender in ((self.exporter, "escrow"), (self.financier, "finance")):
            self.send(usd.faucet(who, 1_000_000 * USD), who)
            self.send(usd.approve(getattr(self.c, spender).address, 2**256 - 1), who)
        # the financier also funds orders for exporters
        self.send(usd.approve(self.c.escrow.address, 2**256 - 1), self.financier)

    def order(self, grams: int, *, price: int = 2 * USD, deadline_days: int = 30) -> int:
        esc = self.c.escrow.functions
        deadline = self.now() + deadline_days * DAY
        self.send(
            esc.propose(self.coop, self.usd.address, MANGO, grams, price, 2, deadline, 500),
            self.exporter,
        )
        self.order_ids += 1
        oid = self.order_ids
        self.send(esc.accept(oid), self.coop)
        self.send(esc.fund(oid), self.exporter)
        return oid

    def agent_order(self, grams: int, *, financier_funds: bool = False) -> int:
        """An accepted and funded order whose release agent is the financier (window: a day),
        funded by the financier for the exporter when ``financier_funds``."""
        esc = self.c.escrow.functions
        deadline = self.now() + 30 * DAY
        self.send(
            esc.propose(self.coop, self.usd.address, MANGO, grams, 2 * USD, 2, deadline, 500),
            self.exporter,
        )
        self.order_ids += 1
        oid = self.order_ids
        self.send(esc.proposeReleaseAgent(oid, self.financier, DAY), self.exporter)
        self.send(esc.agreeReleaseAgent(oid, self.financier, DAY), self.coop)
        if financier_funds:
            self.send(esc.nameFunder(oid, self.financier, AGREEMENT), self.exporter)
        self.send(esc.accept(oid), self.coop)
        if financier_funds:
            self.send(esc.fundFor(oid, AGREEMENT), self.financier)
        else:
            self.send(esc.fund(oid), self.exporter)
        return oid

    def delivered(self, oid: int, lots: list[tuple[str, int]]) -> int:
        """Consign new lots to the order, ship it, and confirm every gram delivered."""
        esc = self.c.escrow.functions
        cid = self.consignment(oid, self.record(lots))
        self.send(esc.markShipped(oid, cid), self.coop)
        self.send(esc.confirmDelivery(oid, sum(g for _, g in lots), []), self.exporter)
        return cid

    def consignment(self, oid: int, lots: list[int]) -> int:
        tr = self.c.traceability.functions
        self.send(tr.createConsignment(oid, 2), self.coop)
        self.consignment_ids += 1
        cid = self.consignment_ids
        self.send(tr.addLots(cid, lots), self.coop)
        return cid

    def advance(self, oid: int, amount: int, fee: int) -> int:
        fin = self.c.finance.functions
        self.send(fin.requestAdvance(oid, amount), self.coop)
        self.request_ids += 1
        rid = self.request_ids
        expiry = self.now() + 3 * DAY
        self.send(fin.makeOffer(rid, amount, fee, expiry), self.financier)
        self.offer_ids += 1
        self.send(fin.acceptOffer(self.offer_ids), self.coop)
        return rid

    def job(self, cid: int, deadline_days: int, fee: int) -> int:
        lg = self.c.logistics.functions
        deadline = self.now() + deadline_days * DAY
        self.send(lg.postJob(cid, GEO, GEO, deadline, 10 * USD), self.coop)
        self.job_ids += 1
        jid = self.job_ids
        self.send(lg.placeBid(jid, fee, deadline), self.carrier)
        self.bid_ids += 1
        self.send(lg.awardJob(jid, self.bid_ids), self.coop)
        return jid

    def settle(self, oid: int, chunk: int) -> None:
        esc = self.c.escrow.functions
        while esc.getOrder(oid).call()[2] != 9:  # SETTLED
            self.send(esc.settle(oid, chunk), self.arbiter)

    def full(self) -> None:
        """The whole season: happy path, refund with a defaulted lien, dispute, cancels, and
        release agents (a financier-funded order released, a refusal, an agent that lapses)."""
        self.setup()
        tr = self.c.traceability.functions
        esc = self.c.escrow.functions
        lg = self.c.logistics.functions
        fin = self.c.finance.functions
        f = self.farmers

        # Order A: finance, logistics, inspections, split, rejection, chunked settlement.
        a = self.order(100_000)
        lots = self.record([(f[i % 4], 10_000) for i in range(12)])
        self.send(tr.splitLot(lots[0], [4_000, 6_000]), self.coop)
        children = [self.lot_ids + 1, self.lot_ids + 2]
        self.lot_ids += 2
        self.send(tr.inspectLot(lots[1], True, 4, CERT), self.inspector)
        self.send(tr.inspectLot(lots[2], False, 3, CERT), self.inspector)
        ca = self.consignment(a, [lots[1], *lots[3:12], *children])
        self.send(tr.removeLots(ca, [lots[11]]), self.coop)
        self.send(tr.inspectLot(lots[4], False, 3, CERT), self.inspector)
        self.send(tr.inspectConsignment(ca, True, 3, CERT), self.inspector)
        self.advance(a, 50 * USD, 5 * USD)
        ja = self.job(ca, 10, 3 * USD)
        self.send(esc.markShipped(a, ca), self.coop)
        self.send(tr.handOver(ca, self.carrier, self.now(), GEO, EVIDENCE), self.coop)
        self.send(tr.confirmReceipt(ca, self.now(), GEO, EVIDENCE), self.carrier)
        self.send(lg.recordPickup(ja), self.carrier)
        self.send(tr.handOver(ca, self.exporter, self.now(), GEO, EVIDENCE), self.carrier)
        self.send(tr.confirmReceipt(ca, self.now(), GEO, EVIDENCE), self.exporter)
        self.send(lg.recordDelivery(ja), self.carrier)
        eligible = self.c.traceability.functions.consignmentInfo(ca).call()[6]
        self.send(esc.confirmDelivery(a, eligible - 10_000, [lots[5]]), self.exporter)

        # Order B: advance, shipped, job expires, refund (lien defaults, lots freed).
        b = self.order(20_000, deadline_days=5)
        cb = self.consignment(b, self.record([(f[0], 10_000), (f[1], 10_000)]))
        self.advance(b, 10 * USD, USD)
        jb = self.job(cb, 2, 2 * USD)
        self.send(esc.markShipped(b, cb), self.coop)

        # Order C: dispute and arbitration; a cancelled request, job and consignment.
        c = self.order(20_000)
        self.send(fin.requestAdvance(c, 5 * USD), self.coop)
        self.request_ids += 1
        self.send(fin.makeOffer(self.request_ids, 5 * USD, USD, self.now() + DAY), self.financier)
        self.offer_ids += 1
        self.send(fin.withdrawOffer(self.offer_ids), self.financier)
        self.send(fin.cancelRequest(self.request_ids), self.coop)
        spare = self.consignment(c, self.record([(f[2], 1_000)]))
        self.send(tr.cancelConsignment(spare), self.coop)
        cc = self.consignment(c, self.record([(f[2], 10_000), (f[3], 10_000)]))
        deadline = self.now() + DAY  # one value: the bid's eta may not pass the job's deadline
        self.send(lg.postJob(cc, GEO, GEO, deadline, USD), self.coop)
        self.job_ids += 1
        self.send(lg.placeBid(self.job_ids, USD, deadline), self.carrier)
        self.bid_ids += 1
        self.send(lg.withdrawBid(self.bid_ids), self.carrier)
        self.send(lg.cancelJob(self.job_ids), self.coop)
        self.send(esc.markShipped(c, cc), self.coop)
        self.send(esc.confirmDelivery(c, 20_000, []), self.exporter)
        self.send(esc.dispute(c, b"\x33" * 32), self.coop)
        self.send(esc.resolveDispute(c, 30 * USD, b"\x44" * 32), self.arbiter)
        self.settle(c, 10)

        # Order D: proposed and cancelled.
        self.send(
            esc.propose(self.coop, self.usd.address, MANGO, 1_000, USD, 1, self.now() + DAY, 0),
            self.exporter,
        )
        self.order_ids += 1
        self.send(esc.cancel(self.order_ids), self.exporter)

        # Order E: a financier funds it for the exporter and is its release agent; the
        # cooperative presents the documents and the agent releases, waiving the window.
        e = self.agent_order(10_000, financier_funds=True)  # 8,000 g delivered
        self.delivered(e, [(f[0], 4_000), (f[1], 4_000)])
        self.send(esc.presentDocuments(e, DOCUMENTS), self.coop)
        self.send(esc.release(e, DOCUMENTS_HASH, True), self.financier)
        self.settle(e, 10)

        # Order F: the agent refuses (documents missing); the arbiter rules.
        refused = self.agent_order(4_000)
        self.delivered(refused, [(f[2], 4_000)])
        self.send(esc.refuseRelease(refused, b"\x55" * 32), self.financier)
        self.send(esc.resolveDispute(refused, 6 * USD, b"\x44" * 32), self.arbiter)
        self.settle(refused, 10)

        # Order G: documents presented, the agent never acts: settled after its deadline.
        lapse = self.agent_order(4_000)
        self.delivered(lapse, [(f[3], 4_000)])
        self.send(esc.presentDocuments(lapse, DOCUMENTS[:2]), self.coop)

        # Time passes: B's job expires and B is refunded; A settles in chunks; G's agent lapsed.
        self.travel(6 * DAY)
        self.send(lg.expireJob(jb), self.arbiter)
        self.send(esc.refund(b), self.arbiter)
        self.settle(a, 4)
        self.settle(lapse, 10)

    def bulk(self, lots: int, batch: int = 100, settle: bool = True) -> None:
        """Many lots in batches (one LotRecorded each), then one order settling them all."""
        self.setup()
        ids: list[int] = []
        for start in range(0, lots, batch):
            n = min(batch, lots - start)
            ids += self.record([(self.farmers[(start + i) % 4], 1_000) for i in range(n)])
        if not settle:
            return
        oid = self.order(lots * 1_000, price=USD)
        tr = self.c.traceability.functions
        tr_create = tr.createConsignment(oid, 2)
        self.send(tr_create, self.coop)
        self.consignment_ids += 1
        cid = self.consignment_ids
        for start in range(0, len(ids), batch):
            self.send(tr.addLots(cid, ids[start : start + batch]), self.coop)
        esc = self.c.escrow.functions
        self.send(esc.markShipped(oid, cid), self.coop)
        self.send(esc.confirmDelivery(oid, lots * 1_000, []), self.exporter)
        self.travel(3 * DAY)
        self.settle(oid, 200)
