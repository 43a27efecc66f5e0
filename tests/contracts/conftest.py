"""Brownie fixtures for the Konbit contracts.

`deploy_system` is the one deploy + wiring routine (also used by bench/gas_report.py);
the `system` fixture deploys it once per module and onboards one account per role.
Every test runs in `fn_isolation` (Anvil snapshot / revert).
"""

from types import SimpleNamespace

import brownie
import pytest
from anvil_compat import patch_receipt_race
from brownie import (
    accounts,
    chain,
)

from konbit.services.deploy import deploy_with_brownie

USD = 10**6  # 6 decimals
DAY = 86400
ZERO = "0x" + "00" * 20
GEO = "0x" + b"d7ns5".hex()  # bytes5: an area of about 5 km, never a plot
PLOT_COMMITMENT = "0x" + "ab" * 32  # keccak(salt, exact plot), kept off chain
EVIDENCE = "0x" + "ab" * 32
CERT = "0x" + "cd" * 32
META = "0x" + "11" * 32
MANGO = 1


def err(name):
    """Expect a revert with the custom error `name` (brownie decodes 'Name: args')."""
    return brownie.reverts(revert_pattern=rf"{name}(: .*)?")


def deploy_system(admin):
    """Deploy and wire the whole system with brownie. Returns a namespace of contracts.

    konbit.services.deploy's plan (the one deploy routine) executed by brownie, so the contract
    tests exercise exactly what the backend deploys.
    """
    from brownie import project

    d = deploy_with_brownie(project.get_loaded_projects()[0], admin)
    return SimpleNamespace(
        registry=d["ClusterRegistry"],
        trace=d["Traceability"],
        escrow=d["SaleEscrow"],
        logistics=d["LogisticsMarket"],
        finance=d["FinanceMarket"],
        usd=d["TestStablecoin"],
    )


def onboard(s, admin, roles):
    """Register organisations: roles is {account: role_getter_name}."""
    for acct, role in roles.items():
        s.registry.registerOrganisation(acct, getattr(s.registry, role)(), META, {"from": admin})


@pytest.fixture(scope="module")
def system():
    patch_receipt_race()
    admin = accounts[0]
    s = deploy_system(admin)
    s.admin = admin
    s.coop, s.exporter, s.carrier, s.financier = accounts[1], accounts[2], accounts[3], accounts[4]
    s.inspector, s.arbiter, s.farmer, s.outsider, s.coop2 = (
        accounts[5],
        accounts[6],
        accounts[7],
        accounts[8],
        accounts[9],
    )
    onboard(
        s,
        admin,
        {
            s.coop: "COOPERATIVE_ROLE",
            s.coop2: "COOPERATIVE_ROLE",
            s.exporter: "EXPORTER_ROLE",
            s.carrier: "LOGISTICS_ROLE",
            s.financier: "FINANCIER_ROLE",
            s.inspector: "INSPECTOR_ROLE",
            s.arbiter: "ARBITER_ROLE",
        },
    )
    # farmers: accounts[7] plus three fresh addresses (farmers never send transactions)
    s.farmers = [s.farmer] + [accounts.add() for _ in range(3)]
    for f in s.farmers:
        s.registry.enrollFarmer(f, {"from": s.coop})
    s.usd.faucet(s.exporter, 1_000_000 * USD, {"from": s.exporter})
    s.usd.faucet(s.financier, 1_000_000 * USD, {"from": s.financier})
    s.usd.approve(s.escrow, 2**256 - 1, {"from": s.exporter})
    s.usd.approve(s.finance, 2**256 - 1, {"from": s.financier})
    s.usd.approve(s.escrow, 2**256 - 1, {"from": s.financier})  # funds orders for exporters
    return s


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


# ----------------------------------------------------------------------------- helpers


def lot_input(farmer, grams, grade=3, crop=MANGO):
    return (farmer, crop, grams, grade, chain.time(), GEO, PLOT_COMMITMENT, EVIDENCE)


def record(s, grams_by_farmer, grade=3):
    """Record lots [(farmer, grams), ...] in one batch; returns their ids."""
    tx = s.trace.recordLots([lot_input(f, g, grade) for f, g in grams_by_farmer], {"from": s.coop})
    first = tx.return_value
    return list(range(first, first + len(grams_by_farmer)))


def propose(s, grams=100_000, price=2 * USD, min_grade=2, fee_bps=500, deadline_days=30):
    tx = s.escrow.propose(
        s.coop,
        s.usd,
        MANGO,
        grams,
        price,
        min_grade,
        chain.time() + deadline_days * DAY,
        fee_bps,
        {"from": s.exporter},
    )
    return tx.return_value


def funded_order(s, **kw):
    oid = propose(s, **kw)
    s.escrow.accept(oid, {"from": s.coop})
    s.escrow.fund(oid, {"from": s.exporter})
    return oid


def consignment(s, oid, lots, min_grade=2):
    cid = s.trace.createConsignment(oid, min_grade, {"from": s.coop}).return_value
    s.trace.addLots(cid, lots, {"from": s.coop})
    return cid


def shipped_order(s, lots_grams=None, **kw):
    lots_grams = lots_grams or [(s.farmers[i % 4], 25_000) for i in range(4)]
    oid = funded_order(s, **kw)
    lots = record(s, lots_grams)
    cid = consignment(s, oid, lots)
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    return oid, cid, lots


def delivered_order(s, accepted=None, rejected=(), **kw):
    oid, cid, lots = shipped_order(s, **kw)
    if accepted is None:
        accepted = sum(s.trace.lots(lot)[1] for lot in lots if lot not in rejected)
    s.escrow.confirmDelivery(oid, accepted, list(rejected), {"from": s.exporter})
    return oid, cid, lots
