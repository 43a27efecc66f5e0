"""Schemathesis' idea, in the suite: requests generated from /openapi.json never get a 5xx.

(Schemathesis itself needs a newer hypothesis, or older pytest/starlette, than eth-brownie
allows; hypothesis 6.27 + hypothesis-jsonschema give the same generation from schemas.)
For every operation the served document describes, path parameters, query parameters and
JSON bodies are drawn from its schemas (refs resolved against the components) and sent
over real HTTP with the operation's own role's key and with no key. Some bodies and path
segments are drawn with no regard to the schema at all. Every answer must be below 500,
and every 4xx a problem document. One server on SQLite serves the whole module.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from konbit.roles import Role

pytestmark = pytest.mark.filterwarnings("ignore::brownie.exceptions.BrownieTestWarning")

PROBLEM = "application/problem+json"
BOUNDED = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "print_blob": False,
    "verbosity": Verbosity.normal,
    "suppress_health_check": list(HealthCheck),
}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def fuzz_api(module_api_sqlite: Any, schemas: Any) -> Any:
    """The module's server (SQLite), with id 1 of each kind existing so small drawn ids
    reach past the 404s into the handlers and the contracts."""
    api = module_api_sqlite
    served = httpx.get(f"{api.url}/openapi.json").json()
    assert served["paths"] == schemas.spec["paths"], "the served document is not the app's"
    seed(api)
    return api


def seed(api: Any) -> None:
    # Chain time: earlier tests on the shared Anvil may have moved it past the wall clock.
    latest = api.runtime.rpc.call("eth_getBlockByNumber", "latest", False)
    usd, day, now = 10**6, 86_400, int(latest["timestamp"], 16)
    w = {"wait": "true"}
    clients = {role: api.client(api.key(role)) for role in Role}
    op, coop = clients[Role.OPERATOR], clients[Role.COOPERATIVE]
    exporter, carrier = clients[Role.EXPORTER], clients[Role.LOGISTICS]

    def ok(reply: httpx.Response) -> dict[str, Any]:
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    for role in (Role.EXPORTER, Role.FINANCIER):
        ok(
            op.post(
                "/operator/faucet",
                params=w,
                json={"address": api.addresses[role], "amount": 10**4 * usd},
            )
        )
    farmer = ok(coop.post("/cooperative/farmers", params=w, json={"name": "Seed"}))["farmer"][
        "address"
    ]
    lot = {"farmer": farmer, "crop": 1, "grams": 100_000, "grade": 3, "harvest_time": now - day}
    ok(coop.post("/cooperative/lots/batch", params=w, json={"lots": [lot, lot]}))
    order = {
        "cooperative": api.addresses[Role.COOPERATIVE],
        "crop": 1,
        "grams": 200_000,
        "price_per_kg": 2 * usd,
        "delivery_deadline": now + 30 * day,
    }
    ok(exporter.post("/exporter/orders", params=w, json=order))
    ok(coop.post("/cooperative/orders/1/accept", params=w))
    ok(exporter.post("/exporter/orders/1/fund", params=w))
    ok(coop.post("/cooperative/orders/1/advance-requests", params=w, json={"amount": 10 * usd}))
    ok(coop.post("/cooperative/consignments", params=w, json={"order_id": 1}))
    ok(coop.post("/cooperative/consignments/1/lots", params=w, json={"lot_ids": [1]}))
    job = {
        "consignment_id": 1,
        "pickup_geohash": "d7ns5",
        "dropoff_geohash": "dhwfz",
        "deadline": now + 10 * day,
        "max_fee": 20 * usd,
    }
    ok(coop.post("/cooperative/jobs", params=w, json=job))
    ok(carrier.post("/carrier/jobs/1/bids", params=w, json={"fee": 5 * usd, "eta": now + day}))
    for client in clients.values():
        client.close()


def key_of(api: Any, op: Any, who: str) -> str | None:
    if who == "no key":
        return None
    if op.role is not None:
        return str(api.key(op.role))
    return str(api.key(Role.COOPERATIVE if op.any_role else Role.OPERATOR))


def as_query(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [as_query(v) for v in value]
    if isinstance(value, dict | type(None)):
        return json.dumps(value)
    return str(value)


def request_strategy(schemas: Any, op: Any, *, random: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Path, query and body for ``op``: from its schemas, or (``random``) from anything."""
    path_values = {}
    for param in op.params("path"):
        schema = schemas.resolve(param["schema"])
        draw = from_schema(schema)
        if random:
            draw = draw | st.text(min_size=1, max_size=40) | st.integers()
        path_values[param["name"]] = draw.map(lambda v: quote(str(v), safe=""))
    optional = {}
    for param in op.params("query"):
        draw = from_schema(schemas.resolve(param["schema"]))
        if random:
            draw = draw | st.text(max_size=20)
        optional[param["name"]] = draw.map(as_query)
    body_schema = op.body_schema()
    if body_schema is None:
        body: st.SearchStrategy[Any] = st.just(None)
    elif random:
        body = JSON.map(lambda v: {"json": v}) | st.binary(max_size=64).map(
            lambda b: {"content": b, "headers": {"content-type": "application/json"}}
        )
    else:
        body = from_schema(schemas.resolve(body_schema)).map(lambda v: {"json": v})
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries(path_values),
            "query": st.fixed_dictionaries({}, optional=optional),
            "body": body,
        }
    )


def send(api: Any, op: Any, who: str, drawn: dict[str, Any]) -> None:
    url = op.path
    for name, value in drawn["path"].items():
        url = url.replace("{" + name + "}", value)
    api.ensure_keys()  # a fuzzed DELETE /operator/keys/{id} may have revoked one
    body = drawn["body"] or {}
    with api.client(key_of(api, op, who)) as client:
        reply = client.request(op.method, url, params=drawn["query"], **body)
    shown = f"{op.method} {url} params={drawn['query']} {body!r:.500} as {who}"
    assert reply.status_code < 500, f"{shown}\n-> {reply.status_code} {reply.text[:1000]}"
    if reply.status_code >= 400:
        assert reply.headers.get("content-type", "").startswith(PROBLEM), (
            f"{shown}\n-> {reply.status_code} {reply.headers.get('content-type')} {reply.text:.300}"
        )
        problem = reply.json()
        assert problem["status"] == reply.status_code and problem["detail"], problem


@pytest.mark.parametrize("who", ["own role", "no key"])
def test_schema_driven_requests_never_5xx(
    fuzz_api: Any, schemas: Any, operation: Any, who: str
) -> None:
    op = operation
    if who == "own role" and op.public and op.method == "GET":
        who = "operator"  # public reads: try them with a key too

    @settings(max_examples=12 if who != "no key" else 4, **BOUNDED)
    @given(drawn=request_strategy(schemas, op, random=False))
    def run(drawn: dict[str, Any]) -> None:
        send(fuzz_api, op, who, drawn)

    run()


def test_random_requests_never_5xx(fuzz_api: Any, schemas: Any, operation: Any) -> None:
    op = operation

    @settings(max_examples=6, **BOUNDED)
    @given(drawn=request_strategy(schemas, op, random=True))
    def run(drawn: dict[str, Any]) -> None:
        send(fuzz_api, op, "own role", drawn)

    run()


def test_addresses_in_any_case_never_5xx(fuzz_api: Any) -> None:
    """Lower case is how most tools print addresses: accept it (or 422 it), never 500."""
    api = fuzz_api
    op = api.client(api.operator_key)
    coop = api.client(api.keys[Role.COOPERATIVE])
    exporter = api.client(api.keys[Role.EXPORTER])
    cooperative = api.addresses[Role.COOPERATIVE]
    lower = "0x" + "ab" * 20
    bad_checksum = "0x" + "aB" * 20
    faults = []
    for address in (lower, bad_checksum):
        for client, path, body in (
            (op, "/operator/faucet", {"address": address, "amount": 1}),
            (
                op,
                "/operator/organisations",
                {"name": "Case", "role": "exporter", "address": address},
            ),
            (
                coop,
                "/cooperative/lots",
                {"farmer": address, "crop": 1, "grams": 1, "grade": 1, "harvest_time": 1},
            ),
            (
                exporter,
                "/exporter/orders",
                {
                    "cooperative": cooperative.lower(),
                    "token": address,
                    "crop": 1,
                    "grams": 1_000,
                    "price_per_kg": 1,
                    "delivery_deadline": 2**40,
                },
            ),
        ):
            before = api.counts()
            reply = client.post(path, json=body)
            if reply.status_code >= 500 or (reply.status_code >= 400 and api.counts() != before):
                faults.append(
                    f"POST {path} {body} -> {reply.status_code}; {before} -> {api.counts()}"
                )
    assert not faults, "\n".join(faults)
