#!/usr/bin/env python
"""Gas report for the Konbit contracts, measured with brownie (tx.gas_used and brownie's gas
profile) on a fresh Anvil.

Run from /work/main with the project environment:
    export PATH=/work/main/scripts/solc-shim:/work/main/node_modules/.bin:$PATH \
           SOLCX_BINARY_PATH=/work/main/scripts/solc-shim
    .venv/bin/python bench/gas_report.py [--lots 1000] [--chunk 250] [--port 18565]

Worst cases on purpose: every lot belongs to a different farmer (a cold registry read per lot
when recording and when adding it to a consignment; a first-ever token balance, i.e. a zero ->
non-zero SSTORE, per lot when settling), and the order runs every part of the escrow: funded by
a financier for the exporter, a release agent that releases against presented documents, a
financier lien and a carrier fee.

Targets (issue acceptance), per lot over its whole life:
    record, batches of 100 lots      <= 35,000 gas per lot
    add to a consignment, by 200     <= 25,000 gas per lot
    settle                           <= 40,000 gas per lot (all settle calls / lots)
    record + add + settle            <= 100,000 gas per lot
    1,000-lot consignment            every settle call <= 10,000,000 gas
The issue's floor for a lot's life is about 70,000 gas: three storage slots written once
(22,100 each: the lot, its place in the consignment, the farmer's first token balance). This
design writes fewer: the lot's slot also holds its consignment (adding rewrites it), the
consignment's list packs four lot ids a slot, and the farmer's first balance; plus events.
Exit status is non-zero if any target fails.
"""

import argparse
import contextlib
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECORD_TARGET = 35_000
ADD_TARGET = 25_000
SETTLE_TARGET = 40_000
LIFE_TARGET = 100_000
LIFE_FLOOR = 70_000
CALL_TARGET = 10_000_000
USD = 10**6
DAY = 86400


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lots", type=int, default=1000, help="lots in the consignment (default 1000)")
    ap.add_argument("--chunk", type=int, default=250, help="maxLots per settle call (default 250)")
    ap.add_argument(
        "--port", type=int, default=18565, help="port for the fresh Anvil (default 18565)"
    )
    args = ap.parse_args()

    os.chdir(ROOT)
    from brownie import network, project
    from brownie._config import CONFIG

    CONFIG.argv["gas"] = True  # enable brownie's gas profiler (history.gas_profile)
    p = project.load(ROOT, name="KonbitBench")
    p.load_config()
    dev = CONFIG.networks["development"]
    dev["cmd_settings"].update(port=args.port, gas_limit=30_000_000, accounts=10, base_fee=0)
    dev["host"] = "http://127.0.0.1"
    dev["cmd"] = "anvil --max-persisted-states 0"  # no old states left on disk
    network.connect("development")  # launches a fresh Anvil on --port
    sys.path.insert(0, os.path.join(ROOT, "tests", "contracts"))
    from anvil_compat import patch_receipt_race

    patch_receipt_race()
    try:
        quiet = io.StringIO()  # brownie prints every transaction; keep the report readable
        with contextlib.redirect_stdout(quiet):
            ok, report = run(p, args)
        print(report)
    finally:
        network.disconnect(kill_rpc=True)
    sys.exit(0 if ok else 1)


def run(p, args):
    from brownie import accounts, chain, history, web3

    from konbit.services.deploy import deploy_with_brownie

    admin, coop, exporter, carrier, financier = (
        accounts[0],
        accounts[1],
        accounts[2],
        accounts[3],
        accounts[4],
    )
    tx = {"from": admin}
    # --- deploy + wire: the one plan (konbit.services.deploy), executed by brownie
    d = deploy_with_brownie(p, admin)
    registry, trace, escrow = d["ClusterRegistry"], d["Traceability"], d["SaleEscrow"]
    logistics, finance, usd = d["LogisticsMarket"], d["FinanceMarket"], d["TestStablecoin"]
    meta = "0x" + "11" * 32
    for acct, role in [
        (coop, "COOPERATIVE_ROLE"),
        (exporter, "EXPORTER_ROLE"),
        (carrier, "LOGISTICS_ROLE"),
        (financier, "FINANCIER_ROLE"),
    ]:
        registry.registerOrganisation(acct, getattr(registry, role)(), meta, tx)

    n = args.lots
    farmers = [
        web3.to_checksum_address(web3.keccak(text=f"konbit-bench-farmer-{i}")[-20:])
        for i in range(n)
    ]
    out = []
    log = out.append
    print(f"enrolling {n} farmers ...", file=sys.stderr, flush=True)
    for f in farmers:
        registry.enrollFarmer(f, {"from": coop})

    # --- order (grams = lots * 10 kg), funded, with a lien and a carrier
    lot_grams = 10_000
    total = n * lot_grams
    price = 2 * USD
    o = escrow.propose(
        coop, usd, 1, total, price, 2, chain.time() + 30 * DAY, 300, {"from": exporter}
    )
    oid = o.return_value
    # a financier funds the order for the exporter and is its release agent
    agreement = "0x" + "a9" * 32
    escrow.nameFunder(oid, financier, agreement, {"from": exporter})
    escrow.proposeReleaseAgent(oid, financier, DAY, {"from": exporter})
    escrow.agreeReleaseAgent(oid, financier, DAY, {"from": coop})
    escrow.accept(oid, {"from": coop})
    deposit = total * price // 1000
    while usd.balanceOf(financier) < deposit:
        usd.faucet(
            financier,
            min(deposit - usd.balanceOf(financier), usd.FAUCET_MAX()),
            {"from": financier},
        )
    usd.approve(escrow, deposit, {"from": financier})
    escrow.fundFor(oid, agreement, {"from": financier})

    # --- record lots in batches of 100
    print("recording lots in batches of 100 ...", file=sys.stderr, flush=True)
    geo = "0x" + b"d7ns5".hex()
    plot = "0x" + "cd" * 32
    ev = "0x" + "ab" * 32
    record_per_lot = []
    lot_ids = []
    for start in range(0, n, 100):
        batch = [
            (f, 1, lot_grams, 3, chain.time(), geo, plot, ev) for f in farmers[start : start + 100]
        ]
        t = trace.recordLots(batch, {"from": coop})
        record_per_lot.append(t.gas_used / len(batch))
        lot_ids += list(range(t.return_value, t.return_value + len(batch)))

    print("adding lots to the consignment in calls of 200 ...", file=sys.stderr, flush=True)
    cid = trace.createConsignment(oid, 2, {"from": coop}).return_value
    add_gas = 0
    for start in range(0, n, 200):
        add_gas += trace.addLots(cid, lot_ids[start : start + 200], {"from": coop}).gas_used

    # lien and carrier so that the whole waterfall runs
    usd.faucet(financier, 1000 * USD, {"from": financier})
    usd.approve(finance, 1000 * USD, {"from": financier})
    rid = finance.requestAdvance(oid, 1000 * USD, {"from": coop}).return_value
    off = finance.makeOffer(
        rid, 1000 * USD, 50 * USD, chain.time() + DAY, {"from": financier}
    ).return_value
    finance.acceptOffer(off, {"from": coop})
    job = logistics.postJob(
        cid, geo, geo, chain.time() + 10 * DAY, 100 * USD, {"from": coop}
    ).return_value
    bid = logistics.placeBid(job, 80 * USD, chain.time() + 5 * DAY, {"from": carrier}).return_value
    logistics.awardJob(job, bid, {"from": coop})

    escrow.markShipped(oid, cid, {"from": coop})
    escrow.confirmDelivery(oid, total, [], {"from": exporter})
    docs = ["0x" + "d1" * 32, "0x" + "d2" * 32, "0x" + "d3" * 32]
    presented = escrow.presentDocuments(oid, docs, {"from": coop})
    docs_hash = presented.events["DocumentsPresented"]["documentsHash"]
    escrow.release(oid, docs_hash, False, {"from": financier})
    chain.sleep(escrow.disputeWindow() + 10)
    chain.mine()

    print(f"settling {n} lots in calls of maxLots={args.chunk} ...", file=sys.stderr, flush=True)
    settle_gas = []
    done = False
    while not done:
        t = escrow.settle(oid, args.chunk, {"from": admin})
        settle_gas.append(t.gas_used)
        done = t.return_value
    assert usd.balanceOf(escrow) == 0, "escrow not empty after settlement"
    paid = sum(usd.balanceOf(f) for f in farmers[:50])
    assert paid > 0

    rec = max(record_per_lot)
    add = add_gas / n
    per_lot = sum(settle_gas) / n
    life = rec + add + per_lot
    worst_call = max(settle_gas)
    rows = [
        (
            "record lots, batch of 100 (worst batch)",
            f"{rec:,.0f} gas/lot",
            f"<= {RECORD_TARGET:,}",
            rec <= RECORD_TARGET,
        ),
        (
            f"add {n} lots to a consignment, by 200",
            f"{add:,.0f} gas/lot",
            f"<= {ADD_TARGET:,}",
            add <= ADD_TARGET,
        ),
        (
            f"settle {n} lots (all calls / lots)",
            f"{per_lot:,.0f} gas/lot",
            f"<= {SETTLE_TARGET:,}",
            per_lot <= SETTLE_TARGET,
        ),
        (
            "a lot's life: record + add + settle",
            f"{life:,.0f} gas/lot",
            f"<= {LIFE_TARGET:,}",
            life <= LIFE_TARGET,
        ),
        (
            f"largest settle call (maxLots={args.chunk})",
            f"{worst_call:,} gas",
            f"<= {CALL_TARGET:,}",
            worst_call <= CALL_TARGET,
        ),
    ]
    log("")
    log(f"{'measurement':44} {'measured':>18} {'target':>14}  result")
    log("-" * 88)
    for name, val, target, ok in rows:
        log(f"{name:44} {val:>18} {target:>14}  {'PASS' if ok else 'FAIL'}")
    log("")
    log(
        f"the issue's floor for a lot's life (three fresh slots at 22,100 each): "
        f"~{LIFE_FLOOR:,} gas; measured {life:,.0f} = {life / LIFE_FLOOR:.2f} x that floor"
    )
    log("settle calls: " + ", ".join(f"{g:,}" for g in settle_gas))
    log("record batches (gas/lot): " + ", ".join(f"{g:,.0f}" for g in record_per_lot))
    # brownie's gas profiler over every transaction of this run
    profile = history.gas_profile
    log("")
    log("brownie gas profile (this run):")
    for key in ("Traceability.recordLots", "Traceability.addLots", "SaleEscrow.settle"):
        stats = profile.get(key)
        if stats:
            log(
                f"  {key:26} calls={stats['count']:<4} avg={stats['avg']:>12,} "
                f"high={stats['high']:>12,} low={stats['low']:>12,}"
            )
    return all(r[3] for r in rows), "\n".join(out)


if __name__ == "__main__":
    main()
