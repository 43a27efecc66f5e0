"""A whole season through HTTP only (the demo season), checked against the contract's rule.

``konbit.demo.run_season`` drives every step through the API as each actor (operator,
cooperative, exporter, carrier, inspector, financier); this test then checks the outcome
from the chain and from the mirror's reads, recomputing the waterfall independently.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import Session

from konbit.api.reads import cooperative_history
from konbit.demo import FARMERS, run_season

USD = 10**6


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_season_through_http(api: Any) -> None:
    season = run_season(api.url, api.runtime, say=lambda _: None)
    farmers, lots, addr = season["farmers"], season["lots"], season["organisations"]
    keys = season["api_keys"]
    exporter, financier, coop, carrier = (
        api.client(keys[r]) for r in ("exporter", "financier", "cooperative", "logistics")
    )

    # The order's terms and outcome as the mirror has them.
    (order,) = [
        o for o in ok(exporter.get("/exporter/orders"))["items"] if o["order_id"] == season["order"]
    ]
    assert order["status"] == "settled"
    # The financier was the release agent: documents presented, escrow released.
    assert order["release_agent"] == addr["financier"] and order["release_state"] == "released"
    assert order["document_hashes"] == season["documents"]
    assert order["documents_presented_by"] == addr["cooperative"]
    assert order["release_waived"] is False
    (advance,) = ok(financier.get("/financier/portfolio"))["items"]
    (job,) = ok(carrier.get("/carrier/jobs/mine"))["items"]
    assert job["status"] == "delivered" and job["on_time"] is True

    # The contract's rule, recomputed: payment, then lien, carrier fee, cooperative fee,
    # then farmers pro rata to the accepted grams of their lots (floor, telescoping).
    accepted = sum(g for i, (_, g) in enumerate(FARMERS) if i != 2)  # lot 3 failed inspection
    assert order["accepted_grams"] == accepted
    payment = accepted * order["price_per_kg"] // 1000
    assert order["payment"] == payment
    rest = payment - min(advance["due"], payment)
    rest -= min(job["fee"], rest)
    pool = rest - min(payment * order["coop_fee_bps"] // 10_000, rest)
    expected, cumulative = {}, 0
    for i, (farmer, (_, grams)) in enumerate(zip(farmers, FARMERS, strict=True)):
        if i == 2:
            expected[farmer] = 0
            continue
        expected[farmer] = (pool * (cumulative + grams) // accepted) - (
            pool * cumulative // accepted
        )
        cumulative += grams

    coin = api.runtime.contracts().stablecoin
    before = season["balances_before_settlement"]
    paid = {f: coin.functions.balanceOf(f).call() - before[f] for f in farmers}
    assert paid == expected
    assert sum(paid.values()) == pool
    events = season["settlement"]["events"]
    assert {e["args"]["lotId"] for e in events if e["event"] == "FarmerPaid"} == {
        lots[0],
        lots[1],
        lots[3],
    }
    repaid = coin.functions.balanceOf(addr["financier"]).call() - before[addr["financier"]]
    assert repaid == advance["due"] == advance["amount"] + advance["fee"]
    assert advance["status"] == "repaid"
    assert advance["repayments"][0]["repaid"] == advance["due"]
    assert (
        coin.functions.balanceOf(addr["logistics"]).call() - before[addr["logistics"]] == job["fee"]
    )

    # Reads: the public trace (nothing personal), the cooperative's farmers and lots.
    public = api.client(None)
    trace = ok(public.get(f"/trace/lots/{lots[0]}"))
    assert trace["grams"] == FARMERS[0][1] and trace["inspection"] == "passed"
    assert [c["kind"] for c in trace["consignment"]["custody"]] == [
        "handover",
        "receipt",
        "handover",
        "receipt",
    ]
    assert trace["consignment"]["order"]["status"] == "settled"
    assert FARMERS[0][0] not in str(trace)
    assert ok(public.get(f"/trace/lots/{lots[2]}"))["inspection"] == "failed"
    listed = ok(coop.get("/cooperative/farmers"))["items"]
    assert {f["name"] for f in listed} == {name for name, _ in FARMERS}
    assert all(f["enrolled"] and f["active"] for f in listed)
    page = ok(coop.get("/cooperative/lots", params={"limit": 2}))
    assert len(page["items"]) == 2 and page["next_after"] == lots[1]
    assert ok(financier.get("/financier/advance-requests"))["items"] == []  # it was funded
    with Session(api.runtime.engine) as session:  # what the next lender will read
        assert cooperative_history(session, addr["cooperative"]).model_dump() == {
            "orders_delivered": 1,
            "deliveries": 1,
            "on_time_rate_bps": 10_000,
            "advances_repaid": 1,
            "advances_defaulted": 0,
        }
