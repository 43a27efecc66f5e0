"""FinanceMarket: requests, offers, acceptance, lien repayment and default, history."""

from brownie import FinanceMarket, accounts, chain
from conftest import DAY, USD, ZERO, consignment, err, funded_order, propose, record


def _request(s, amount=100 * USD):
    oid = funded_order(s)  # deposit 200 USD
    rid = s.finance.requestAdvance(oid, amount, {"from": s.coop}).return_value
    return oid, rid


def _advance(s, amount=100 * USD, fee=10 * USD):
    oid, rid = _request(s, amount)
    off = s.finance.makeOffer(
        rid, amount, fee, chain.time() + DAY, {"from": s.financier}
    ).return_value
    s.finance.acceptOffer(off, {"from": s.coop})
    return oid, rid


def _deliver(s, oid, accepted):
    lots = record(s, [(s.farmer, 60_000), (s.farmers[1], 40_000)])
    cid = consignment(s, oid, lots)
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    s.escrow.confirmDelivery(oid, accepted, [], {"from": s.exporter})
    chain.sleep(3 * DAY + 1)
    chain.mine()


def test_constructor_zero():
    with err("ZeroAddress"):
        FinanceMarket.deploy(ZERO, accounts[1], {"from": accounts[0]})


def test_set_ltv(system):
    f = system.finance
    tx = f.setLtvBps(5000, {"from": system.admin})
    assert tx.events["LtvSet"]["ltvBps"] == 5000 and f.ltvBps() == 5000
    with err("InvalidBps"):
        f.setLtvBps(10_001, {"from": system.admin})
    with err("MissingRole"):
        f.setLtvBps(5000, {"from": system.financier})


def test_request_offer_accept(system):
    s, f, u = system, system.finance, system.usd
    oid = funded_order(s)
    tx = f.requestAdvance(oid, 140 * USD, {"from": s.coop})
    rid = tx.return_value
    assert tx.events["AdvanceRequested"]["maxAmount"] == 140 * USD
    tx = f.makeOffer(rid, 120 * USD, 12 * USD, chain.time() + DAY, {"from": s.financier})
    off = tx.return_value
    assert tx.events["OfferMade"]["orderId"] == oid
    before = u.balanceOf(s.coop)
    tx = f.acceptOffer(off, {"from": s.coop})
    ev = tx.events["AdvanceDisbursed"]
    assert ev["amount"] == 120 * USD and ev["due"] == 132 * USD and ev["financier"] == s.financier
    assert tx.events["LienRegistered"]["amountDue"] == 132 * USD
    assert u.balanceOf(s.coop) - before == 120 * USD
    assert s.escrow.orderSummary(oid)[5] is True
    assert f.requests(rid)[2] == f.ADVANCE_ACTIVE()
    assert list(f.histories(s.coop)) == [1, 0, 0, 120 * USD, 0]


def test_repaid_at_settlement(system):
    s, f, u = system, system.finance, system.usd
    oid, rid = _advance(s)
    _deliver(s, oid, 100_000)
    before = u.balanceOf(s.financier)
    tx = s.escrow.settle(oid, 10, {"from": s.outsider})
    assert u.balanceOf(s.financier) - before == 110 * USD
    assert tx.events["AdvanceRepaid"]["repaid"] == 110 * USD
    assert tx.events["LienSettled"]["defaulted"] is False
    assert f.requests(rid)[2] == f.ADVANCE_REPAID()
    assert list(f.histories(s.coop)) == [1, 1, 0, 100 * USD, 110 * USD]
    assert u.balanceOf(s.escrow) == 0


def test_short_payment_defaults_partially(system):
    s, f, u = system, system.finance, system.usd
    oid, rid = _advance(s)
    _deliver(s, oid, 50_000)  # payment 100 USD < 110 due
    tx = s.escrow.settle(oid, 10, {"from": s.outsider})
    ev = tx.events["AdvanceDefaulted"]
    assert ev["repaid"] == 100 * USD and ev["due"] == 110 * USD
    assert f.requests(rid)[2] == f.ADVANCE_DEFAULTED()
    assert "FarmerPaid" not in tx.events
    assert u.balanceOf(s.escrow) == 0


def test_refund_defaults(system):
    s, f = system, system.finance
    oid, _rid = _advance(s)
    chain.sleep(31 * DAY)
    chain.mine()
    tx = s.escrow.refund(oid, {"from": s.exporter})
    assert tx.events["AdvanceDefaulted"]["repaid"] == 0
    assert tx.events["LienSettled"]["defaulted"] is True
    assert list(f.histories(s.coop)) == [1, 0, 1, 100 * USD, 0]


def test_request_errors(system):
    s, f = system, system.finance
    oid = propose(s)
    with err("NotOrderCooperative"):
        f.requestAdvance(oid, 1, {"from": s.coop2})
    with err("OrderNotFinanceable"):
        f.requestAdvance(oid, 1, {"from": s.coop})
    oid, rid = _request(s)
    with err("InvalidAmount"):
        f.requestAdvance(oid, 0, {"from": s.coop})
    with err("ExceedsLtv"):
        f.requestAdvance(oid, 140 * USD + 1, {"from": s.coop})
    with err("NotRequestCooperative"):
        f.cancelRequest(rid, {"from": s.coop2})
    with err("UnknownRequest"):
        f.cancelRequest(999, {"from": s.coop})
    tx = f.cancelRequest(rid, {"from": s.coop})
    assert tx.events["AdvanceRequestCancelled"]["requestId"] == rid
    with err("BadRequestStatus"):
        f.cancelRequest(rid, {"from": s.coop})
    with err("BadRequestStatus"):
        f.makeOffer(rid, 1, 0, chain.time() + DAY, {"from": s.financier})
    oid2, _rid2 = _advance(s)
    with err("OrderHasLien"):
        f.requestAdvance(oid2, 1, {"from": s.coop})


def test_offer_errors(system):
    s, f = system, system.finance
    _oid, rid = _request(s, 100 * USD)
    exp = chain.time() + DAY
    with err("MissingRole"):
        f.makeOffer(rid, 1, 0, exp, {"from": s.coop})
    with err("UnknownRequest"):
        f.makeOffer(999, 1, 0, exp, {"from": s.financier})
    with err("InvalidAmount"):
        f.makeOffer(rid, 0, 0, exp, {"from": s.financier})
    with err("OfferExceedsRequest"):
        f.makeOffer(rid, 100 * USD + 1, 0, exp, {"from": s.financier})
    with err("ExpiryInPast"):
        f.makeOffer(rid, 1, 0, chain.time() - 1, {"from": s.financier})
    with err("OfferExceedsProceeds"):
        f.makeOffer(rid, 100 * USD, 100 * USD + 1, exp, {"from": s.financier})
    off = f.makeOffer(rid, 50 * USD, 0, exp, {"from": s.financier}).return_value
    with err("NotOfferFinancier"):
        f.withdrawOffer(off, {"from": s.coop})
    tx = f.withdrawOffer(off, {"from": s.financier})
    assert tx.events["OfferWithdrawn"]["offerId"] == off
    with err("BadOfferStatus"):
        f.withdrawOffer(off, {"from": s.financier})
    with err("UnknownOffer"):
        f.withdrawOffer(999, {"from": s.financier})
    with err("BadOfferStatus"):
        f.acceptOffer(off, {"from": s.coop})
    off2 = f.makeOffer(rid, 50 * USD, 0, exp, {"from": s.financier}).return_value
    with err("NotRequestCooperative"):
        f.acceptOffer(off2, {"from": s.coop2})
    chain.sleep(2 * DAY)
    chain.mine()
    with err("OfferExpired"):
        f.acceptOffer(off2, {"from": s.coop})


def test_second_acceptance_on_same_order_hits_lien(system):
    s, f = system, system.finance
    oid = funded_order(s)
    r1 = f.requestAdvance(oid, 50 * USD, {"from": s.coop}).return_value
    r2 = f.requestAdvance(oid, 50 * USD, {"from": s.coop}).return_value
    o1 = f.makeOffer(r1, 50 * USD, 0, chain.time() + DAY, {"from": s.financier}).return_value
    o2 = f.makeOffer(r2, 50 * USD, 0, chain.time() + DAY, {"from": s.financier}).return_value
    f.acceptOffer(o1, {"from": s.coop})
    with err("LienExists"):
        f.acceptOffer(o2, {"from": s.coop})


def test_on_lien_settled_only_escrow(system):
    s, f = system, system.finance
    _oid, rid = _advance(s)
    with err("NotEscrow"):
        f.onLienSettled(rid, 0, 1, {"from": s.admin})
