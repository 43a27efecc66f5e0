"""SaleEscrow: order lifecycle, waterfall, chunked settlement, refund, dispute."""

from brownie import SaleEscrow, accounts, chain
from conftest import (
    CERT,
    DAY,
    MANGO,
    USD,
    ZERO,
    consignment,
    delivered_order,
    err,
    funded_order,
    propose,
    record,
    shipped_order,
)


def test_constructor_zero():
    with err("ZeroAddress"):
        SaleEscrow.deploy(ZERO, accounts[1], {"from": accounts[0]})


def test_admin_setters(system):
    e = system.escrow
    tx = e.setTokenAllowed(system.usd, False, {"from": system.admin})
    assert tx.events["TokenAllowed"]["allowed"] is False
    tx = e.setDisputeWindow(DAY, {"from": system.admin})
    assert tx.events["DisputeWindowSet"]["seconds_"] == DAY and e.disputeWindow() == DAY
    with err("ZeroAddress"):
        e.setTokenAllowed(ZERO, True, {"from": system.admin})
    with err("DisputeWindowTooLong"):
        e.setDisputeWindow(31 * DAY, {"from": system.admin})
    with err("MissingRole"):
        e.setTokenAllowed(system.usd, True, {"from": system.coop})
    with err("MissingRole"):
        e.setDisputeWindow(DAY, {"from": system.coop})


def test_propose_accept_fund(system):
    s, e = system, system.escrow
    tx = e.propose(
        s.coop,
        s.usd,
        MANGO,
        100_000,
        2 * USD,
        2,
        chain.time() + 30 * DAY,
        500,
        {"from": s.exporter},
    )
    oid = tx.return_value
    ev = tx.events["OrderProposed"]
    assert ev["deposit"] == 200 * USD and ev["cooperative"] == s.coop and ev["coopFeeBps"] == 500
    o = e.getOrder(oid)
    assert o[2] == e.PROPOSED() and o[13] == 200 * USD  # status, deposit
    tx = e.accept(oid, {"from": s.coop})
    assert tx.events["OrderStatusChanged"]["status"] == e.ACCEPTED()
    before = s.usd.balanceOf(s.exporter)
    tx = e.fund(oid, {"from": s.exporter})
    assert tx.events["OrderFunded"]["amount"] == 200 * USD
    assert s.usd.balanceOf(s.exporter) == before - 200 * USD
    assert s.usd.balanceOf(e) == 200 * USD == e.amountHeld(oid)
    summary = e.orderSummary(oid)
    assert summary[0] == s.exporter and summary[3] == e.FUNDED() and summary[5] is False


def test_propose_errors(system):
    s, e = system, system.escrow
    dl = chain.time() + DAY
    args = [s.coop, s.usd, MANGO, 1000, USD, 2, dl, 100]
    with err("MissingRole"):
        e.propose(*args, {"from": s.coop})
    with err("MissingRole"):
        e.propose(s.outsider, *args[1:], {"from": s.exporter})
    with err("TokenNotAllowed"):
        e.propose(s.coop, s.outsider, *args[2:], {"from": s.exporter})
    with err("InvalidBps"):
        e.propose(*args[:7], 10_001, {"from": s.exporter})
    with err("DeadlineInPast"):
        e.propose(*args[:6], chain.time() - 10, 100, {"from": s.exporter})
    with err("InvalidAmount"):
        e.propose(s.coop, s.usd, MANGO, 1, 999, 2, dl, 100, {"from": s.exporter})


def test_lifecycle_errors(system):
    s, e = system, system.escrow
    oid = propose(s)
    with err("UnknownOrder"):
        e.accept(999, {"from": s.coop})
    with err("NotCooperative"):
        e.accept(oid, {"from": s.coop2})
    with err("NotExporter"):
        e.fund(oid, {"from": s.coop})
    with err("BadStatus"):
        e.fund(oid, {"from": s.exporter})
    e.accept(oid, {"from": s.coop})
    with err("BadStatus"):
        e.accept(oid, {"from": s.coop})
    with err("NotCooperative"):
        e.markShipped(oid, 1, {"from": s.exporter})
    with err("BadStatus"):
        e.markShipped(oid, 1, {"from": s.coop})
    chain.sleep(31 * DAY)
    chain.mine()
    with err("DeadlinePassed"):
        e.fund(oid, {"from": s.exporter})


def test_cancel(system):
    s, e = system, system.escrow
    oid = propose(s)
    with err("NotAParty"):
        e.cancel(oid, {"from": s.outsider})
    tx = e.cancel(oid, {"from": s.coop})
    assert tx.events["OrderStatusChanged"]["status"] == e.CANCELLED()
    oid2 = funded_order(s)
    with err("BadStatus"):
        e.cancel(oid2, {"from": s.exporter})
    oid3 = propose(s)
    e.accept(oid3, {"from": s.coop})
    e.cancel(oid3, {"from": s.exporter})


def test_ship_errors(system):
    s, e = system, system.escrow
    oid = funded_order(s)
    chain.sleep(31 * DAY)
    chain.mine()
    with err("DeadlinePassed"):
        e.markShipped(oid, 1, {"from": s.coop})


def test_ship_and_deliver(system):
    s, e = system, system.escrow
    oid, cid, lots = shipped_order(s)
    assert s.trace.consignmentInfo(cid)[2] == s.trace.CONSIGNMENT_SHIPPED()
    with err("NotExporter"):
        e.confirmDelivery(oid, 1, [], {"from": s.coop})
    with err("AcceptedExceedsOrdered"):
        e.confirmDelivery(oid, 100_001, [], {"from": s.exporter})
    with err("AcceptedExceedsEligible"):
        e.confirmDelivery(oid, 80_000, [lots[0]], {"from": s.exporter})
    tx = e.confirmDelivery(oid, 70_000, [lots[0]], {"from": s.exporter})
    ev = tx.events["DeliveryConfirmed"]
    assert ev["payment"] == 140 * USD and ev["eligibleGrams"] == 75_000
    assert list(ev["rejectedLots"]) == [lots[0]]
    with err("BadStatus"):
        e.confirmDelivery(oid, 1, [], {"from": s.exporter})


def test_settle_waterfall_exact(system):
    """No lien, no carrier: exporter refund, coop fee, farmers pro rata; sums to the deposit."""
    s, e, u = system, system.escrow, system.usd
    grams = [(s.farmers[0], 33_333), (s.farmers[1], 33_333), (s.farmers[2], 33_334)]
    oid, cid, _lots = shipped_order(s, lots_grams=grams, price=3 * USD + 7, fee_bps=250)
    e.confirmDelivery(oid, 99_999, [], {"from": s.exporter})
    with err("DisputeWindowOpen"):
        e.settle(oid, 10, {"from": s.outsider})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    with err("InvalidAmount"):
        e.settle(oid, 0, {"from": s.outsider})
    bal = {a: u.balanceOf(a) for a in [s.exporter, s.coop, *s.farmers]}
    tx = e.settle(oid, 10, {"from": s.outsider})
    assert tx.return_value is True
    deposit = 100_000 * (3 * USD + 7) // 1000
    payment = 99_999 * (3 * USD + 7) // 1000
    fee = payment * 250 // 10_000
    pool = payment - fee
    assert tx.events["SettlementStarted"]["farmerPool"] == pool
    assert u.balanceOf(s.exporter) - bal[s.exporter] == deposit - payment
    assert u.balanceOf(s.coop) - bal[s.coop] == fee
    cum, prev, paid = 0, 0, []
    for f, g in grams:
        cum += g
        cut = pool * cum // 100_000
        paid.append(cut - prev)
        prev = cut
    for (f, g), p in zip(grams, paid):
        assert u.balanceOf(f) - bal[f] == p
    assert sum(paid) == pool
    assert [ev["amount"] for ev in tx.events["FarmerPaid"]] == paid
    assert u.balanceOf(e) == 0
    assert e.getOrder(oid)[2] == e.SETTLED()
    assert s.trace.consignmentInfo(cid)[2] == s.trace.CONSIGNMENT_CLOSED()
    with err("BadStatus"):
        e.settle(oid, 10, {"from": s.outsider})


def test_settle_chunked_with_rejected_and_failed(system):
    s, e, u = system, system.escrow, system.usd
    grams = [(s.farmers[i % 4], 5_000 + i) for i in range(20)]
    oid = funded_order(s, grams=200_000)
    lots = record(s, grams)
    cid = consignment(s, oid, lots)
    s.trace.inspectLot(lots[3], False, 3, CERT, {"from": s.inspector})
    e.markShipped(oid, cid, {"from": s.coop})
    e.confirmDelivery(oid, 50_000, [lots[0], lots[7]], {"from": s.exporter})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    before = {f: u.balanceOf(f) for f in s.farmers}
    done, txs = False, []
    while not done:
        tx = e.settle(oid, 6, {"from": s.outsider})
        done = tx.return_value
        txs.append(tx)
    assert len(txs) == 4
    assert [t.events["SettlementProgress"]["cursor"] for t in txs] == [6, 12, 18, 20]
    paid_lots = []
    for tx in txs:
        paid_lots += (
            [ev["lotId"] for ev in tx.events["FarmerPaid"]] if "FarmerPaid" in tx.events else []
        )
    assert sorted(paid_lots) == sorted(set(lots) - {lots[0], lots[3], lots[7]})
    total = sum(u.balanceOf(f) - before[f] for f in s.farmers)
    order = e.getOrder(oid)
    assert total == e.settlements(oid)[0]  # farmerPool
    assert u.balanceOf(e) == 0
    assert order[2] == e.SETTLED()


def test_settle_no_eligible_lots_pays_cooperative(system):
    s, e, u = system, system.escrow, system.usd
    oid, _cid, lots = shipped_order(s)
    e.confirmDelivery(oid, 0, lots, {"from": s.exporter})
    e.dispute(oid, CERT, {"from": s.coop})
    e.resolveDispute(oid, 50 * USD, CERT, {"from": s.arbiter})
    before = u.balanceOf(s.coop)
    tx = e.settle(oid, 1, {"from": s.outsider})
    assert tx.return_value is True
    kinds = {ev["kind"]: ev["amount"] for ev in tx.events["WaterfallPaid"]}
    assert kinds[e.PAY_COOPERATIVE_RESIDUAL()] + kinds[e.PAY_COOPERATIVE_FEE()] == 50 * USD
    assert u.balanceOf(s.coop) - before == 50 * USD
    assert u.balanceOf(e) == 0


def test_dispute_and_resolve(system):
    s, e, u = system, system.escrow, system.usd
    oid, _cid, _lots = delivered_order(s, accepted=50_000)
    with err("NotAParty"):
        e.dispute(oid, CERT, {"from": s.outsider})
    with err("BadStatus"):
        e.resolveDispute(oid, 1, CERT, {"from": s.arbiter})
    tx = e.dispute(oid, CERT, {"from": s.exporter})
    assert tx.events["OrderDisputed"]["by"] == s.exporter
    with err("BadStatus"):
        e.dispute(oid, CERT, {"from": s.coop})
    with err("MissingRole"):
        e.resolveDispute(oid, 1, CERT, {"from": s.admin})
    with err("PaymentExceedsDeposit"):
        e.resolveDispute(oid, 200 * USD + 1, CERT, {"from": s.arbiter})
    tx = e.resolveDispute(oid, 180 * USD, CERT, {"from": s.arbiter})
    assert tx.events["DisputeResolved"]["payment"] == 180 * USD
    ex = u.balanceOf(s.exporter)
    e.settle(oid, 100, {"from": s.outsider})
    assert u.balanceOf(s.exporter) - ex == 20 * USD
    assert u.balanceOf(e) == 0


def test_dispute_window_closed(system):
    s, e = system, system.escrow
    oid, _, _ = delivered_order(s)
    chain.sleep(3 * DAY + 1)
    chain.mine()
    with err("DisputeWindowClosed"):
        e.dispute(oid, CERT, {"from": s.exporter})


def test_refund_after_deadline(system):
    s, e, u = system, system.escrow, system.usd
    oid, cid, lots = shipped_order(s)
    with err("DeadlineNotPassed"):
        e.refund(oid, {"from": s.exporter})
    chain.sleep(31 * DAY)
    chain.mine()
    before = u.balanceOf(s.exporter)
    tx = e.refund(oid, {"from": s.outsider})
    assert tx.events["OrderRefunded"]["amount"] == 200 * USD
    assert u.balanceOf(s.exporter) - before == 200 * USD
    assert s.trace.consignmentInfo(cid)[2] == s.trace.CONSIGNMENT_CANCELLED()
    assert s.trace.liveConsignmentOf(lots[0]) == 0
    with err("BadStatus"):
        e.refund(oid, {"from": s.exporter})
    oid2 = funded_order(s)
    chain.sleep(31 * DAY)
    chain.mine()
    e.refund(oid2, {"from": s.exporter})  # funded, never shipped


def test_market_hooks_access(system):
    s, e = system, system.escrow
    oid = funded_order(s)
    with err("MissingRole"):
        e.registerLien(oid, 1, s.financier, 10, {"from": s.financier})
    with err("MissingRole"):
        e.setCarrier(oid, 1, s.carrier, 10, {"from": s.carrier})
    with err("MissingRole"):
        e.clearCarrier(oid, 1, {"from": s.carrier})


def test_market_hook_errors(system):
    """Drive the hooks from EOAs granted the system roles, to reach every guard."""
    s, e, r = system, system.escrow, system.registry
    fin, log = accounts[8], accounts[9]
    r.grantRole(r.FINANCE_CONTRACT_ROLE(), fin, {"from": s.admin})
    r.grantRole(r.LOGISTICS_CONTRACT_ROLE(), log, {"from": s.admin})
    oid = propose(s)
    with err("BadStatus"):
        e.registerLien(oid, 1, s.financier, 10, {"from": fin})
    with err("BadStatus"):
        e.setCarrier(oid, 1, s.carrier, 10, {"from": log})
    e.accept(oid, {"from": s.coop})
    e.fund(oid, {"from": s.exporter})
    with err("ZeroAddress"):
        e.registerLien(oid, 1, ZERO, 10, {"from": fin})
    with err("InvalidAmount"):
        e.registerLien(oid, 1, s.financier, 0, {"from": fin})
    tx = e.registerLien(oid, 1, s.financier, 10, {"from": fin})
    assert tx.events["LienRegistered"]["market"] == fin
    with err("LienExists"):
        e.registerLien(oid, 2, s.financier, 10, {"from": fin})
    with err("ZeroAddress"):
        e.setCarrier(oid, 1, ZERO, 10, {"from": log})
    with err("CarrierJobMismatch"):
        e.clearCarrier(oid, 1, {"from": log})
    tx = e.setCarrier(oid, 1, s.carrier, 10, {"from": log})
    assert tx.events["CarrierSet"]["fee"] == 10
    with err("CarrierJobMismatch"):
        e.clearCarrier(oid, 2, {"from": log})
    tx = e.clearCarrier(oid, 1, {"from": log})
    assert tx.events["CarrierCleared"]["carrier"] == s.carrier


def test_carrier_already_paid(system):
    s, e, r = system, system.escrow, system.registry
    log = accounts[9]
    r.grantRole(r.LOGISTICS_CONTRACT_ROLE(), log, {"from": s.admin})
    oid = funded_order(s)
    e.setCarrier(oid, 1, s.carrier, 5 * USD, {"from": log})
    lots = record(s, [(s.farmer, 100_000)])
    cid = consignment(s, oid, lots)
    e.markShipped(oid, cid, {"from": s.coop})
    e.confirmDelivery(oid, 100_000, [], {"from": s.exporter})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    carrier_before = s.usd.balanceOf(s.carrier)
    e.settle(oid, 10, {"from": s.outsider})
    assert s.usd.balanceOf(s.carrier) - carrier_before == 5 * USD
    with err("CarrierAlreadyPaid"):
        e.clearCarrier(oid, 1, {"from": log})
