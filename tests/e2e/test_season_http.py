"""A whole season through HTTP only, checked against the contract's payout rule."""

from __future__ import annotations

import time
from typing import Any

import httpx

USD = 10**6
DAY = 86_400
HASH = "0x" + "ab" * 32


def ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code in (200, 201), reply.text
    body: dict[str, Any] = reply.json()
    return body


def event(body: dict[str, Any], name: str) -> dict[str, Any]:
    found = [e["args"] for e in body["events"] if e["event"] == name]
    assert found, f"no {name} in {[e['event'] for e in body['events']]}"
    return found[0]


def events(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e["args"] for e in body["events"] if e["event"] == name]


def test_season_through_http(api: Any) -> None:
    op = api.client(api.operator_key)
    w = {"wait": "true"}

    # Operator onboards the organisations and gives each an API key.
    keys: dict[str, str] = {}
    addr: dict[str, str] = {}
    for role in ("cooperative", "exporter", "logistics", "financier", "inspector", "arbiter"):
        body = ok(
            op.post(
                "/operator/organisations", params=w, json={"name": f"Test {role}", "role": role}
            )
        )
        addr[role] = body["organisation"]["address"]
        keys[role] = ok(op.post(f"/operator/organisations/{addr[role]}/keys", json={}))["key"]
    coop, exporter, carrier, financier, inspector = (
        api.client(keys[r])
        for r in ("cooperative", "exporter", "logistics", "financier", "inspector")
    )
    ok(
        op.post(
            "/operator/faucet", params=w, json={"address": addr["exporter"], "amount": 10_000 * USD}
        )
    )
    ok(
        op.post(
            "/operator/faucet",
            params=w,
            json={"address": addr["financier"], "amount": 10_000 * USD},
        )
    )

    # The cooperative enrols three farmers (private profiles stay off chain).
    farmers = []
    for i, name in enumerate(("Anne", "Bazile", "Clotilde")):
        body = ok(
            coop.post(
                "/cooperative/farmers",
                params=w,
                json={
                    "name": name,
                    "phone": f"+5093700000{i}",
                    "language": "ht",
                    "plot_geohash": "d7ns5qzk",
                },
            )
        )
        farmers.append(body["farmer"]["address"])

    # Order proposed, accepted, funded.
    now = int(time.time())
    body = ok(
        exporter.post(
            "/exporter/orders",
            params=w,
            json={
                "cooperative": addr["cooperative"],
                "crop": 1,
                "grams": 300_000,
                "price_per_kg": 2 * USD,
                "min_grade": 2,
                "delivery_deadline": now + 30 * DAY,
                "coop_fee_bps": 500,
            },
        )
    )
    order = event(body, "OrderProposed")["orderId"]
    ok(coop.post(f"/cooperative/orders/{order}/accept", params=w))
    ok(exporter.post(f"/exporter/orders/{order}/fund", params=w))

    # Advance requested, offered, accepted.
    body = ok(
        coop.post(
            f"/cooperative/orders/{order}/advance-requests", params=w, json={"amount": 100 * USD}
        )
    )
    request_id = event(body, "AdvanceRequested")["requestId"]
    body = ok(
        financier.post(
            f"/financier/advance-requests/{request_id}/offers",
            params=w,
            json={"amount": 100 * USD, "fee": 5 * USD, "expiry": now + 7 * DAY},
        )
    )
    offer = event(body, "OfferMade")["offerId"]
    ok(coop.post(f"/cooperative/offers/{offer}/accept", params=w))

    # Lots recorded in one batch; a consignment; one lot fails inspection.
    grams = [100_000, 120_000, 80_000]
    body = ok(
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
                        "evidence_hash": HASH,
                    }
                    for f, g in zip(farmers, grams)
                ]
            },
        )
    )
    lots = [e["lotId"] for e in events(body, "LotRecorded")]
    assert len(lots) == 3
    body = ok(
        coop.post("/cooperative/consignments", params=w, json={"order_id": order, "min_grade": 2})
    )
    consignment = event(body, "ConsignmentCreated")["consignmentId"]
    ok(coop.post(f"/cooperative/consignments/{consignment}/lots", params=w, json={"lot_ids": lots}))
    for lot, passed in zip(lots, (True, True, False)):
        ok(
            inspector.post(
                f"/inspector/lots/{lot}/inspections",
                params=w,
                json={"passed": passed, "grade": 3 if passed else 1, "certificate_hash": HASH},
            )
        )

    # Transport: job, bid, award, custody cooperative -> carrier -> exporter.
    body = ok(
        coop.post(
            "/cooperative/jobs",
            params=w,
            json={
                "consignment_id": consignment,
                "pickup_geohash": "d7ns5qzk",
                "dropoff_geohash": "dhwfzz",
                "deadline": now + 10 * DAY,
                "max_fee": 20 * USD,
            },
        )
    )
    job = event(body, "JobPosted")["jobId"]
    body = ok(
        carrier.post(
            f"/carrier/jobs/{job}/bids", params=w, json={"fee": 15 * USD, "eta": now + 5 * DAY}
        )
    )
    bid = event(body, "BidPlaced")["bidId"]
    ok(coop.post(f"/cooperative/jobs/{job}/award", params=w, json={"bid_id": bid}))
    ok(
        coop.post(
            f"/cooperative/orders/{order}/ship", params=w, json={"consignment_id": consignment}
        )
    )
    step = {"at": now, "geohash": "d7ns5qzk", "evidence_hash": HASH}
    ok(
        coop.post(
            f"/cooperative/consignments/{consignment}/handover",
            params=w,
            json={**step, "to": addr["logistics"]},
        )
    )
    ok(carrier.post(f"/carrier/consignments/{consignment}/receive", params=w, json=step))
    ok(carrier.post(f"/carrier/jobs/{job}/pickup", params=w))
    ok(
        carrier.post(
            f"/carrier/consignments/{consignment}/handover",
            params=w,
            json={**step, "geohash": "dhwfzz", "to": addr["exporter"]},
        )
    )
    ok(
        exporter.post(
            f"/exporter/consignments/{consignment}/receive",
            params=w,
            json={**step, "geohash": "dhwfzz"},
        )
    )
    ok(carrier.post(f"/carrier/jobs/{job}/delivery", params=w))

    # The exporter accepts the good lots; after the dispute window the operator settles.
    ok(
        exporter.post(
            f"/exporter/orders/{order}/confirm",
            params=w,
            json={"accepted_grams": 220_000, "rejected_lots": []},
        )
    )
    rpc = api.runtime.rpc
    rpc.call("evm_increaseTime", 4 * DAY)
    rpc.call("evm_mine")
    coin = api.runtime.contracts().stablecoin
    before = {
        a: coin.functions.balanceOf(a).call()
        for a in (*farmers, addr["financier"], addr["logistics"])
    }
    body = ok(op.post(f"/operator/orders/{order}/settle", params=w, json={"max_lots": 500}))

    # The contract's rule: lien, carrier, cooperative fee, then farmers pro rata (floor).
    payment = 220_000 * 2 * USD // 1000
    rest = payment - 105 * USD - 15 * USD
    pool = rest - min(payment * 500 // 10_000, rest)
    eligible = [(farmers[0], 100_000), (farmers[1], 120_000)]
    total = sum(g for _, g in eligible)
    expected: dict[str, int] = {}
    cumulative = 0
    for farmer, g in eligible:
        share = pool * (cumulative + g) // total - pool * cumulative // total
        cumulative += g
        expected[farmer] = expected.get(farmer, 0) + share
    paid = {f: coin.functions.balanceOf(f).call() - before[f] for f in farmers}
    assert paid == {
        farmers[0]: expected[farmers[0]],
        farmers[1]: expected[farmers[1]],
        farmers[2]: 0,
    }
    assert sum(paid.values()) == pool
    farmer_events = events(body, "FarmerPaid")
    assert {e["lotId"] for e in farmer_events} == set(lots[:2])
    assert (
        coin.functions.balanceOf(addr["financier"]).call() - before[addr["financier"]] == 105 * USD
    )
    assert (
        coin.functions.balanceOf(addr["logistics"]).call() - before[addr["logistics"]] == 15 * USD
    )
    assert any(e["event"] == "AdvanceRepaid" for e in body["events"])

    # Reads come from the mirror: public trace, the financier's portfolio, the farmers list.
    public = api.client(None)
    trace = ok(public.get(f"/trace/lots/{lots[0]}"))
    assert trace["grams"] == 100_000 and trace["inspection"] == "passed"
    assert [c["kind"] for c in trace["consignment"]["custody"]] == [
        "handover",
        "receipt",
        "handover",
        "receipt",
    ]
    assert trace["consignment"]["order"]["status"] == "settled"
    assert "Anne" not in str(trace)  # nothing personal in the public trace
    failed = ok(public.get(f"/trace/lots/{lots[2]}"))
    assert failed["inspection"] == "failed"
    folio = ok(financier.get("/financier/portfolio"))["items"]
    assert folio[0]["repayments"][0]["repaid"] == 105 * USD
    listed = ok(coop.get("/cooperative/farmers"))["items"]
    assert {f["name"] for f in listed} == {"Anne", "Bazile", "Clotilde"}
    assert all(f["enrolled"] and f["active"] for f in listed)
    lots_page = ok(coop.get("/cooperative/lots", params={"limit": 2}))
    assert len(lots_page["items"]) == 2 and lots_page["next_after"] == lots[1]
