"""Reads say what they answer: typed resources by id for their parties, /meta, 405s.

Records are made through the API (lots with a plot, lot 1's disclosed to the exporter;
order 1 with an advance funded by an offer, an inspected lot, shipped in a consignment
handed to the carrier of an awarded job; order 2 with an open advance request, a job open
for bids and the financier as its release agent), then every read the OpenAPI document
describes is called and its answer checked against the schema the document gives for it.
Each module deploys its own contracts, so ids start at 1.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from konbit import __version__
from konbit.roles import Role

pytestmark = pytest.mark.filterwarnings("ignore::brownie.exceptions.BrownieTestWarning")

PROBLEM = "application/problem+json"
USD, DAY = 10**6, 86_400
EVIDENCE = "0x" + "ee" * 32
UNKNOWN = 999_999
#: The seeded records' ids, by the name of the path parameter that takes them.
IDS = {
    "order_id": 1,
    "lot_id": 1,
    "consignment_id": 1,
    "job_id": 1,
    "advance_id": 1,
    "tx_id": 1,
}


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, f"{reply.request.method} {reply.request.url}: {reply.text}"
    return reply.json()


def refused(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, f"{reply.request.url}: {reply.status_code} {reply.text}"
    assert reply.headers["content-type"].startswith(PROBLEM), reply.headers["content-type"]
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["detail"], body
    return body


@pytest.fixture(scope="module")
def season(module_api: Any) -> Any:
    """The module's API with the records above, and a second exporter (a non-party)."""
    api = module_api
    now = int(api.runtime.rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    w = {"wait": "true"}
    op = api.client(api.operator_key)
    coop, exporter, carrier, financier, inspector = (
        api.client(api.keys[r])
        for r in (Role.COOPERATIVE, Role.EXPORTER, Role.LOGISTICS, Role.FINANCIER, Role.INSPECTOR)
    )
    for role in (Role.EXPORTER, Role.FINANCIER):
        body = {"address": api.addresses[role], "amount": 10**4 * USD}
        ok(op.post("/operator/faucet", params=w, json=body))
    ok(coop.post("/cooperative/farmers", params=w, json={"name": "Reads farmer"}))
    (farmer,) = ok(coop.get("/cooperative/farmers"))["items"]
    lot = {
        "farmer": farmer["address"],
        "crop": 1,
        "grams": 100_000,
        "grade": 3,
        "harvest_time": now - DAY,
        "plot_geohash": "d7q8c",
    }
    ok(coop.post("/cooperative/lots/batch", params=w, json={"lots": [lot, lot, lot]}))
    disclosure = {"buyer": api.addresses[Role.EXPORTER]}
    reply = coop.post("/cooperative/lots/1/plot-disclosures", json=disclosure)
    assert reply.status_code == 201, reply.text
    order = {
        "cooperative": api.addresses[Role.COOPERATIVE],
        "crop": 1,
        "grams": 100_000,
        "price_per_kg": 2 * USD,
        "delivery_deadline": now + 30 * DAY,
    }
    ok(exporter.post("/exporter/orders", params=w, json=order))
    ok(coop.post("/cooperative/orders/1/accept", params=w))
    ok(exporter.post("/exporter/orders/1/fund", params=w))
    ok(coop.post("/cooperative/orders/1/advance-requests", params=w, json={"amount": 10 * USD}))
    offer = {"amount": 10 * USD, "fee": USD, "expiry": now + DAY}
    ok(financier.post("/financier/advance-requests/1/offers", params=w, json=offer))
    ok(coop.post("/cooperative/offers/1/accept", params=w))
    ok(coop.post("/cooperative/consignments", params=w, json={"order_id": 1}))
    ok(coop.post("/cooperative/consignments/1/lots", params=w, json={"lot_ids": [1]}))
    job = {
        "consignment_id": 1,
        "pickup_geohash": "d7ns5",
        "dropoff_geohash": "d7q3w",
        "deadline": now + 10 * DAY,
        "max_fee": 20 * USD,
    }
    ok(coop.post("/cooperative/jobs", params=w, json=job))
    ok(carrier.post("/carrier/jobs/1/bids", params=w, json={"fee": 5 * USD, "eta": now + DAY}))
    ok(coop.post("/cooperative/jobs/1/award", params=w, json={"bid_id": 1}))
    inspection = {"passed": True, "grade": 3, "certificate_hash": EVIDENCE}
    ok(inspector.post("/inspector/lots/1/inspections", params=w, json=inspection))
    ok(coop.post("/cooperative/orders/1/ship", params=w, json={"consignment_id": 1}))
    step = {"at": now, "geohash": "d7ns5", "evidence_hash": EVIDENCE}
    handover = {**step, "to": api.addresses[Role.LOGISTICS]}
    ok(coop.post("/cooperative/consignments/1/handover", params=w, json=handover))
    ok(carrier.post("/carrier/consignments/1/receive", params=w, json=step))
    # Order 2: an advance request still open, a job still open for bids (lot 3), the
    # financier its release agent.
    ok(exporter.post("/exporter/orders", params=w, json=order))
    agent = {"agent": api.addresses[Role.FINANCIER], "window_seconds": DAY}
    ok(exporter.post("/exporter/orders/2/release-agent", params=w, json=agent))
    ok(coop.post("/cooperative/orders/2/release-agent/agree", params=w, json=agent))
    ok(coop.post("/cooperative/orders/2/accept", params=w))
    ok(exporter.post("/exporter/orders/2/fund", params=w))
    ok(coop.post("/cooperative/orders/2/advance-requests", params=w, json={"amount": 5 * USD}))
    ok(coop.post("/cooperative/consignments", params=w, json={"order_id": 2}))
    ok(coop.post("/cooperative/consignments/2/lots", params=w, json={"lot_ids": [3]}))
    ok(coop.post("/cooperative/jobs", params=w, json={**job, "consignment_id": 2}))

    ok(
        op.post(
            "/operator/organisations",
            params=w,
            json={"name": "Reads other exporter", "role": "exporter"},
        )
    )
    (other,) = [
        o for o in ok(op.get("/operator/organisations")) if o["name"] == "Reads other exporter"
    ]
    reply = op.post(f"/operator/organisations/{other['address']}/keys", json={"label": "reads"})
    assert reply.status_code == 201, reply.text
    api.other_exporter_key = reply.json()["key"]
    for client in (op, coop, exporter, carrier, financier, inspector):
        client.close()
    return api


def client(api: Any, who: Role | str | None) -> httpx.Client:
    if who == "other exporter":
        return api.client(api.other_exporter_key)
    return api.client(None if who is None else api.key(Role(who)))


def get(api: Any, who: Role | str | None, path: str) -> httpx.Response:
    with client(api, who) as c:
        return c.get(path)


# ---- by id, for the parties ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "readers", "others"),
    [
        (
            "/orders/1",
            [Role.OPERATOR, Role.EXPORTER, Role.COOPERATIVE, Role.FINANCIER, Role.LOGISTICS],
            ["other exporter", Role.INSPECTOR, Role.ARBITER],
        ),
        (
            "/lots/1",
            [Role.COOPERATIVE, Role.EXPORTER, Role.FINANCIER, Role.LOGISTICS, Role.INSPECTOR],
            ["other exporter", Role.ARBITER],
        ),
        ("/lots/2", [Role.COOPERATIVE, Role.INSPECTOR], [Role.EXPORTER, Role.LOGISTICS]),
        (
            "/consignments/1",
            [Role.OPERATOR, Role.COOPERATIVE, Role.EXPORTER, Role.LOGISTICS, Role.INSPECTOR],
            ["other exporter", Role.FINANCIER, Role.ARBITER],
        ),
        (
            "/jobs/1",
            [Role.OPERATOR, Role.COOPERATIVE, Role.LOGISTICS],
            [Role.EXPORTER, Role.FINANCIER, Role.INSPECTOR],
        ),
        # Open for bids: any carrier may read it.
        ("/jobs/2", [Role.COOPERATIVE, Role.LOGISTICS], [Role.EXPORTER, Role.FINANCIER]),
        (
            "/advance-requests/1",
            [Role.OPERATOR, Role.COOPERATIVE, Role.FINANCIER],
            [Role.EXPORTER, Role.LOGISTICS, Role.INSPECTOR],
        ),
        ("/advance-requests/2", [Role.COOPERATIVE, Role.FINANCIER], [Role.EXPORTER]),
    ],
)
def test_parties_read_others_are_refused(
    season: Any, path: str, readers: list[Role], others: list[Role | str]
) -> None:
    for who in readers:
        ok(get(season, who, path))
    for who in others:
        body = refused(get(season, who, path), 403)
        assert "not a party" in body["detail"], body
    refused(get(season, None, path), 401)


@pytest.mark.parametrize(
    "path", ["/orders", "/lots", "/consignments", "/jobs", "/advance-requests"]
)
def test_unknown_ids_are_404(season: Any, path: str) -> None:
    for who in (Role.OPERATOR, Role.COOPERATIVE):
        refused(get(season, who, f"{path}/{UNKNOWN}"), 404)
    refused(get(season, Role.COOPERATIVE, f"{path}/0"), 422)


def test_records_are_typed(season: Any) -> None:
    coop_address = season.addresses[Role.COOPERATIVE]
    order = ok(get(season, Role.EXPORTER, "/orders/1"))
    assert order["order_id"] == 1 and order["cooperative"] == coop_address
    assert order["status"] == "shipped" and order["consignment_id"] == 1
    assert order["grams"] == 100_000 and order["price_per_kg"] == 2 * USD
    assert order["deposit"] == 200 * USD and isinstance(order["deposit"], int)
    assert order["rejected_lots"] is None

    lot = ok(get(season, Role.COOPERATIVE, "/lots/1"))
    assert lot["plot_geohash"] == "d7q8c"
    assert (lot["status"], lot["inspection"], lot["consignment_id"]) == ("active", "passed", 1)
    assert lot["grams"] == 100_000

    consignment = ok(get(season, Role.EXPORTER, "/consignments/1"))
    assert consignment["status"] == "shipped" and consignment["order_id"] == 1
    assert consignment["custodian"] == season.addresses[Role.LOGISTICS]

    job = ok(get(season, Role.COOPERATIVE, "/jobs/1"))
    assert (job["pickup_geohash"], job["dropoff_geohash"]) == ("d7ns5", "d7q3w")
    assert job["status"] == "awarded" and job["fee"] == 5 * USD
    assert [(b["bid_id"], b["status"], b["fee"]) for b in job["bids"]] == [(1, "accepted", 5 * USD)]
    assert ok(get(season, Role.LOGISTICS, "/jobs/1"))["bids"] == job["bids"]  # its own bid
    assert ok(get(season, Role.LOGISTICS, "/jobs/2"))["status"] == "open"

    financier = season.addresses[Role.FINANCIER]
    advance = ok(get(season, Role.FINANCIER, "/advance-requests/1"))
    assert advance["advance_id"] == 1 and advance["status"] == "active"
    assert (advance["requested_amount"], advance["amount"], advance["fee"]) == (
        10 * USD,
        10 * USD,
        USD,
    )
    assert advance["financier"] == financier and advance["offer_id"] == 1
    (offer,) = advance["offers"]
    assert offer["advance_id"] == 1 and "request_id" not in offer
    assert offer["financier"] == financier and offer["status"] == "accepted"
    request = ok(get(season, Role.FINANCIER, "/advance-requests/2"))
    assert (request["status"], request["financier"], request["offers"]) == (
        "request_open",
        None,
        [],
    )
    assert advance["cooperative_history"] == {
        "orders_delivered": 0,
        "deliveries": 0,
        "on_time_rate_bps": None,
        "advances_repaid": 0,
        "advances_defaulted": 0,
    }


def test_geohashes_read_as_text(season: Any) -> None:
    """Lists and the public trace: geohashes as text, never the contracts' bytes12 hex."""
    lots = ok(get(season, Role.COOPERATIVE, "/cooperative/lots"))["items"]
    assert [lot["plot_geohash"] for lot in lots] == ["d7q8c"] * 3
    (job,) = ok(get(season, Role.LOGISTICS, "/carrier/jobs/mine"))["items"]
    assert job["pickup_geohash"] == "d7ns5"
    trace = ok(get(season, None, "/trace/lots/1"))
    assert trace["plot_geohash"] == "d7q8c"
    custody = trace["consignment"]["custody"]
    assert [(c["kind"], c["geohash"]) for c in custody] == [
        ("handover", "d7ns5"),
        ("receipt", "d7ns5"),
    ]
    (offer,) = ok(get(season, Role.FINANCIER, "/financier/offers"))["items"]
    assert offer["advance_id"] == 1


def test_the_public_trace_of_a_lot(season: Any) -> None:
    """What a scanned label shows: the lot, its cooperative by name, its inspections, its
    consignment and sale; nothing personal."""
    trace = ok(get(season, None, "/trace/lots/1"))
    assert (trace["lot_id"], trace["grams"], trace["status"]) == (1, 100_000, "active")
    assert trace["cooperative"] == {
        "address": season.addresses[Role.COOPERATIVE],
        "name": trace["cooperative"]["name"],
    }
    assert trace["cooperative"]["name"]
    (inspection,) = trace["inspections"]
    assert inspection["lot_id"] == 1
    assert (inspection["passed"], inspection["grade"]) == (True, 3)
    assert inspection["certificate_hash"] == EVIDENCE
    assert inspection["inspector"] == season.addresses[Role.INSPECTOR]
    assert trace["split_into"] == []
    assert trace["consignment"]["consignment_id"] == 1
    assert trace["consignment"]["order"]["order_id"] == 1
    assert "Reads farmer" not in str(trace)  # the farmer by address only
    missing = get(season, None, "/trace/lots/999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


# ---- /meta, 405 ------------------------------------------------------------------------


def test_meta_names_the_chain_and_contracts(season: Any) -> None:
    meta = ok(get(season, None, "/meta"))
    runtime = season.runtime
    genesis = runtime.rpc.call("eth_getBlockByNumber", "0x0", False)
    book = runtime.address_book()
    assert meta["api_version"] == __version__
    assert meta["chain_id"] == runtime.chain_id
    assert meta["genesis_hash"] == genesis["hash"]
    assert meta["contracts"] == book.addresses and meta["deploy_block"] == book.deploy_block
    assert meta["token"] == book.addresses["TestStablecoin"]
    assert {"ClusterRegistry", "Traceability", "SaleEscrow"} <= set(meta["contracts"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/healthz", {"GET"}),
        ("POST", "/orders/1", {"GET"}),
        ("PUT", "/cooperative/lots", {"GET", "POST"}),
        ("GET", "/transactions/raw", {"POST"}),  # not the transaction with the id "raw"
    ],
)
def test_405_names_the_allowed_methods(
    season: Any, method: str, path: str, allowed: set[str]
) -> None:
    with client(season, Role.COOPERATIVE) as c:
        reply = c.request(method, path)
    refused(reply, 405)
    assert {m.strip() for m in reply.headers["allow"].split(",")} == allowed


# ---- the OpenAPI document describes every answer --------------------------------------


#: GS1 Digital Link and short label paths answer a redirect to the trace; a receipt needs a
#: settled order's code (tests/e2e/test_sms_receipts.py checks it against the chain).
REDIRECTS = ("/01/", "/l/", "/c/", "/receipts/")


def _json_answer(answer: dict[str, Any]) -> bool:
    """Not a PDF, an image, TwiML or a USSD screen: those have their own tests (labels, SMS)."""
    content = answer.get("content") or {}
    return not content or "application/json" in content


def test_every_success_answer_has_a_schema(operation: Any) -> None:
    """A 2xx JSON answer is an object with properties, or a $ref, or a list of them."""
    for code, answer in operation.spec["responses"].items():
        if not code.startswith("2") or code == "204" or not _json_answer(answer):
            continue
        schema = (answer.get("content") or {}).get("application/json", {}).get("schema")
        assert schema is not None, f"{operation.id} {code}: no schema"
        if schema.get("type") == "array":
            schema = schema.get("items", {})
        assert "$ref" in schema or schema.get("properties"), f"{operation.id} {code}: {schema}"


def test_every_read_answers_as_documented(season: Any, schemas: Any, read_operation: Any) -> None:
    op = read_operation
    successes = [a for c, a in op.spec["responses"].items() if c.startswith("2")]
    if not all(_json_answer(a) for a in successes) or op.path.startswith(REDIRECTS):
        pytest.skip("not a JSON read: labels, receipts pages and QR redirects have their tests")
    path = op.path
    for param in op.params("path"):
        name = param["name"]
        assert name in IDS, f"{op.id}: add a seeded value for {{{name}}} to IDS"
        path = path.replace("{" + name + "}", str(IDS[name]))
    who: Role | None = op.role or (None if op.public else Role.OPERATOR)
    body = ok(get(season, who, path))
    (code,) = [c for c in op.spec["responses"] if c.startswith("2")]
    schema = op.spec["responses"][code]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator(schemas.resolve(schema)).validate(body)
    if isinstance(body, dict) and "items" in body and op.path != "/operator/disputes":
        assert body["items"], f"{op.id}: nothing seeded to check the items against"
