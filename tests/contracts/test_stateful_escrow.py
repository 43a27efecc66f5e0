"""Stateful property test (hypothesis, brownie's state_machine) over random sequences of
propose / fund (by the exporter or by a financier for it) / advance / ship / confirm / present
documents / release (dispute window waived or not) / refuse / settle-in-chunks / refund / dispute /
resolve / time, with a release agent on some orders.

Checked after every step:
  * the escrow's token balance equals what it still owes (sum of SaleEscrow.amountHeld, and the
    model's own figure);
  * nothing is paid twice (each lot gets at most one FarmerPaid; cursors only advance);
  * the sum paid out never exceeds the sum paid in (globally and per order);
  * each farmer's balance equals the pro-rata rule applied to the lots settled so far
    (share_k = floor(pool*C_k/E) - floor(pool*C_{k-1}/E)), within one unit per lot of exact;
  * money is conserved per order: once settled or refunded, what left the escrow for it
    (refund, waterfall, farmers) is exactly its deposit, and every refund went to whoever funded;
  * a release agent's order never starts settling before the agent released (at once only if
    it waived the dispute window) or its deadline passed.
"""

from brownie import chain, web3
from brownie.test import strategy
from conftest import CERT, DAY, USD, consignment, err, record
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

# brownie's own `state_machine` helper ships as a mypyc-compiled module in eth-brownie 1.22.2 that
# rejects subclasses ("_BrownieStateMachine object expected"), so this drives hypothesis's
# RuleBasedStateMachine directly, reverting Anvil to a snapshot at the start of every example.
ST = {
    "n_lots": strategy("uint8", min_value=1, max_value=7),
    "grams": strategy("uint32", min_value=1_000, max_value=60_000),
    "price": strategy("uint32", min_value=1_000, max_value=5 * USD),
    "fee": strategy("uint16", max_value=2_000),
    "i": strategy("uint8"),
    "frac": strategy("uint8", min_value=0, max_value=100),
    "mask": strategy("uint8"),
    "hours": strategy("uint8", min_value=1, max_value=60),
    "chunk": strategy("uint8", min_value=1, max_value=4),
    "n_steps": strategy("uint8", min_value=1, max_value=6),
    "mode": strategy("uint8", max_value=3),  # bit 0: release agent; bit 1: a financier funds
    "waive": strategy("bool"),
}

AGENT_WINDOW = DAY // 2
AGREEMENT = "0x" + "a9" * 32
DOCS = ["0x" + "d1" * 32, "0x" + "d2" * 32]
DOCS_HASH = web3.keccak(hexstr="".join(d[2:] for d in DOCS))
AGENT_AGREED, AGENT_PRESENTED, AGENT_RELEASED = 2, 3, 4


def _st(*names):
    return {n: ST[n] for n in names}


FUNDED, SHIPPED, DELIVERED, DISPUTED, RESOLVED, SETTLING, SETTLED, REFUNDED = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
)


class Model:
    def __init__(self, oid, cid, lots, deposit, price, fee_bps, agent, financed):
        self.oid, self.cid, self.lots = oid, cid, lots  # lots: [(lotId, farmer, grams)]
        self.deposit, self.price, self.fee_bps = deposit, price, fee_bps
        self.cum, self.cursor, self.pool, self.eligible = 0, 0, 0, 0
        self.excluded = set()
        self.out = 0  # what left the escrow for this order (events)
        self.agent, self.financed = agent, financed
        self.funder = None


class EscrowMachine(RuleBasedStateMachine):
    s = None  # the deployed system, set by the test

    def __init__(self):
        super().__init__()
        chain.revert()
        self.orders = []
        self.paid_lots = set()
        self.total_in = 0
        self.farmer_expected = {f.address: self.s.usd.balanceOf(f) for f in self.s.farmers}
        self.escrow_start = self.s.usd.balanceOf(self.s.escrow)

    def _pick(self, i, status):
        live = [m for m in self.orders if self.s.escrow.getOrder(m.oid)[2] in status]
        return live[i % len(live)] if live else None

    # ------------------------------------------------------------------ rules
    @initialize(**_st("n_lots", "grams", "price", "fee", "mode"))
    def init_orders(self, n_lots, grams, price, fee, mode):
        """Start every run with two accepted orders, one funded and shipped; the second has a
        release agent and is funded by a financier unless `mode` says otherwise."""
        self.rule_propose(n_lots, grams, price, fee, mode)
        self.rule_propose(max(1, n_lots // 2), grams + 1, price + 1, fee // 2, 3 - mode)
        self.rule_fund(0)
        self.rule_fund(0)
        self.rule_ship(0)

    @rule(**_st("n_lots", "grams", "price", "fee", "mode"))
    def rule_propose(self, n_lots, grams, price, fee, mode):
        s = self.s
        sizes = [grams + 997 * k for k in range(n_lots)]
        total = sum(sizes)
        oid = s.escrow.propose(
            s.coop, s.usd, 1, total, price, 2, chain.time() + 6 * DAY, fee, {"from": s.exporter}
        ).return_value
        agent, financed = bool(mode & 1), bool(mode & 2)
        if agent:
            s.escrow.proposeReleaseAgent(oid, s.financier, AGENT_WINDOW, {"from": s.exporter})
            s.escrow.agreeReleaseAgent(oid, s.financier, AGENT_WINDOW, {"from": s.coop})
        if financed:
            s.escrow.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
        s.escrow.accept(oid, {"from": s.coop})
        pairs = [(s.farmers[(k * 7 + grams) % 4], g) for k, g in enumerate(sizes)]
        ids = record(s, pairs)
        cid = consignment(s, oid, ids)
        deposit = total * price // 1000
        STATS["proposals"] += 1
        lots = [(i, f.address, g) for i, (f, g) in zip(ids, pairs)]
        self.orders.append(Model(oid, cid, lots, deposit, price, fee, agent, financed))
        STATS["with_agent"] += agent

    @rule(**_st("i"))
    def rule_fund(self, i):
        s = self.s
        m = self._pick(i, [2])
        if m and chain.time() < s.escrow.getOrder(m.oid)[1] - 60:
            if m.financed:
                tx = s.escrow.fundFor(m.oid, AGREEMENT, {"from": s.financier})
                m.funder = s.financier.address
                STATS["funds_by_financier"] += 1
            else:
                tx = s.escrow.fund(m.oid, {"from": s.exporter})
                m.funder = s.exporter.address
            assert tx.events["OrderFunded"]["funder"] == m.funder
            assert s.escrow.funderOf(m.oid) == m.funder
            self.total_in += m.deposit
            STATS["funds"] += 1

    @rule(**_st("i", "frac"))
    def rule_advance(self, i, frac):
        s = self.s
        m = self._pick(i, [FUNDED, SHIPPED])
        if not m or s.escrow.orderSummary(m.oid)[5]:
            return
        amount = max(1, m.deposit * 7 * frac // 1000)  # up to 70% LTV
        rid = s.finance.requestAdvance(m.oid, amount, {"from": s.coop}).return_value
        fee = amount // 20
        off = s.finance.makeOffer(
            rid, amount, fee, chain.time() + DAY, {"from": s.financier}
        ).return_value
        s.finance.acceptOffer(off, {"from": s.coop})
        STATS["advances"] += 1

    @rule(**_st("i"))
    def rule_ship(self, i):
        m = self._pick(i, [FUNDED])
        if m and chain.time() < self.s.escrow.getOrder(m.oid)[1] - 60:
            self.s.escrow.markShipped(m.oid, m.cid, {"from": self.s.coop})
            STATS["ships"] += 1

    @rule(**_st("i", "frac", "mask"))
    def rule_confirm(self, i, frac, mask):
        m = self._pick(i, [SHIPPED])
        if not m:
            return
        rejected = [lot for k, (lot, _, _) in enumerate(m.lots) if (mask >> k) & 1 and k % 3 == 0]
        eligible = sum(g for lot, _, g in m.lots if lot not in rejected)
        ordered = sum(g for _, _, g in m.lots)
        accepted = min(eligible, ordered) * frac // 100
        self.s.escrow.confirmDelivery(m.oid, accepted, rejected, {"from": self.s.exporter})
        m.excluded = set(rejected)
        STATS["confirms"] += 1
        m.eligible = eligible

    @rule(**_st("i"))
    def rule_dispute(self, i):
        m = self._pick(i, [DELIVERED])
        if m and chain.time() < self.s.escrow.getOrder(m.oid)[9] - 60:
            release = self.s.escrow.releases(m.oid)
            if release[2] == AGENT_RELEASED and release[4]:
                return  # the agent waived the dispute window
            self.s.escrow.dispute(m.oid, CERT, {"from": self.s.exporter})

    def _agent_open(self, m):
        """The agent may still act on this Delivered order (agreed/presented, before deadline)."""
        e = self.s.escrow
        return (
            m.agent
            and e.releases(m.oid)[2] in (AGENT_AGREED, AGENT_PRESENTED)
            and chain.time() < e.agentDeadline(m.oid) - 60
        )

    @rule(**_st("i"))
    def rule_present_documents(self, i):
        m = self._pick(i, [DELIVERED])
        if m and self._agent_open(m):
            self.s.escrow.presentDocuments(m.oid, DOCS, {"from": self.s.coop})
            STATS["presentations"] += 1

    @rule(**_st("i", "waive"))
    def rule_release(self, i, waive):
        s = self.s
        m = self._pick(i, [DELIVERED])
        if m and self._agent_open(m) and s.escrow.releases(m.oid)[2] == AGENT_PRESENTED:
            s.escrow.release(m.oid, DOCS_HASH, waive, {"from": s.financier})
            STATS["releases_waived" if waive else "releases"] += 1

    @rule(**_st("i"))
    def rule_refuse(self, i):
        s = self.s
        m = self._pick(i, [DELIVERED])
        if m and self._agent_open(m):
            tx = s.escrow.refuseRelease(m.oid, CERT, {"from": s.financier})
            assert s.escrow.getOrder(m.oid)[2] == DISPUTED
            assert tx.events["OrderDisputed"]["by"] == s.financier
            STATS["refusals"] += 1

    @rule(**_st("i", "frac"))
    def rule_resolve(self, i, frac):
        m = self._pick(i, [DISPUTED])
        if m:
            self.s.escrow.resolveDispute(
                m.oid, m.deposit * min(frac, 100) // 100, CERT, {"from": self.s.arbiter}
            )
            STATS["resolutions"] += 1

    @rule(**_st("i"))
    def rule_refund(self, i):
        s = self.s
        m = self._pick(i, [FUNDED, SHIPPED])
        if m and chain.time() > s.escrow.getOrder(m.oid)[1] + 1:
            before = s.usd.balanceOf(m.funder)
            tx = s.escrow.refund(m.oid, {"from": s.outsider})
            ev = tx.events["OrderRefunded"]
            assert ev["funder"] == m.funder and ev["amount"] == m.deposit
            assert s.usd.balanceOf(m.funder) - before == m.deposit
            m.out += ev["amount"]
            assert m.out == m.deposit
            STATS["refunds"] += 1

    @rule(**_st("hours"))
    def rule_sleep(self, hours):
        chain.sleep(hours * 3600)
        chain.mine()

    @rule(**_st("i", "chunk"))
    def rule_settle(self, i, chunk):
        s = self.s
        m = self._pick(i, [DELIVERED, RESOLVED, SETTLING])
        if not m:
            return
        st = s.escrow.getOrder(m.oid)[2]
        release = s.escrow.releases(m.oid)
        waived = release[2] == AGENT_RELEASED and release[4]
        if st == DELIVERED and not waived:
            # without a (waiving) release, settlement waits for the dispute window, and for an
            # agent that has not acted, for its deadline (time is part of the random walk anyway)
            until = s.escrow.getOrder(m.oid)[9]
            error = "DisputeWindowOpen"
            if release[2] in (AGENT_AGREED, AGENT_PRESENTED):
                until, error = s.escrow.agentDeadline(m.oid), "AwaitingReleaseAgent"
            if chain.time() < until - 60:
                with err(error):  # the contract holds the money until then
                    s.escrow.settle(m.oid, chunk, {"from": s.outsider})
            if chain.time() <= until + 1:
                chain.sleep(until - chain.time() + 2)
                chain.mine()
        tx = s.escrow.settle(m.oid, chunk, {"from": s.outsider})
        if "SettlementStarted" in tx.events:
            m.pool = tx.events["SettlementStarted"]["farmerPool"]
            assert tx.events["SettlementStarted"]["eligibleGrams"] == m.eligible
            if "ReleaseAgentLapsed" in tx.events:
                STATS["agent_lapsed"] += 1
            heads = list(tx.events["WaterfallPaid"]) if "WaterfallPaid" in tx.events else []
            for ev in heads:
                if ev["kind"] in (1, 6):  # the unused deposit: back to whoever funded
                    assert ev["payee"] == m.funder
                    assert ev["kind"] == (6 if m.financed else 1)
                m.out += ev["amount"]
        events = list(tx.events["FarmerPaid"]) if "FarmerPaid" in tx.events else []
        # model: the next `chunk` lots from the cursor, telescoping floor shares
        expected = []
        if m.pool:
            for lot, farmer, g in m.lots[m.cursor : m.cursor + chunk]:
                if lot in m.excluded:
                    continue
                prev = m.pool * m.cum // m.eligible
                m.cum += g
                amount = m.pool * m.cum // m.eligible - prev
                expected.append((lot, farmer, amount))
                self.farmer_expected[farmer] += amount
                # within one unit of the exact pro-rata share
                assert abs(amount * m.eligible - m.pool * g) < m.eligible
            m.cursor = min(len(m.lots), m.cursor + chunk)
        else:
            m.cursor = len(m.lots)
        assert [(e["lotId"], e["farmer"], e["amount"]) for e in events] == expected
        for e in events:
            assert e["lotId"] not in self.paid_lots, "lot paid twice"
            self.paid_lots.add(e["lotId"])
            m.out += e["amount"]
        assert s.escrow.settlements(m.oid)[2] == m.cursor
        STATS["settle_calls"] += 1
        if m.cursor == len(m.lots):
            assert tx.return_value is True
            assert s.escrow.getOrder(m.oid)[2] == SETTLED
            assert m.cum == (m.eligible if m.pool else 0)
            assert m.out == m.deposit, "settled order: paid out != deposit"
            STATS["orders_settled"] += 1

    # ------------------------------------------------------------------ invariants
    @rule(**_st("i", "frac", "mask", "chunk", "n_steps"))
    def rule_progress(self, i, frac, mask, chunk, n_steps):
        """Move a random live order up to `n_steps` lifecycle steps forward (fund, ship, confirm,
        settle chunk by chunk). Hypothesis keeps most generated runs short, so one rule call may
        walk several steps; every intermediate state is still checked by the invariants below."""
        for _ in range(n_steps):
            self._progress_once(i, frac, mask, chunk)
            self.invariant_balance_equals_owed()
            self.invariant_out_not_above_in()
            self.invariant_farmers_pro_rata()

    def _progress_once(self, i, frac, mask, chunk):
        m = self._pick(i, [2, FUNDED, SHIPPED, DELIVERED, DISPUTED, RESOLVED, SETTLING])
        if not m:
            return
        st = self.s.escrow.getOrder(m.oid)[2]
        idx = self.orders.index(m)
        if st == 2:
            self._run_on(idx, [2], self.rule_fund)
        elif st == FUNDED:
            self._run_on(idx, [FUNDED], self.rule_ship)
        elif st == SHIPPED:
            self._run_on(idx, [SHIPPED], lambda j: self.rule_confirm(j, frac, mask))
        elif st == DISPUTED:
            self._run_on(idx, [DISPUTED], lambda j: self.rule_resolve(j, frac))
        elif st == DELIVERED and self._agent_open(m) and frac % 4 != 3:
            # the agent's part (frac % 4 == 3: it stays away and lapses): refuse, or documents
            # then release (waiving the dispute window on odd frac)
            if frac % 4 == 2:
                self._run_on(idx, [DELIVERED], self.rule_refuse)
            elif self.s.escrow.releases(m.oid)[2] == AGENT_AGREED:
                self._run_on(idx, [DELIVERED], self.rule_present_documents)
            else:
                self._run_on(idx, [DELIVERED], lambda j: self.rule_release(j, frac % 2 == 1))
        else:
            self._run_on(idx, [DELIVERED, RESOLVED, SETTLING], lambda j: self.rule_settle(j, chunk))

    def _run_on(self, idx, status, fn):
        live = [m for m in self.orders if self.s.escrow.getOrder(m.oid)[2] in status]
        fn(live.index(self.orders[idx]))

    # Aliases weight the random walk towards the later lifecycle steps (hypothesis picks
    # uniformly among rules), so that most runs reach settlement.
    rule_propose_again = rule_propose
    rule_progress_again = rule_progress
    rule_progress_more = rule_progress
    rule_settle_again = rule_settle
    rule_release_again = rule_release

    @invariant()
    def invariant_balance_equals_owed(self):
        s = self.s
        held = sum(s.escrow.amountHeld(m.oid) for m in self.orders)
        balance = s.usd.balanceOf(s.escrow) - self.escrow_start
        assert balance == held
        model_held = 0
        for m in self.orders:
            st = s.escrow.getOrder(m.oid)[2]
            if FUNDED <= st <= RESOLVED:
                model_held += m.deposit
            elif st == SETTLING:
                model_held += m.pool - m.pool * m.cum // m.eligible
        assert balance == model_held

    @invariant()
    def invariant_out_not_above_in(self):
        s = self.s
        out = self.total_in - (s.usd.balanceOf(s.escrow) - self.escrow_start)
        assert 0 <= out <= self.total_in
        for m in self.orders:
            st = s.escrow.getOrder(m.oid)[2]
            assert s.escrow.amountHeld(m.oid) <= m.deposit
            if st == SETTLING:
                sett = s.escrow.settlements(m.oid)
                assert sett[4] <= sett[0]  # paidToFarmers <= farmerPool

    @invariant()
    def invariant_farmers_pro_rata(self):
        for f in self.s.farmers:
            assert self.s.usd.balanceOf(f) == self.farmer_expected[f.address]


STATS = __import__("collections").Counter()


def test_stateful_escrow(system):
    EscrowMachine.s = system
    system.escrow.setDisputeWindow(DAY, {"from": system.admin})
    chain.snapshot()
    # hypothesis (6.27) generates mostly short runs (its first examples get tiny buffers), hence
    # rule_progress walking several lifecycle steps per call; 24 examples reach every agent path
    # (release, waived release, refusal, lapse) and keep this test under two minutes.
    run_state_machine_as_test(
        EscrowMachine,
        settings=settings(
            max_examples=24, stateful_step_count=20, deadline=None, derandomize=True, database=None
        ),
    )
    print("stateful coverage:", dict(STATS))
    # the derandomized walk reaches every path this test is about
    for path in ("funds_by_financier", "releases", "releases_waived", "refusals", "agent_lapsed"):
        assert STATS[path] > 0, f"the walk never took {path}: {dict(STATS)}"
