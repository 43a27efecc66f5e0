"""LogisticsMarket: jobs, bids, award, custody-based pickup/delivery, cancel, timeout, record."""

from brownie import LogisticsMarket, accounts, chain
from conftest import DAY, EVIDENCE, GEO, USD, ZERO, consignment, err, funded_order, record

DROP = "0x" + b"dhwfz".hex()


def _setup(s):
    oid = funded_order(s)
    lots = record(s, [(s.farmer, 100_000)])
    cid = consignment(s, oid, lots)
    return oid, cid


def _post(s, cid, days=10, max_fee=10 * USD):
    return s.logistics.postJob(
        cid, GEO, DROP, chain.time() + days * DAY, max_fee, {"from": s.coop}
    ).return_value


def _awarded(s, fee=8 * USD):
    oid, cid = _setup(s)
    job = _post(s, cid)
    bid = s.logistics.placeBid(job, fee, chain.time() + 5 * DAY, {"from": s.carrier}).return_value
    s.logistics.awardJob(job, bid, {"from": s.coop})
    return oid, cid, job


def test_constructor_zero():
    with err("ZeroAddress"):
        LogisticsMarket.deploy(ZERO, accounts[1], accounts[2], {"from": accounts[0]})


def test_full_job_on_time_and_fee_paid(system):
    s, m, t, e = system, system.logistics, system.trace, system.escrow
    oid, cid = _setup(s)
    tx = m.postJob(cid, GEO, DROP, chain.time() + 10 * DAY, 10 * USD, {"from": s.coop})
    job = tx.return_value
    ev = tx.events["JobPosted"]
    assert ev["orderId"] == oid and ev["consignmentId"] == cid and ev["dropoffGeohash"] == DROP
    assert m.liveJobOf(cid) == job
    tx = m.placeBid(job, 8 * USD, chain.time() + 5 * DAY, {"from": s.carrier})
    bid = tx.return_value
    assert tx.events["BidPlaced"]["fee"] == 8 * USD
    tx = m.awardJob(job, bid, {"from": s.coop})
    assert tx.events["JobAwarded"]["carrier"] == s.carrier
    assert tx.events["CarrierSet"]["fee"] == 8 * USD
    assert list(e.carriers(oid)) == [s.carrier, job, 8 * USD]
    e.markShipped(oid, cid, {"from": s.coop})
    t.handOver(cid, s.carrier, chain.time(), GEO, EVIDENCE, {"from": s.coop})
    with err("CarrierNotCustodian"):
        m.recordPickup(job, {"from": s.carrier})
    t.confirmReceipt(cid, chain.time(), GEO, EVIDENCE, {"from": s.carrier})
    tx = m.recordPickup(job, {"from": s.carrier})
    assert tx.events["JobPickedUp"]["carrier"] == s.carrier
    with err("NotHandedOnByCarrier"):
        m.recordDelivery(job, {"from": s.carrier})
    t.handOver(cid, s.exporter, chain.time(), DROP, EVIDENCE, {"from": s.carrier})
    t.confirmReceipt(cid, chain.time(), DROP, EVIDENCE, {"from": s.exporter})
    tx = m.recordDelivery(job, {"from": s.coop})
    ev = tx.events["JobDelivered"]
    assert ev["onTime"] is True and ev["receiver"] == s.exporter
    assert list(m.carrierRecords(s.carrier)) == [1, 1, 0, 0]
    assert m.liveJobOf(cid) == 0
    e.confirmDelivery(oid, 100_000, [], {"from": s.exporter})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    before = s.usd.balanceOf(s.carrier)
    e.settle(oid, 10, {"from": s.outsider})
    assert s.usd.balanceOf(s.carrier) - before == 8 * USD


def test_late_delivery(system):
    s, m, t, e = system, system.logistics, system.trace, system.escrow
    oid, cid, job = _awarded(s)
    e.markShipped(oid, cid, {"from": s.coop})
    t.handOver(cid, s.carrier, 0, GEO, EVIDENCE, {"from": s.coop})
    t.confirmReceipt(cid, 0, GEO, EVIDENCE, {"from": s.carrier})
    m.recordPickup(job, {"from": s.carrier})
    chain.sleep(11 * DAY)
    chain.mine()
    with err("BadJobStatus"):
        m.expireJob(job, {"from": s.outsider})  # in transit cannot expire
    t.handOver(cid, s.exporter, 0, GEO, EVIDENCE, {"from": s.carrier})
    t.confirmReceipt(cid, 0, GEO, EVIDENCE, {"from": s.exporter})
    tx = m.recordDelivery(job, {"from": s.carrier})
    assert tx.events["JobDelivered"]["onTime"] is False
    assert list(m.carrierRecords(s.carrier)) == [1, 0, 1, 0]


def test_bid_withdraw_and_errors(system):
    s, m = system, system.logistics
    _oid, cid = _setup(s)
    job = _post(s, cid)
    with err("MissingRole"):
        m.placeBid(job, 1, chain.time(), {"from": s.exporter})
    with err("UnknownJob"):
        m.placeBid(999, 1, chain.time(), {"from": s.carrier})
    with err("InvalidAmount"):
        m.placeBid(job, 0, chain.time(), {"from": s.carrier})
    with err("FeeAboveMax"):
        m.placeBid(job, 10 * USD + 1, chain.time(), {"from": s.carrier})
    with err("EtaAfterDeadline"):
        m.placeBid(job, 1, chain.time() + 11 * DAY, {"from": s.carrier})
    bid = m.placeBid(job, USD, chain.time() + DAY, {"from": s.carrier}).return_value
    with err("NotBidder"):
        m.withdrawBid(bid, {"from": s.coop})
    tx = m.withdrawBid(bid, {"from": s.carrier})
    assert tx.events["BidWithdrawn"]["bidId"] == bid
    with err("BidNotActive"):
        m.withdrawBid(bid, {"from": s.carrier})
    with err("BidNotActive"):
        m.awardJob(job, bid, {"from": s.coop})
    with err("BidNotForJob"):
        m.awardJob(job, 999, {"from": s.coop})
    bid2 = m.placeBid(job, USD, chain.time() + DAY, {"from": s.carrier}).return_value
    with err("NotJobCooperative"):
        m.awardJob(job, bid2, {"from": s.coop2})
    bid3 = m.placeBid(job, 2 * USD, chain.time() + DAY, {"from": s.carrier}).return_value
    m.awardJob(job, bid2, {"from": s.coop})
    with err("BadJobStatus"):
        m.withdrawBid(bid3, {"from": s.carrier})  # losing bid on a job no longer open
    with err("BadJobStatus"):
        m.placeBid(job, 1, chain.time(), {"from": s.carrier})
    with err("BadJobStatus"):
        m.awardJob(job, bid2, {"from": s.coop})


def test_post_errors(system):
    s, m = system, system.logistics
    _oid, cid = _setup(s)
    with err("MissingRole"):
        m.postJob(cid, GEO, DROP, chain.time() + DAY, 1, {"from": s.exporter})
    with err("NotConsignmentCooperative"):
        m.postJob(cid, GEO, DROP, chain.time() + DAY, 1, {"from": s.coop2})
    with err("DeadlineInPast"):
        m.postJob(cid, GEO, DROP, chain.time() - 1, 1, {"from": s.coop})
    with err("InvalidAmount"):
        m.postJob(cid, GEO, DROP, chain.time() + DAY, 0, {"from": s.coop})
    _post(s, cid)
    with err("LiveJobExists"):
        _post(s, cid)
    s.trace.cancelConsignment(cid, {"from": s.coop})
    with err("ConsignmentNotShippable"):
        m.postJob(cid, GEO, DROP, chain.time() + DAY, 1, {"from": s.coop})


def test_deadline_errors(system):
    s, m = system, system.logistics
    _oid, cid = _setup(s)
    job = _post(s, cid, days=1)
    bid = m.placeBid(job, USD, chain.time() + 3600, {"from": s.carrier}).return_value
    with err("JobDeadlineNotPassed"):
        m.expireJob(job, {"from": s.outsider})
    chain.sleep(2 * DAY)
    chain.mine()
    with err("JobDeadlinePassed"):
        m.placeBid(job, USD, chain.time(), {"from": s.carrier})
    with err("JobDeadlinePassed"):
        m.awardJob(job, bid, {"from": s.coop})
    tx = m.expireJob(job, {"from": s.outsider})
    assert tx.events["JobExpired"]["carrier"] == ZERO
    assert m.liveJobOf(cid) == 0


def test_expire_awarded_marks_missed(system):
    s, m, e = system, system.logistics, system.escrow
    oid, _cid, job = _awarded(s)
    chain.sleep(11 * DAY)
    chain.mine()
    tx = m.expireJob(job, {"from": s.outsider})
    assert tx.events["JobExpired"]["carrier"] == s.carrier
    assert "CarrierCleared" in tx.events
    assert list(m.carrierRecords(s.carrier)) == [0, 0, 0, 1]
    assert e.carriers(oid)[0] == ZERO


def test_cancel(system):
    s, m, e = system, system.logistics, system.escrow
    oid, cid, job = _awarded(s)
    with err("NotJobCooperative"):
        m.cancelJob(job, {"from": s.carrier})
    tx = m.cancelJob(job, {"from": s.coop})
    assert tx.events["JobCancelled"]["carrier"] == s.carrier and "CarrierCleared" in tx.events
    assert e.carriers(oid)[0] == ZERO
    with err("BadJobStatus"):
        m.cancelJob(job, {"from": s.coop})
    job2 = _post(s, cid)
    m.cancelJob(job2, {"from": s.coop})


def test_pickup_delivery_errors(system):
    s, m = system, system.logistics
    _oid, _cid, job = _awarded(s)
    with err("NotJobCarrier"):
        m.recordPickup(job, {"from": s.coop})
    with err("NotJobParty"):
        m.recordDelivery(job, {"from": s.outsider})
    with err("BadJobStatus"):
        m.recordDelivery(job, {"from": s.carrier})
    oid2, cid2 = _setup(s)
    job2 = _post(s, cid2)
    with err("NotJobCarrier"):
        m.recordPickup(job2, {"from": s.carrier})  # not awarded: carrier is zero
    bid = m.placeBid(job2, USD, chain.time() + DAY, {"from": s.carrier}).return_value
    m.awardJob(job2, bid, {"from": s.coop})
    s.escrow.markShipped(oid2, cid2, {"from": s.coop})
    s.trace.handOver(cid2, s.carrier, 0, GEO, EVIDENCE, {"from": s.coop})
    s.trace.confirmReceipt(cid2, 0, GEO, EVIDENCE, {"from": s.carrier})
    m.recordPickup(job2, {"from": s.carrier})
    with err("BadJobStatus"):
        m.recordPickup(job2, {"from": s.carrier})
