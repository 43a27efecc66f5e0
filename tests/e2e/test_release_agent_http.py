"""Financiers releasing escrow, through HTTP only, on SQLite and PostgreSQL.

A financier funds an order for its exporter and is named its release agent (agreed by both
parties before funding); the cooperative presents the shipping documents; the financier
releases; settlement pays every party exactly (the waterfall recomputed here, independently
of the contract). An agent who refuses sends the order to the arbiter instead.
"""

from __future__ import annotations

from typing import Any

import httpx
from eth_utils import keccak

USD = 10**6
DAY = 86_400
W = {"wait": "true"}
AGREEMENT = "0x" + keccak(text="trade finance agreement KB-TF-7").hex()
DOCUMENTS = [
    "0x" + keccak(text=d).hex()
    for d in ("bill of lading", "phytosanitary certificate", "hot-water treatment", "receipt")
]
WINDOW = 2 * DAY


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def event(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [e["args"] for e in body["events"] if e["event"] == name]
    return found


class Parties:
    """The onboarded organisations' clients, farmers enrolled, exporter and financier funded."""

    def __init__(self, api: Any) -> None:
        from konbit.roles import Role

        api.onboard()
        self.api = api
        self.addr = {r.value: a for r, a in api.addresses.items()}
        self.op = api.client(api.operator_key)
        self.coop = api.client(api.keys[Role.COOPERATIVE])
        self.exporter = api.client(api.keys[Role.EXPORTER])
        self.financier = api.client(api.keys[Role.FINANCIER])
        self.arbiter = api.client(api.keys[Role.ARBITER])
        for role in ("exporter", "financier"):
            ok(
                self.op.post(
                    "/operator/faucet",
                    params=W,
                    json={"address": self.addr[role], "amount": 10_000 * USD},
                )
            )
        self.farmers = [
            ok(self.coop.post("/cooperative/farmers", params=W, json={"name": f"Farmer {i}"}))[
                "farmer"
            ]["address"]
            for i in range(3)
        ]
        self.coin = api.runtime.contracts().stablecoin

    def now(self) -> int:
        block = self.api.runtime.rpc.call("eth_getBlockByNumber", "latest", False)
        return int(block["timestamp"], 16)

    def travel(self, seconds: int) -> None:
        self.api.runtime.rpc.call("evm_increaseTime", seconds)
        self.api.runtime.rpc.call("evm_mine")

    def balance(self, who: str) -> int:
        return int(self.coin.functions.balanceOf(who).call())

    def order(self, grams: int, price: int, fee_bps: int) -> int:
        body = ok(
            self.exporter.post(
                "/exporter/orders",
                params=W,
                json={
                    "cooperative": self.addr["cooperative"],
                    "crop": 1,
                    "grams": grams,
                    "price_per_kg": price,
                    "min_grade": 2,
                    "delivery_deadline": self.now() + 30 * DAY,
                    "coop_fee_bps": fee_bps,
                },
            )
        )
        return int(event(body, "OrderProposed")["orderId"])

    def agent(self, order: int) -> None:
        """The exporter proposes the financier as release agent; the cooperative agrees."""
        terms = {"agent": self.addr["financier"], "window_seconds": WINDOW}
        ok(self.exporter.post(f"/exporter/orders/{order}/release-agent", params=W, json=terms))
        ok(self.coop.post(f"/cooperative/orders/{order}/release-agent/agree", params=W, json=terms))

    def ship(self, order: int, lots: list[tuple[str, int]]) -> list[int]:
        body = ok(
            self.coop.post(
                "/cooperative/lots/batch",
                params=W,
                json={
                    "lots": [
                        {"farmer": f, "crop": 1, "grams": g, "grade": 3, "harvest_time": 1}
                        for f, g in lots
                    ]
                },
            )
        )
        ids = [int(e["args"]["lotId"]) for e in body["events"] if e["event"] == "LotRecorded"]
        body = ok(
            self.coop.post(
                "/cooperative/consignments", params=W, json={"order_id": order, "min_grade": 2}
            )
        )
        consignment = int(event(body, "ConsignmentCreated")["consignmentId"])
        ok(
            self.coop.post(
                f"/cooperative/consignments/{consignment}/lots", params=W, json={"lot_ids": ids}
            )
        )
        ok(
            self.coop.post(
                f"/cooperative/orders/{order}/ship",
                params=W,
                json={"consignment_id": consignment},
            )
        )
        return ids

    def read(self, client: httpx.Client, order: int) -> dict[str, Any]:
        body: dict[str, Any] = ok(client.get(f"/orders/{order}"))
        return body


def test_financier_funds_is_agent_releases_and_everyone_is_paid_exactly(api: Any) -> None:
    p = Parties(api)
    grams, price, fee_bps = 100_000, 2 * USD + 7, 350
    order = p.order(grams, price, fee_bps)
    ok(
        p.exporter.post(
            f"/exporter/orders/{order}/funder",
            params=W,
            json={"financier": p.addr["financier"], "agreement_hash": AGREEMENT},
        )
    )
    p.agent(order)
    ok(p.coop.post(f"/cooperative/orders/{order}/accept", params=W))
    # Only the named financier funds, against the agreement the exporter named.
    wrong = p.financier.post(
        f"/financier/orders/{order}/fund", params=W, json={"agreement_hash": "0x" + "00" * 32}
    )
    assert wrong.status_code == 409 and wrong.json()["error"] == "AgreementMismatch", wrong.text
    before_fund = {who: p.balance(p.addr[who]) for who in ("financier", "exporter")}
    funded = ok(
        p.financier.post(
            f"/financier/orders/{order}/fund", params=W, json={"agreement_hash": AGREEMENT}
        )
    )
    deposit = grams * price // 1000
    assert event(funded, "OrderFunded")["funder"] == p.addr["financier"]
    assert p.balance(p.addr["financier"]) == before_fund["financier"] - deposit
    assert p.balance(p.addr["exporter"]) == before_fund["exporter"]

    # A pre-harvest advance from the same financier: a lien repaid first at settlement.
    body = ok(
        p.coop.post(
            f"/cooperative/orders/{order}/advance-requests", params=W, json={"amount": 40 * USD}
        )
    )
    request_id = event(body, "AdvanceRequested")["requestId"]
    body = ok(
        p.financier.post(
            f"/financier/advance-requests/{request_id}/offers",
            params=W,
            json={"amount": 40 * USD, "fee": 2 * USD, "expiry": p.now() + DAY},
        )
    )
    ok(p.coop.post(f"/cooperative/offers/{event(body, 'OfferMade')['offerId']}/accept", params=W))

    weights = [(p.farmers[0], 30_000), (p.farmers[1], 45_000), (p.farmers[2], 25_000)]
    lots = p.ship(order, weights)
    accepted = 70_000  # of the 75,000 eligible grams once the third lot is rejected
    ok(
        p.exporter.post(
            f"/exporter/orders/{order}/confirm",
            params=W,
            json={"accepted_grams": accepted, "rejected_lots": [lots[2]]},
        )
    )
    refused = api.client(api.operator_key).post(
        f"/operator/orders/{order}/settle", params=W, json={"max_lots": 10}
    )
    assert refused.status_code == 409 and refused.json()["error"] == "AwaitingReleaseAgent"

    body = ok(
        p.coop.post(
            f"/cooperative/orders/{order}/documents",
            params=W,
            json={"document_hashes": DOCUMENTS},
        )
    )
    presented = event(body, "DocumentsPresented")
    (mine,) = [
        o for o in ok(p.financier.get("/financier/orders"))["items"] if o["order_id"] == order
    ]
    assert mine["release_state"] == "presented" and mine["document_hashes"] == DOCUMENTS
    assert mine["documents_hash"] == presented["documentsHash"]
    assert mine["agent_deadline"] == mine["dispute_until"] + WINDOW
    ok(
        p.financier.post(
            f"/financier/orders/{order}/release",
            params=W,
            json={"documents_hash": mine["documents_hash"], "waive_dispute_window": True},
        )
    )

    parties = [p.addr["financier"], p.addr["exporter"], p.addr["cooperative"], *p.farmers]
    before = {who: p.balance(who) for who in parties}
    escrow_before = p.balance(api.runtime.contracts().escrow.address)
    settled = ok(
        p.op.post(f"/operator/orders/{order}/settle", params=W, json={"max_lots": 10})
    )  # at once: the agent waived the dispute window
    paid = {who: p.balance(who) - before[who] for who in parties}

    # The waterfall, recomputed: payment; the unused deposit back to the funder; the lien;
    # the cooperative's fee; the farmers pro rata to their accepted lots' grams (floors).
    payment = accepted * price // 1000
    lien = 40 * USD + 2 * USD
    fee = payment * fee_bps // 10_000
    pool = payment - lien - fee
    eligible = 30_000 + 45_000
    share0 = pool * 30_000 // eligible
    share1 = pool * eligible // eligible - share0
    assert paid == {
        p.addr["financier"]: (deposit - payment) + lien,
        p.addr["exporter"]: 0,
        p.addr["cooperative"]: fee,
        p.farmers[0]: share0,
        p.farmers[1]: share1,
        p.farmers[2]: 0,
    }
    assert sum(paid.values()) == deposit == escrow_before
    assert p.balance(api.runtime.contracts().escrow.address) == 0
    kinds = {
        (e["args"]["kind"], e["args"]["payee"])
        for e in settled["events"]
        if e["event"] == "WaterfallPaid"
    }
    assert (6, p.addr["financier"]) in kinds  # the funder's refund, not the exporter's

    # What the mirror answers to the parties.
    seen = p.read(p.financier, order)  # the agent and funder is a party to the order
    assert seen["status"] == "settled" and seen["release_state"] == "released"
    assert seen["release_waived"] is True and seen["funder"] == p.addr["financier"]
    assert seen["funding_financier"] == p.addr["financier"]
    assert seen["funding_agreement_hash"] == AGREEMENT
    assert seen["release_agent"] == p.addr["financier"]
    assert p.read(p.exporter, order)["funder"] == p.addr["financier"]


def test_an_agent_who_refuses_sends_the_order_to_the_arbiter(api: Any) -> None:
    p = Parties(api)
    order = p.order(20_000, 2 * USD, 500)
    p.agent(order)
    ok(p.coop.post(f"/cooperative/orders/{order}/accept", params=W))
    ok(p.exporter.post(f"/exporter/orders/{order}/fund", params=W))
    p.ship(order, [(p.farmers[0], 20_000)])
    ok(
        p.exporter.post(
            f"/exporter/orders/{order}/confirm",
            params=W,
            json={"accepted_grams": 20_000, "rejected_lots": []},
        )
    )
    ok(
        p.coop.post(
            f"/cooperative/orders/{order}/documents",
            params=W,
            json={"document_hashes": DOCUMENTS[:1]},
        )
    )
    reason = "0x" + keccak(text="no phytosanitary certificate").hex()
    body = ok(
        p.financier.post(
            f"/financier/orders/{order}/refuse", params=W, json={"reason_hash": reason}
        )
    )
    assert event(body, "ReleaseRefused")["reasonHash"] == reason

    seen = p.read(p.arbiter, order)  # the arbiter may read a disputed order
    assert seen["status"] == "disputed" and seen["release_state"] == "refused"
    assert seen["disputed_by"] == p.addr["financier"] and seen["release_reason_hash"] == reason
    # The agent has spoken: it cannot release any more; nobody can settle before the ruling.
    again = p.financier.post(
        f"/financier/orders/{order}/release",
        params=W,
        json={"documents_hash": seen["documents_hash"], "waive_dispute_window": True},
    )
    assert again.status_code == 409 and again.json()["error"] == "NotReleaseAgent", again.text
    early = p.op.post(f"/operator/orders/{order}/settle", params=W, json={"max_lots": 10})
    assert early.status_code == 409 and early.json()["error"] == "BadStatus"

    ruling = "0x" + keccak(text="ruling 1").hex()
    ok(
        p.arbiter.post(
            f"/arbiter/orders/{order}/resolve",
            params=W,
            json={"payment": 30 * USD, "ruling_hash": ruling},
        )
    )
    before = p.balance(p.addr["exporter"])
    ok(p.op.post(f"/operator/orders/{order}/settle", params=W, json={"max_lots": 10}))
    assert p.balance(p.addr["exporter"]) - before == 40 * USD - 30 * USD  # deposit - payment
    assert p.read(p.exporter, order)["status"] == "settled"


def test_absent_agent_never_freezes_the_money(api: Any) -> None:
    p = Parties(api)
    order = p.order(10_000, 2 * USD, 0)
    p.agent(order)
    ok(p.coop.post(f"/cooperative/orders/{order}/accept", params=W))
    ok(p.exporter.post(f"/exporter/orders/{order}/fund", params=W))
    p.ship(order, [(p.farmers[1], 10_000)])
    ok(
        p.exporter.post(
            f"/exporter/orders/{order}/confirm",
            params=W,
            json={"accepted_grams": 10_000, "rejected_lots": []},
        )
    )
    p.travel(3 * DAY + WINDOW + 60)  # the dispute window (3 days) and the agent's 2 days
    before = p.balance(p.farmers[1])
    body = ok(p.op.post(f"/operator/orders/{order}/settle", params=W, json={"max_lots": 10}))
    assert event(body, "ReleaseAgentLapsed")["agent"] == p.addr["financier"]
    assert p.balance(p.farmers[1]) - before == 20 * USD
    assert p.read(p.coop, order)["release_state"] == "lapsed"
