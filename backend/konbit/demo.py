"""The demo season: a whole harvest-to-payout cycle driven through the HTTP API.

``konbit demo`` serves the backend and, once it answers, runs this season against it
(the first time only: a marker in the data dir remembers). Everything goes through the
same endpoints an exporter, cooperative, carrier, inspector and financier would use, so
the demo doubles as a tour of the API. The order has a release agent (the financier, agreed
by exporter and cooperative before funding) that releases the escrow once the cooperative
presents the shipping documents. Time jumps (the dispute window) use Anvil's
``evm_increaseTime``: local chains only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from eth_utils import keccak

from konbit.access.keys import issue_key
from konbit.roles import Role
from konbit.runtime import Runtime

log = logging.getLogger(__name__)
USD = 10**6
DAY = 86_400
EVIDENCE = "0x" + "ab" * 32
FARMERS = (
    ("Anne Joseph", 90_000),
    ("Bazile Pierre", 120_000),
    ("Clotilde Jean", 60_000),
    ("Dieudonné Louis", 110_000),
)
#: The shipping documents the cooperative presents to the release agent (their hashes only
#: go on chain; the documents themselves stay with the parties).
DOCUMENTS = (
    "bill of lading KB-2026-0001",
    "phytosanitary certificate HT-PHY-2026-0417",
    "hot-water treatment certificate HWT-2026-0417",
    "buyer's receipt, Port of Miami",
)


class DemoError(RuntimeError):
    pass


def _ok(reply: httpx.Response) -> dict[str, Any]:
    if reply.status_code not in (200, 201):
        raise DemoError(
            f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text}"
        )
    body: dict[str, Any] = reply.json()
    return body


def _first(body: dict[str, Any], event: str, key: str) -> int:
    for item in body.get("events", []):
        if item["event"] == event:
            return int(item["args"][key])
    raise DemoError(f"no {event} event in the answer")


def _usd(minor_units: int) -> str:
    """Token minor units as a decimal string, without going through floats."""
    return f"{minor_units // USD:,}.{minor_units % USD:06d}"


def run_season(
    base_url: str, runtime: Runtime, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Drive one season; returns the ids and the operator key it made."""
    operator = runtime.operator()
    if operator is None:
        raise DemoError("no operator account: run `konbit deploy` first")
    _, operator_key = issue_key(runtime.engine, operator, Role.OPERATOR, "demo")
    w = {"wait": "true"}

    def client(key: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )

    op = client(operator_key)
    addr: dict[str, str] = {}
    keys: dict[str, str] = {}
    names = {
        "cooperative": "Kowoperativ Mango Gran Plèn",
        "exporter": "Caribbean Fresh Exports",
        "logistics": "Transpò Nò",
        "financier": "Fonds Agricole Solidaire",
        "inspector": "Inspection Phytosanitaire",
        "arbiter": "Chambre d'arbitrage",
    }
    say("onboarding organisations")
    for role, name in names.items():
        body = _ok(op.post("/operator/organisations", params=w, json={"name": name, "role": role}))
        addr[role] = body["organisation"]["address"]
        keys[role] = _ok(
            op.post(f"/operator/organisations/{addr[role]}/keys", json={"label": "demo"})
        )["key"]
    for role in ("exporter", "financier"):
        _ok(
            op.post(
                "/operator/faucet", params=w, json={"address": addr[role], "amount": 50_000 * USD}
            )
        )
    coop, exporter, carrier, financier, inspector = (
        client(keys[r]) for r in ("cooperative", "exporter", "logistics", "financier", "inspector")
    )

    say("enrolling farmers")
    farmers = []
    for i, (name, _) in enumerate(FARMERS):
        body = _ok(
            coop.post(
                "/cooperative/farmers",
                params=w,
                json={
                    "name": name,
                    "phone": f"+509370010{i:02d}",
                    "language": "ht",
                    "plot_geohash": "d7ns5qzk",
                },
            )
        )
        farmers.append(body["farmer"]["address"])

    # Chain time, not wall time: a local chain may have been moved forward before.
    now = int(runtime.rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    total = sum(g for _, g in FARMERS)
    say(f"purchase order for {total // 1000} kg of mangoes")
    body = _ok(
        exporter.post(
            "/exporter/orders",
            params=w,
            json={
                "cooperative": addr["cooperative"],
                "crop": 1,
                "grams": total,
                "price_per_kg": 1_800_000,
                "min_grade": 2,
                "delivery_deadline": now + 30 * DAY,
                "coop_fee_bps": 400,
            },
        )
    )
    order = _first(body, "OrderProposed", "orderId")
    say("the financier is the order's release agent, agreed by exporter and cooperative")
    agent = {"agent": addr["financier"], "window_seconds": 2 * DAY}
    _ok(exporter.post(f"/exporter/orders/{order}/release-agent", params=w, json=agent))
    _ok(coop.post(f"/cooperative/orders/{order}/release-agent/agree", params=w, json=agent))
    _ok(coop.post(f"/cooperative/orders/{order}/accept", params=w))
    _ok(exporter.post(f"/exporter/orders/{order}/fund", params=w))

    say("pre-harvest advance")
    body = _ok(
        coop.post(
            f"/cooperative/orders/{order}/advance-requests", params=w, json={"amount": 150 * USD}
        )
    )
    request_id = _first(body, "AdvanceRequested", "requestId")
    body = _ok(
        financier.post(
            f"/financier/advance-requests/{request_id}/offers",
            params=w,
            json={"amount": 150 * USD, "fee": 6 * USD, "expiry": now + 7 * DAY},
        )
    )
    _ok(coop.post(f"/cooperative/offers/{_first(body, 'OfferMade', 'offerId')}/accept", params=w))

    say("harvest lots, consignment, inspection")
    body = _ok(
        coop.post(
            "/cooperative/lots/batch",
            params=w,
            json={
                "lots": [
                    {
                        "farmer": f,
                        "crop": 1,
                        "grams": g,
                        "grade": 3,
                        "harvest_time": now - DAY,
                        "plot_geohash": "d7ns5qzk",
                        "evidence_hash": EVIDENCE,
                    }
                    for f, (_, g) in zip(farmers, FARMERS, strict=True)
                ]
            },
        )
    )
    lots = [int(e["args"]["lotId"]) for e in body["events"] if e["event"] == "LotRecorded"]
    body = _ok(
        coop.post("/cooperative/consignments", params=w, json={"order_id": order, "min_grade": 2})
    )
    consignment = _first(body, "ConsignmentCreated", "consignmentId")
    _ok(
        coop.post(f"/cooperative/consignments/{consignment}/lots", params=w, json={"lot_ids": lots})
    )
    for lot in lots:
        passed = lot != lots[2]  # one lot fails the hot-water treatment check
        _ok(
            inspector.post(
                f"/inspector/lots/{lot}/inspections",
                params=w,
                json={"passed": passed, "grade": 3 if passed else 1, "certificate_hash": EVIDENCE},
            )
        )

    say("transport: job, bid, award, custody to the port")
    body = _ok(
        coop.post(
            "/cooperative/jobs",
            params=w,
            json={
                "consignment_id": consignment,
                "pickup_geohash": "d7ns5",
                "dropoff_geohash": "d7q3w",
                "deadline": now + 10 * DAY,
                "max_fee": 40 * USD,
            },
        )
    )
    job = _first(body, "JobPosted", "jobId")
    body = _ok(
        carrier.post(
            f"/carrier/jobs/{job}/bids", params=w, json={"fee": 32 * USD, "eta": now + 2 * DAY}
        )
    )
    _ok(
        coop.post(
            f"/cooperative/jobs/{job}/award",
            params=w,
            json={"bid_id": _first(body, "BidPlaced", "bidId")},
        )
    )
    _ok(
        coop.post(
            f"/cooperative/orders/{order}/ship", params=w, json={"consignment_id": consignment}
        )
    )
    step = {"at": now, "geohash": "d7ns5", "evidence_hash": EVIDENCE}
    _ok(
        coop.post(
            f"/cooperative/consignments/{consignment}/handover",
            params=w,
            json={**step, "to": addr["logistics"]},
        )
    )
    _ok(carrier.post(f"/carrier/consignments/{consignment}/receive", params=w, json=step))
    _ok(carrier.post(f"/carrier/jobs/{job}/pickup", params=w))
    port = {**step, "geohash": "d7q3w"}
    _ok(
        carrier.post(
            f"/carrier/consignments/{consignment}/handover",
            params=w,
            json={**port, "to": addr["exporter"]},
        )
    )
    _ok(exporter.post(f"/exporter/consignments/{consignment}/receive", params=w, json=port))
    _ok(carrier.post(f"/carrier/jobs/{job}/delivery", params=w))

    accepted = total - FARMERS[2][1]
    say(f"exporter accepts {accepted // 1000} kg; dispute window passes; settlement")
    _ok(
        exporter.post(
            f"/exporter/orders/{order}/confirm",
            params=w,
            json={"accepted_grams": accepted, "rejected_lots": []},
        )
    )
    say("shipping documents presented to the release agent; it checks them and releases")
    documents = ["0x" + keccak(text=d).hex() for d in DOCUMENTS]
    body = _ok(
        coop.post(
            f"/cooperative/orders/{order}/documents",
            params=w,
            json={"document_hashes": documents},
        )
    )
    documents_hash = next(
        e["args"]["documentsHash"] for e in body["events"] if e["event"] == "DocumentsPresented"
    )
    _ok(
        financier.post(
            f"/financier/orders/{order}/release",
            params=w,
            json={"documents_hash": documents_hash, "waive_dispute_window": False},
        )
    )
    runtime.rpc.call("evm_increaseTime", 4 * DAY)
    runtime.rpc.call("evm_mine")
    coin = runtime.contracts().stablecoin
    before = {a: coin.functions.balanceOf(a).call() for a in (*farmers, *addr.values())}
    body = _ok(op.post(f"/operator/orders/{order}/settle", params=w, json={"max_lots": 500}))
    paid = {
        e["args"]["farmer"]: e["args"]["amount"]
        for e in body["events"]
        if e["event"] == "FarmerPaid"
    }
    for (name, _), farmer in zip(FARMERS, farmers, strict=True):
        say(f"  {name:18s} paid {_usd(paid.get(farmer, 0)):>12s} kUSD")
    return {
        "order": order,
        "lots": lots,
        "consignment": consignment,
        "operator_key": operator_key,
        "organisations": addr,
        "api_keys": keys,
        "farmers": farmers,
        "settlement": body,
        "balances_before_settlement": before,
        "documents": documents,
    }


def run_once(
    base_url: str, runtime: Runtime, marker: Path, say: Callable[[str], None] = print
) -> None:
    """Run the season unless this data dir already has one; print where to look."""
    if marker.exists():
        say(f"demo season already in this chain ({marker}); serving at {base_url}")
        return
    result = run_season(base_url, runtime, say)
    marker.write_text(str(result["order"]))
    say("")
    say(f"demo season done: order {result['order']} settled.")
    say(f"  public trace:  {base_url}/trace/lots/{result['lots'][0]}")
    say(f"                 {base_url}/trace/consignments/{result['consignment']}")
    say(f"  API docs:      {base_url}/docs")
    say(f"  operator key:  {result['operator_key']}  (shown once)")
