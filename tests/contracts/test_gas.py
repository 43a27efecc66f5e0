"""Gas regression guards (the full report is bench/gas_report.py): worst case, a distinct
fresh farmer per lot. A lot's life (record + add to a consignment + settle) stays under 100k."""

from brownie import chain, web3
from conftest import DAY, EVIDENCE, GEO, funded_order
from conftest import PLOT_COMMITMENT as PLOT


def test_gas_record_add_and_settle_per_lot(system):
    s = system
    n = 100
    farmers = [
        web3.to_checksum_address(web3.keccak(text=f"gas-farmer-{i}")[-20:]) for i in range(n)
    ]
    for f in farmers:
        s.registry.enrollFarmer(f, {"from": s.coop})
    oid = funded_order(s, grams=n * 1_000)
    tx = s.trace.recordLots(
        [(f, 1, 1_000, 3, chain.time(), GEO, PLOT, EVIDENCE) for f in farmers], {"from": s.coop}
    )
    record = tx.gas_used / n
    assert record <= 35_000
    lots = list(range(tx.return_value, tx.return_value + n))
    cid = s.trace.createConsignment(oid, 2, {"from": s.coop}).return_value
    add = s.trace.addLots(cid, lots, {"from": s.coop}).gas_used / n
    assert add <= 25_000
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    s.escrow.confirmDelivery(oid, n * 1_000, [], {"from": s.exporter})
    chain.sleep(3 * DAY + 1)
    chain.mine()
    tx = s.escrow.settle(oid, n, {"from": s.outsider})
    assert tx.return_value is True
    settle = tx.gas_used / n
    assert settle <= 40_000
    assert record + add + settle <= 100_000
    assert s.usd.balanceOf(farmers[0]) > 0
