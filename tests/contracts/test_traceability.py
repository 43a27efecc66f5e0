"""Traceability: lots, splits, consignments, inspections, custody."""

from brownie import Traceability, accounts, chain
from conftest import (
    CERT,
    EVIDENCE,
    GEO,
    MANGO,
    ZERO,
    consignment,
    err,
    funded_order,
    lot_input,
    record,
)


def test_constructor_zero_registry():
    with err("ZeroAddress"):
        Traceability.deploy(ZERO, {"from": accounts[0]})


def test_record_lot_single(system):
    t = system.trace
    tx = t.recordLot(lot_input(system.farmer, 12_345, grade=2), {"from": system.coop})
    lot_id = tx.return_value
    assert list(t.lots(lot_id)) == [system.farmer, 12_345, 2, t.LOT_ACTIVE(), 0, 0]
    ev = tx.events["LotRecorded"]
    assert (
        ev["lotId"] == lot_id and ev["farmer"] == system.farmer and ev["cooperative"] == system.coop
    )
    assert ev["crop"] == MANGO and ev["grams"] == 12_345 and ev["grade"] == 2
    assert ev["plotGeohash"] == GEO and ev["evidenceHash"] == EVIDENCE


def test_record_lots_batch(system):
    t = system.trace
    inputs = [lot_input(system.farmers[i % 4], 1000 + i) for i in range(10)]
    tx = t.recordLots(inputs, {"from": system.coop})
    first = tx.return_value
    assert len(tx.events["LotRecorded"]) == 10
    assert t.nextLotId() == first + 10
    assert t.lots(first + 9)[1] == 1009


def test_record_errors(system):
    t = system.trace
    with err("MissingRole"):
        t.recordLot(lot_input(system.farmer, 1), {"from": system.exporter})
    with err("MissingRole"):
        t.recordLots([lot_input(system.farmer, 1)], {"from": system.exporter})
    with err("EmptyBatch"):
        t.recordLots([], {"from": system.coop})
    with err("ZeroGrams"):
        t.recordLot(lot_input(system.farmer, 0), {"from": system.coop})
    with err("GramsTooLarge"):
        t.recordLot(lot_input(system.farmer, 2**40), {"from": system.coop})
    t.recordLot(lot_input(system.farmer, 2**40 - 1), {"from": system.coop})  # the bound
    with err("FarmerNotActiveMember"):
        t.recordLot(lot_input(system.farmer, 5), {"from": system.coop2})
    system.registry.setFarmerActive(system.farmer, False, {"from": system.coop})
    with err("FarmerNotActiveMember"):
        t.recordLots([lot_input(system.farmer, 5)], {"from": system.coop})


def test_split(system):
    t = system.trace
    (lot,) = record(system, [(system.farmer, 10_000)])
    tx = t.splitLot(lot, [7_000, 2_000, 1_000], {"from": system.coop})
    first = tx.return_value
    assert t.lots(lot)[3] == t.LOT_SPLIT()
    evs = tx.events["LotSplit"]
    assert [e["grams"] for e in evs] == [7_000, 2_000, 1_000]
    assert [e["childLotId"] for e in evs] == [first, first + 1, first + 2]
    assert sum(t.lots(first + i)[1] for i in range(3)) == 10_000
    assert t.lots(first)[0] == system.farmer


def test_split_errors(system):
    t = system.trace
    (lot,) = record(system, [(system.farmer, 10_000)])
    with err("UnknownLot"):
        t.splitLot(999, [1, 1], {"from": system.coop})
    with err("NotLotCooperative"):
        t.splitLot(lot, [5_000, 5_000], {"from": system.coop2})
    with err("InvalidSplit"):
        t.splitLot(lot, [10_000], {"from": system.coop})
    with err("ZeroGrams"):
        t.splitLot(lot, [10_000, 0], {"from": system.coop})
    with err("SplitGramsMismatch"):
        t.splitLot(lot, [5_000, 4_000], {"from": system.coop})
    t.splitLot(lot, [5_000, 5_000], {"from": system.coop})
    with err("LotNotActive"):
        t.splitLot(lot, [5_000, 5_000], {"from": system.coop})
    (lot2,) = record(system, [(system.farmer, 10_000)])
    consignment(system, 1, [lot2])
    with err("LotInLiveConsignment"):
        t.splitLot(lot2, [5_000, 5_000], {"from": system.coop})


def test_consignment_add_remove_cancel(system):
    t = system.trace
    lots = record(system, [(system.farmers[i], 1_000 * (i + 1)) for i in range(4)])
    tx = t.createConsignment(7, 2, {"from": system.coop})
    cid = tx.return_value
    assert tx.events["ConsignmentCreated"]["orderId"] == 7
    tx = t.addLots(cid, lots, {"from": system.coop})
    assert len(tx.events["LotAddedToConsignment"]) == 4
    info = t.consignmentInfo(cid)
    assert list(info) == [system.coop, 7, t.CONSIGNMENT_OPEN(), 2, 4, 10_000, 10_000]
    assert t.liveConsignmentOf(lots[0]) == cid
    tx = t.removeLots(cid, [lots[0]], {"from": system.coop})
    ev = tx.events["LotRemovedFromConsignment"]
    assert ev["totalGrams"] == 9_000 and ev["eligibleGrams"] == 9_000
    assert sorted(t.consignmentLots(cid)) == sorted(lots[1:])
    # the last lot moved into the removed one's place
    assert list(t.consignmentLots(cid)) == [lots[3], lots[1], lots[2]]
    assert t.lots(lots[0])[5] == 0 and t.lots(lots[3])[5] == cid
    assert t.liveConsignmentOf(lots[0]) == 0
    tx = t.cancelConsignment(cid, {"from": system.coop})
    assert tx.events["ConsignmentStatusChanged"]["status"] == t.CONSIGNMENT_CANCELLED()
    assert t.liveConsignmentOf(lots[1]) == 0
    cid2 = consignment(system, 8, lots[1:])  # lots are free again
    assert t.consignmentInfo(cid2)[4] == 3


def test_remove_lots_any_position(system):
    """Removal finds each lot by scanning the list from its end; the last lot takes its place."""
    t = system.trace
    lots = record(system, [(system.farmers[i % 4], 1_000 + i) for i in range(9)])
    cid = consignment(system, 1, lots)
    expected = list(lots)
    for lot in [lots[0], lots[8], lots[4], lots[5], lots[1]]:
        t.removeLots(cid, [lot], {"from": system.coop})
        at = expected.index(lot)
        expected[at] = expected[-1]
        expected.pop()
        assert list(t.consignmentLots(cid)) == expected
        assert t.liveConsignmentOf(lot) == 0
    t.removeLots(cid, [expected[0], expected[-1]], {"from": system.coop})
    info = t.consignmentInfo(cid)
    assert info[4] == 2 and info[5] == sum(t.lots(lot)[1] for lot in t.consignmentLots(cid))
    with err("LotNotInConsignment"):
        t.removeLots(cid, [lots[0]], {"from": system.coop})
    t.addLots(cid, [lots[0]], {"from": system.coop})  # a removed lot may come back
    assert t.consignmentLots(cid)[-1] == lots[0] and t.lots(lots[0])[5] == cid


def test_consignment_errors(system):
    t = system.trace
    lots = record(system, [(system.farmer, 1_000), (system.farmer, 2_000)])
    low = record(system, [(system.farmer, 1_000)], grade=1)
    with err("MissingRole"):
        t.createConsignment(1, 2, {"from": system.exporter})
    cid = t.createConsignment(1, 2, {"from": system.coop}).return_value
    with err("UnknownConsignment"):
        t.addLots(999, lots, {"from": system.coop})
    with err("NotConsignmentCooperative"):
        t.addLots(cid, lots, {"from": system.coop2})
    with err("UnknownLot"):
        t.addLots(cid, [999], {"from": system.coop})
    with err("LotBelowMinGrade"):
        t.addLots(cid, low, {"from": system.coop})
    t.inspectLot(lots[1], False, 3, CERT, {"from": system.inspector})
    with err("LotFailedInspection"):
        t.addLots(cid, [lots[1]], {"from": system.coop})
    t.addLots(cid, [lots[0]], {"from": system.coop})
    cid2 = t.createConsignment(1, 2, {"from": system.coop}).return_value
    with err("LotInLiveConsignment"):
        t.addLots(cid2, [lots[0]], {"from": system.coop})
    with err("LotNotInConsignment"):
        t.removeLots(cid2, [lots[0]], {"from": system.coop})
    c2lot = record(system, [(system.farmer, 1)])
    with err("NotLotCooperative"):
        t.addLots(
            t.createConsignment(1, 0, {"from": system.coop2}).return_value,
            c2lot,
            {"from": system.coop2},
        )
    t.cancelConsignment(cid2, {"from": system.coop})
    with err("BadConsignmentStatus"):
        t.addLots(cid2, [lots[0]], {"from": system.coop})
    with err("BadConsignmentStatus"):
        t.cancelConsignment(cid2, {"from": system.coop})


def test_inspections(system):
    t = system.trace
    lots = record(system, [(system.farmer, 1_000), (system.farmer, 2_000)])
    cid = consignment(system, 1, lots)
    tx = t.inspectLot(lots[0], False, 3, CERT, {"from": system.inspector})
    ev = tx.events["LotInspected"]
    assert ev["consignmentId"] == cid and ev["passed"] is False and ev["eligibleGrams"] == 2_000
    assert t.lots(lots[0])[4] == t.INSPECTION_FAILED()
    tx = t.inspectLot(lots[0], True, 3, CERT, {"from": system.inspector})
    assert tx.events["LotInspected"]["eligibleGrams"] == 3_000
    tx = t.inspectLot(lots[1], True, 1, CERT, {"from": system.inspector})  # downgraded below min
    assert tx.events["LotInspected"]["eligibleGrams"] == 1_000
    assert t.consignmentInfo(cid)[6] == 1_000
    free = record(system, [(system.farmer, 5)])
    tx = t.inspectLot(free[0], True, 4, CERT, {"from": system.inspector})
    assert tx.events["LotInspected"]["consignmentId"] == 0
    tx = t.inspectConsignment(cid, True, 3, CERT, {"from": system.inspector})
    assert tx.events["ConsignmentInspected"]["certificateHash"] == CERT
    with err("UnknownConsignment"):
        t.inspectConsignment(999, True, 3, CERT, {"from": system.inspector})
    with err("MissingRole"):
        t.inspectLot(lots[0], True, 3, CERT, {"from": system.coop})
    with err("MissingRole"):
        t.inspectConsignment(cid, True, 3, CERT, {"from": system.coop})


def test_inspection_of_lot_in_cancelled_consignment(system):
    t = system.trace
    lots = record(system, [(system.farmer, 1_000)])
    cid = consignment(system, 1, lots)
    t.cancelConsignment(cid, {"from": system.coop})
    tx = t.inspectLot(lots[0], True, 3, CERT, {"from": system.inspector})
    assert tx.events["LotInspected"]["consignmentId"] == 0


def test_custody_and_frozen(system):
    s, t = system, system.trace
    oid = funded_order(s)
    lots = record(s, [(s.farmer, 50_000), (s.farmers[1], 50_000)])
    cid = consignment(s, oid, lots)
    with err("CustodyBeforeShipping"):
        t.handOver(cid, s.carrier, chain.time(), GEO, EVIDENCE, {"from": s.coop})
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    with err("NotCustodian"):
        t.handOver(cid, s.carrier, chain.time(), GEO, EVIDENCE, {"from": s.carrier})
    with err("InvalidCustodyReceiver"):
        t.handOver(cid, ZERO, chain.time(), GEO, EVIDENCE, {"from": s.coop})
    with err("InvalidCustodyReceiver"):
        t.handOver(cid, s.coop, chain.time(), GEO, EVIDENCE, {"from": s.coop})
    tx = t.handOver(cid, s.carrier, 111, GEO, EVIDENCE, {"from": s.coop})
    ev = tx.events["CustodyHandedOver"]
    assert (ev["from"], ev["to"], ev["at"], ev["geohash"]) == (s.coop, s.carrier, 111, GEO)
    with err("NotPendingCustodian"):
        t.confirmReceipt(cid, 112, GEO, EVIDENCE, {"from": s.exporter})
    tx = t.confirmReceipt(cid, 112, GEO, EVIDENCE, {"from": s.carrier})
    assert tx.events["CustodyReceived"]["from"] == s.coop
    custodian, prev, pending, since = t.custodyInfo(cid)
    assert (custodian, prev, pending) == (s.carrier, s.coop, ZERO) and since > 0
    with err("UnknownConsignment"):
        t.confirmReceipt(999, 1, GEO, EVIDENCE, {"from": s.carrier})
    # inspection still allowed while shipped, frozen after delivery
    t.inspectLot(lots[0], True, 3, CERT, {"from": s.inspector})
    s.escrow.confirmDelivery(oid, 100_000, [], {"from": s.exporter})
    with err("ConsignmentFrozen"):
        t.inspectLot(lots[0], True, 3, CERT, {"from": s.inspector})


def test_escrow_hooks_only_escrow(system):
    t = system.trace
    for fn, args in [
        (t.lockForShipping, (1, 1, system.coop, 0)),
        (t.freezeAtDelivery, (1, [])),
        (t.closeConsignment, (1, True)),
    ]:
        with err("MissingRole"):
            fn(*args, {"from": system.coop})


def test_escrow_hook_errors(system):
    """Drive the hooks directly from an account granted ESCROW_CONTRACT_ROLE."""
    s, t, r = system, system.trace, system.registry
    hook = s.outsider
    r.grantRole(r.ESCROW_CONTRACT_ROLE(), hook, {"from": s.admin})
    lots = record(s, [(s.farmer, 1_000)])
    cid = t.createConsignment(5, 2, {"from": s.coop}).return_value
    with err("UnknownConsignment"):
        t.lockForShipping(999, 5, s.coop, 2, {"from": hook})
    with err("EmptyConsignment"):
        t.lockForShipping(cid, 5, s.coop, 2, {"from": hook})
    t.addLots(cid, lots, {"from": s.coop})
    with err("NotConsignmentCooperative"):
        t.lockForShipping(cid, 5, s.coop2, 2, {"from": hook})
    with err("ConsignmentOrderMismatch"):
        t.lockForShipping(cid, 6, s.coop, 2, {"from": hook})
    with err("ConsignmentGradeTooLow"):
        t.lockForShipping(cid, 5, s.coop, 3, {"from": hook})
    with err("BadConsignmentStatus"):
        t.freezeAtDelivery(cid, [], {"from": hook})
    t.lockForShipping(cid, 5, s.coop, 2, {"from": hook})
    with err("BadConsignmentStatus"):
        t.lockForShipping(cid, 5, s.coop, 2, {"from": hook})
    other = record(s, [(s.farmer, 1)])
    with err("LotNotInConsignment"):
        t.freezeAtDelivery(cid, other, {"from": hook})
    with err("LotNotActive"):
        t.freezeAtDelivery(cid, lots + lots, {"from": hook})  # second rejection of same lot
    tx = t.freezeAtDelivery(cid, lots, {"from": hook})
    assert tx.return_value == 0
    assert tx.events["LotRejected"]["lotId"] == lots[0]
    t.closeConsignment(cid, False, {"from": hook})
    with err("BadConsignmentStatus"):
        t.closeConsignment(cid, False, {"from": hook})


def test_settlement_slice(system):
    t = system.trace
    lots = record(system, [(system.farmers[i % 4], 100 + i) for i in range(6)])
    cid = consignment(system, 1, lots)
    t.inspectLot(lots[2], False, 3, CERT, {"from": system.inspector})
    ids, _farmers, grams = t.settlementSlice(cid, 1, 3)
    assert list(ids) == lots[1:4]
    assert list(grams) == [101, 0, 103]
    assert len(t.settlementSlice(cid, 5, 10)[0]) == 1
    assert len(t.settlementSlice(cid, 9, 10)[0]) == 0
