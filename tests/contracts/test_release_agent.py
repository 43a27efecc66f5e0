"""SaleEscrow release agent: a financier both parties agree on before funding checks the
shipping documents the cooperative (or carrier) presents, then releases or refuses; an absent
agent never freezes the money."""

from brownie import accounts, chain
from conftest import (
    CERT,
    DAY,
    USD,
    consignment,
    delivered_order,
    err,
    propose,
    record,
)

WINDOW = 2 * DAY  # the agent's time after the dispute window (the dispute window is 3 days)
DOCS = [
    "0x" + "b1" * 32,
    "0x" + "b2" * 32,
    "0x" + "b3" * 32,
]  # B/L, phyto, hot-water treatment
REASON = "0x" + "ee" * 32


def docs_hash(docs):
    from brownie import web3

    return _hex(web3.keccak(hexstr="".join(d[2:] for d in docs)))


def _hex(value):
    value = value.hex() if hasattr(value, "hex") else str(value)
    return value if value.startswith("0x") else "0x" + value


def agree_agent(s, oid, agent=None, window=WINDOW, by="exporter"):
    agent = agent or s.financier
    other = "coop" if by == "exporter" else "exporter"
    s.escrow.proposeReleaseAgent(oid, agent, window, {"from": getattr(s, by)})
    return s.escrow.agreeReleaseAgent(oid, agent, window, {"from": getattr(s, other)})


def agent_order(s, window=WINDOW, **kw):
    """An order with an agreed release agent (the financier), funded by the exporter."""
    oid = propose(s, **kw)
    agree_agent(s, oid, window=window)
    s.escrow.accept(oid, {"from": s.coop})
    s.escrow.fund(oid, {"from": s.exporter})
    return oid


def delivered_agent_order(s, window=WINDOW, **kw):
    oid = agent_order(s, window=window, **kw)
    lots = record(s, [(s.farmers[i % 4], 25_000) for i in range(4)])
    cid = consignment(s, oid, lots)
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    s.escrow.confirmDelivery(oid, 100_000, [], {"from": s.exporter})
    return oid, cid, lots


def test_agent_agreed_by_both_parties(system):
    s, e = system, system.escrow
    oid = propose(s)
    tx = e.proposeReleaseAgent(oid, s.financier, WINDOW, {"from": s.coop})
    ev = tx.events["ReleaseAgentProposed"]
    assert (ev["by"], ev["agent"], ev["window"]) == (s.coop, s.financier, WINDOW)
    assert list(e.releases(oid))[:4] == [s.financier, WINDOW, e.AGENT_PROPOSED(), True]
    e.accept(oid, {"from": s.coop})
    with err("ReleaseAgentNotAgreed"):
        e.fund(oid, {"from": s.exporter})
    tx = e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.exporter})
    ev = tx.events["ReleaseAgentAgreed"]
    assert (ev["by"], ev["agent"], ev["window"]) == (s.exporter, s.financier, WINDOW)
    assert e.releases(oid)[2] == e.AGENT_AGREED()
    e.fund(oid, {"from": s.exporter})
    assert e.agentDeadline(oid) == 0  # no delivery yet
    with err("BadStatus"):
        e.proposeReleaseAgent(oid, s.financier, WINDOW, {"from": s.exporter})
    with err("BadStatus"):
        e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.exporter})


def test_agent_removed_by_agreement(system):
    s, e = system, system.escrow
    oid = propose(s)
    agree_agent(s, oid)
    e.proposeReleaseAgent(oid, "0x" + "00" * 20, 0, {"from": s.exporter})
    tx = e.agreeReleaseAgent(oid, "0x" + "00" * 20, 0, {"from": s.coop})
    assert tx.events["ReleaseAgentAgreed"]["agent"] == "0x" + "00" * 20
    assert e.releases(oid)[2] == e.AGENT_NONE()
    e.accept(oid, {"from": s.coop})
    e.fund(oid, {"from": s.exporter})  # no agent: funds as before


def test_agent_agreement_errors(system):
    s, e = system, system.escrow
    oid = propose(s)
    zero = "0x" + "00" * 20
    with err("NotAParty"):
        e.proposeReleaseAgent(oid, s.financier, WINDOW, {"from": s.outsider})
    with err("InvalidAgentWindow"):
        e.proposeReleaseAgent(oid, s.financier, 0, {"from": s.exporter})
    with err("InvalidAgentWindow"):
        e.proposeReleaseAgent(oid, s.financier, 30 * DAY + 1, {"from": s.exporter})
    with err("InvalidAgentWindow"):
        e.proposeReleaseAgent(oid, zero, 1, {"from": s.exporter})
    with err("MissingRole"):
        e.proposeReleaseAgent(oid, s.carrier, WINDOW, {"from": s.exporter})
    with err("NoAgentProposal"):
        e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.coop})
    e.proposeReleaseAgent(oid, s.financier, WINDOW, {"from": s.exporter})
    with err("NotAParty"):
        e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.financier})
    with err("NotCounterparty"):
        e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.exporter})
    with err("ReleaseAgentMismatch"):
        e.agreeReleaseAgent(oid, s.financier, WINDOW + 1, {"from": s.coop})
    e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.coop})
    with err("NoAgentProposal"):
        e.agreeReleaseAgent(oid, s.financier, WINDOW, {"from": s.coop})
    e.proposeReleaseAgent(oid, s.financier, WINDOW + 5, {"from": s.coop})  # replaces, unagreed
    e.accept(oid, {"from": s.coop})
    with err("ReleaseAgentNotAgreed"):
        e.fund(oid, {"from": s.exporter})


def test_documents_release_waived_then_settle_at_once(system):
    s, e = system, system.escrow
    oid, _cid, lots = delivered_agent_order(s)
    until = e.getOrder(oid)[9]
    assert e.agentDeadline(oid) == until + WINDOW
    tx = e.presentDocuments(oid, DOCS, {"from": s.coop})
    ev = tx.events["DocumentsPresented"]
    assert _hex(ev["documentsHash"]) == docs_hash(DOCS)
    assert [_hex(d) for d in ev["documentHashes"]] == DOCS
    assert ev["agentDeadline"] == until + WINDOW and ev["by"] == s.coop
    assert e.releases(oid)[2] == e.AGENT_PRESENTED()
    with err("AwaitingReleaseAgent"):
        e.settle(oid, 10, {"from": s.outsider})
    tx = e.release(oid, docs_hash(DOCS), True, {"from": s.financier})
    ev = tx.events["EscrowReleased"]
    assert ev["agent"] == s.financier and ev["disputeWindowWaived"] is True
    assert e.releases(oid)[2] == e.AGENT_RELEASED() and e.releases(oid)[4] is True
    with err("DisputeWindowWaived"):
        e.dispute(oid, CERT, {"from": s.coop})
    tx = e.settle(oid, 10, {"from": s.outsider})  # inside the dispute window: it was waived
    assert tx.return_value is True
    assert e.getOrder(oid)[2] == e.SETTLED() and s.usd.balanceOf(e) == 0
    assert sum(ev["amount"] for ev in tx.events["FarmerPaid"]) > 0
    assert len(tx.events["FarmerPaid"]) == len(lots)


def test_release_without_waiver_waits_for_the_window(system):
    s, e = system, system.escrow
    oid, _cid, _lots = delivered_agent_order(s)
    e.presentDocuments(oid, DOCS[:1], {"from": s.coop})
    e.presentDocuments(oid, DOCS, {"from": s.coop})  # presenting again replaces the set
    with err("DocumentsMismatch"):
        e.release(oid, docs_hash(DOCS[:1]), False, {"from": s.financier})
    e.release(oid, docs_hash(DOCS), False, {"from": s.financier})
    with err("NotReleaseAgent"):
        e.release(oid, docs_hash(DOCS), False, {"from": s.financier})  # acted already
    with err("DisputeWindowOpen"):
        e.settle(oid, 10, {"from": s.outsider})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    assert e.settle(oid, 10, {"from": s.outsider}).return_value is True


def test_release_keeps_the_dispute_right_without_waiver(system):
    s, e = system, system.escrow
    oid, _cid, _lots = delivered_agent_order(s)
    e.presentDocuments(oid, DOCS, {"from": s.coop})
    e.release(oid, docs_hash(DOCS), False, {"from": s.financier})
    tx = e.dispute(oid, CERT, {"from": s.coop})
    assert tx.events["OrderStatusChanged"]["status"] == e.DISPUTED()


def test_carrier_may_present_documents(system):
    s, e = system, system.escrow
    oid = agent_order(s)
    lots = record(s, [(s.farmer, 100_000)])
    cid = consignment(s, oid, lots)
    job = s.logistics.postJob(
        cid,
        "0x" + b"d7ns5".hex(),
        "0x" + b"d7ns5".hex(),
        chain.time() + 9 * DAY,
        10 * USD,
        {"from": s.coop},
    ).return_value
    bid = s.logistics.placeBid(job, 5 * USD, chain.time() + DAY, {"from": s.carrier}).return_value
    s.logistics.awardJob(job, bid, {"from": s.coop})
    e.markShipped(oid, cid, {"from": s.coop})
    e.confirmDelivery(oid, 100_000, [], {"from": s.exporter})
    tx = e.presentDocuments(oid, DOCS, {"from": s.carrier})
    assert tx.events["DocumentsPresented"]["by"] == s.carrier
    with err("NotDocumentPresenter"):
        e.presentDocuments(oid, DOCS, {"from": s.exporter})


def test_document_errors(system):
    s, e = system, system.escrow
    oid = agent_order(s)
    with err("NotDocumentPresenter"):
        e.presentDocuments(oid, DOCS, {"from": s.outsider})
    with err("BadStatus"):
        e.presentDocuments(oid, DOCS, {"from": s.coop})  # not delivered yet
    oid, _cid, _lots = delivered_agent_order(s)
    with err("NoDocuments"):
        e.presentDocuments(oid, [], {"from": s.coop})
    chain.sleep(3 * DAY + WINDOW + 1)
    chain.mine()
    with err("AgentWindowClosed"):
        e.presentDocuments(oid, DOCS, {"from": s.coop})
    # an order without an agent takes no documents
    plain, _c, _l = delivered_order(s)
    with err("NoReleaseAgent"):
        e.presentDocuments(plain, DOCS, {"from": s.coop})


def test_release_errors(system):
    s, e = system, system.escrow
    other = accounts[8]
    s.registry.registerOrganisation(
        other, s.registry.FINANCIER_ROLE(), "0x" + "11" * 32, {"from": s.admin}
    )
    oid, _cid, _lots = delivered_agent_order(s)
    with err("MissingRole"):
        e.release(oid, docs_hash(DOCS), True, {"from": s.coop})
    with err("NotReleaseAgent"):
        e.release(oid, docs_hash(DOCS), True, {"from": other})
    with err("NotReleaseAgent"):
        e.refuseRelease(oid, REASON, {"from": other})
    with err("DocumentsNotPresented"):
        e.release(oid, docs_hash(DOCS), True, {"from": s.financier})
    e.presentDocuments(oid, DOCS, {"from": s.coop})
    # a revoked financier can no longer act (the timeout still frees the money)
    s.registry.revokeRole(s.registry.FINANCIER_ROLE(), s.financier, {"from": s.admin})
    with err("MissingRole"):
        e.release(oid, docs_hash(DOCS), True, {"from": s.financier})
    s.registry.grantRole(s.registry.FINANCIER_ROLE(), s.financier, {"from": s.admin})
    chain.sleep(3 * DAY + WINDOW + 1)
    chain.mine()
    with err("AgentWindowClosed"):
        e.release(oid, docs_hash(DOCS), True, {"from": s.financier})
    with err("AgentWindowClosed"):
        e.refuseRelease(oid, REASON, {"from": s.financier})


def test_agent_before_delivery_cannot_act(system):
    s, e = system, system.escrow
    oid = agent_order(s)
    with err("BadStatus"):
        e.refuseRelease(oid, REASON, {"from": s.financier})


def test_refusal_sends_the_order_to_the_arbiter(system):
    s, e = system, system.escrow
    oid, _cid, _lots = delivered_agent_order(s)
    e.presentDocuments(oid, DOCS, {"from": s.coop})
    tx = e.refuseRelease(oid, REASON, {"from": s.financier})
    ev = tx.events["ReleaseRefused"]
    assert ev["agent"] == s.financier and _hex(ev["reasonHash"]) == REASON
    assert _hex(ev["documentsHash"]) == docs_hash(DOCS)
    assert tx.events["OrderDisputed"]["by"] == s.financier
    assert e.getOrder(oid)[2] == e.DISPUTED() and e.releases(oid)[2] == e.AGENT_REFUSED()
    with err("BadStatus"):
        e.settle(oid, 10, {"from": s.outsider})
    deposit = e.getOrder(oid)[13]
    e.resolveDispute(oid, deposit // 2, CERT, {"from": s.arbiter})
    assert e.settle(oid, 10, {"from": s.outsider}).return_value is True
    assert s.usd.balanceOf(e) == 0


def test_refusal_without_documents(system):
    s, e = system, system.escrow
    oid, _cid, _lots = delivered_agent_order(s)
    tx = e.refuseRelease(oid, REASON, {"from": s.financier})
    assert _hex(tx.events["ReleaseRefused"]["documentsHash"]) == "0x" + "00" * 32
    assert e.getOrder(oid)[2] == e.DISPUTED()


def test_absent_agent_never_freezes_money(system):
    """Past the dispute window plus the agent's window, anyone settles as without an agent."""
    s, e = system, system.escrow
    oid, _cid, lots = delivered_agent_order(s)
    e.presentDocuments(oid, DOCS, {"from": s.coop})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    with err("AwaitingReleaseAgent"):
        e.settle(oid, 10, {"from": s.outsider})  # the window closed, the agent still has time
    chain.sleep(WINDOW)
    chain.mine()
    tx = e.settle(oid, 10, {"from": s.outsider})
    ev = tx.events["ReleaseAgentLapsed"]
    assert ev["agent"] == s.financier and ev["agentDeadline"] == e.agentDeadline(oid)
    assert tx.return_value is True and e.releases(oid)[2] == e.AGENT_LAPSED()
    assert len(tx.events["FarmerPaid"]) == len(lots) and s.usd.balanceOf(e) == 0


def test_dispute_before_the_agent_acts(system):
    s, e = system, system.escrow
    oid, _cid, _lots = delivered_agent_order(s)
    e.dispute(oid, CERT, {"from": s.exporter})
    with err("BadStatus"):
        e.release(oid, docs_hash(DOCS), True, {"from": s.financier})  # the arbiter rules now
    e.resolveDispute(oid, 0, CERT, {"from": s.arbiter})
    assert e.settle(oid, 10, {"from": s.outsider}).return_value is True
