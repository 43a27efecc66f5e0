"""SaleEscrow financier-funded orders: the exporter names a financier and their agreement's hash,
the financier funds the deposit for the exporter, and every refund goes to whoever funded."""

from brownie import accounts, chain
from conftest import DAY, USD, consignment, err, propose, record
from test_release_agent import DOCS, WINDOW, agree_agent, docs_hash

AGREEMENT = "0x" + "a9" * 32
ZERO = "0x" + "00" * 20


def financed_order(s, release_agent=False, **kw):
    oid = propose(s, **kw)
    s.escrow.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
    if release_agent:
        agree_agent(s, oid)
    s.escrow.accept(oid, {"from": s.coop})
    s.escrow.fundFor(oid, AGREEMENT, {"from": s.financier})
    return oid


def test_financier_funds_for_the_exporter(system):
    s, e, u = system, system.escrow, system.usd
    oid = propose(s)
    tx = e.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
    ev = tx.events["FunderNamed"]
    assert (ev["exporter"], ev["financier"]) == (s.exporter, s.financier)
    assert ev["agreementHash"] == AGREEMENT
    assert list(e.fundings(oid)) == [s.financier, False, AGREEMENT]
    assert e.funderOf(oid) == ZERO
    e.accept(oid, {"from": s.coop})
    fin, exp = u.balanceOf(s.financier), u.balanceOf(s.exporter)
    tx = e.fundFor(oid, AGREEMENT, {"from": s.financier})
    ev = tx.events["OrderFunded"]
    assert ev["funder"] == s.financier and ev["amount"] == 200 * USD
    assert u.balanceOf(s.financier) == fin - 200 * USD and u.balanceOf(s.exporter) == exp
    assert e.funderOf(oid) == s.financier and e.fundings(oid)[1] is True
    assert e.getOrder(oid)[0] == s.exporter  # the exporter stays the buyer
    assert e.amountHeld(oid) == 200 * USD


def test_name_funder_errors(system):
    s, e = system, system.escrow
    oid = propose(s)
    with err("NotExporter"):
        e.nameFunder(oid, s.financier, AGREEMENT, {"from": s.coop})
    with err("MissingAgreement"):
        e.nameFunder(oid, s.financier, "0x" + "00" * 32, {"from": s.exporter})
    with err("MissingRole"):
        e.nameFunder(oid, s.carrier, AGREEMENT, {"from": s.exporter})
    e.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
    tx = e.nameFunder(oid, ZERO, "0x" + "00" * 32, {"from": s.exporter})  # cleared
    assert tx.events["FunderNamed"]["financier"] == ZERO
    assert e.fundings(oid)[0] == ZERO
    e.accept(oid, {"from": s.coop})
    with err("NotFunder"):
        e.fundFor(oid, AGREEMENT, {"from": s.financier})
    e.fund(oid, {"from": s.exporter})
    with err("BadStatus"):
        e.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})


def test_fund_for_errors(system):
    s, e = system, system.escrow
    other = accounts[8]
    s.registry.registerOrganisation(
        other, s.registry.FINANCIER_ROLE(), "0x" + "11" * 32, {"from": s.admin}
    )
    s.usd.faucet(other, 1_000 * USD, {"from": other})
    s.usd.approve(e, 2**256 - 1, {"from": other})
    oid = propose(s)
    e.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
    with err("MissingRole"):
        e.fundFor(oid, AGREEMENT, {"from": s.exporter})
    with err("NotFunder"):
        e.fundFor(oid, AGREEMENT, {"from": other})
    with err("AgreementMismatch"):
        e.fundFor(oid, "0x" + "a8" * 32, {"from": s.financier})
    with err("BadStatus"):
        e.fundFor(oid, AGREEMENT, {"from": s.financier})  # not accepted yet
    agree_agent(s, oid)
    e.proposeReleaseAgent(oid, s.financier, WINDOW + 1, {"from": s.coop})
    e.accept(oid, {"from": s.coop})
    with err("ReleaseAgentNotAgreed"):
        e.fundFor(oid, AGREEMENT, {"from": s.financier})
    chain.sleep(31 * DAY)
    chain.mine()
    e.agreeReleaseAgent(oid, s.financier, WINDOW + 1, {"from": s.exporter})
    with err("DeadlinePassed"):
        e.fundFor(oid, AGREEMENT, {"from": s.financier})


def test_exporter_may_still_fund_itself(system):
    s, e = system, system.escrow
    oid = propose(s)
    e.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
    e.accept(oid, {"from": s.coop})
    e.fund(oid, {"from": s.exporter})
    assert e.funderOf(oid) == s.exporter
    with err("BadStatus"):
        e.fundFor(oid, AGREEMENT, {"from": s.financier})


def test_deadline_refund_goes_to_the_funder(system):
    s, e, u = system, system.escrow, system.usd
    oid = financed_order(s)
    # an advance against the order too: it defaults on the refund
    rid = s.finance.requestAdvance(oid, 10 * USD, {"from": s.coop}).return_value
    off = s.finance.makeOffer(rid, 10 * USD, USD, chain.time() + DAY, {"from": s.financier})
    s.finance.acceptOffer(off.return_value, {"from": s.coop})
    chain.sleep(31 * DAY)
    chain.mine()
    fin, exp = u.balanceOf(s.financier), u.balanceOf(s.exporter)
    tx = e.refund(oid, {"from": s.outsider})
    ev = tx.events["OrderRefunded"]
    assert ev["funder"] == s.financier and ev["amount"] == 200 * USD
    assert u.balanceOf(s.financier) - fin == 200 * USD and u.balanceOf(s.exporter) == exp
    assert tx.events["LienSettled"]["defaulted"] is True
    assert u.balanceOf(e) == 0


def test_financier_funds_releases_and_settlement_pays_exactly(system):
    """The issue's story on chain: the financier funds, is the release agent, the cooperative
    presents the documents, the financier releases; every party is paid exactly."""
    s, e, u = system, system.escrow, system.usd
    price, fee_bps = 2 * USD + 3, 400
    oid = financed_order(s, release_agent=True, grams=100_000, price=price, fee_bps=fee_bps)
    grams = [(s.farmers[0], 30_000), (s.farmers[1], 45_000), (s.farmers[2], 25_000)]
    lots = record(s, grams)
    cid = consignment(s, oid, lots)
    e.markShipped(oid, cid, {"from": s.coop})
    e.confirmDelivery(oid, 75_000, [lots[2]], {"from": s.exporter})
    e.presentDocuments(oid, DOCS, {"from": s.coop})
    e.release(oid, docs_hash(DOCS), True, {"from": s.financier})
    parties = [s.financier, s.exporter, s.coop, *s.farmers]
    before = {a: u.balanceOf(a) for a in parties}
    tx = e.settle(oid, 10, {"from": s.outsider})
    assert tx.return_value is True
    deposit = 100_000 * price // 1000
    payment = 75_000 * price // 1000
    fee = payment * fee_bps // 10_000
    pool = payment - fee
    shares = [
        pool * 30_000 // 75_000,
        pool * 75_000 // 75_000 - pool * 30_000 // 75_000,
    ]
    delta = {a: u.balanceOf(a) - before[a] for a in parties}
    assert delta[s.financier] == deposit - payment  # the unused deposit back to the funder
    assert delta[s.exporter] == 0
    assert delta[s.coop] == fee
    assert delta[s.farmers[0]] == shares[0] and delta[s.farmers[1]] == shares[1]
    assert delta[s.farmers[2]] == 0  # rejected lot
    kinds = {ev["kind"]: (ev["payee"], ev["amount"]) for ev in tx.events["WaterfallPaid"]}
    assert kinds[e.PAY_FUNDER_REFUND()] == (s.financier, deposit - payment)
    assert e.PAY_EXPORTER_REFUND() not in kinds
    assert sum(delta.values()) == deposit and u.balanceOf(e) == 0
