"""Nothing leaked, nothing for free: bounded bodies, private plots, access that follows the
chain, per-key rate limits and a gas budget per organisation, over real HTTP."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils import keccak
from served_api import serve_api
from sqlalchemy.engine import make_url

from konbit.chain.contracts import konbit_event_decoder
from konbit.chain.local import LocalChain
from konbit.roles import Role

EVIDENCE = "0x" + "ee" * 32


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def chain_now(api: Any) -> int:
    return int(api.runtime.w3.eth.get_block("latest")["timestamp"])


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def enrol(api: Any, coop: httpx.Client, name: str, plot: str | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if plot:
        body["plot_geohash"] = plot
    return ok(coop.post("/cooperative/farmers", params={"wait": "true"}, json=body))["farmer"][
        "address"
    ]


# ---- bodies are bounded before they are read -------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_413_before_it_is_read(module_api: Any, declared: bool) -> None:
    """Without a key at all: the size is refused before authentication or parsing."""
    size, chunk = 50 * 1024 * 1024, b"x" * (1024 * 1024)

    def stream() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    before = rss_kib()
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(size)
    with httpx.Client(base_url=module_api.url, timeout=60) as client:
        try:
            reply = client.post("/cooperative/lots", content=stream(), headers=headers)
        except httpx.HTTPError:  # the server may close while the client still sends
            pytest.fail("the server hung up without answering 413")
    assert reply.status_code == 413, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert (rss_kib() - before) < 20 * 1024, "the server's memory grew by 20 MB or more"


# ---- no personal data on chain ---------------------------------------------------------


def test_exact_plot_stays_off_chain_and_is_disclosed_to_a_named_buyer(module_api: Any) -> None:
    api = module_api
    coop = api.client(api.keys[Role.COOPERATIVE])
    exporter = api.client(api.keys[Role.EXPORTER])
    farmer = enrol(api, coop, "Plot farmer", plot="d7ns5qzkp8xy")
    lot = {
        "farmer": farmer,
        "crop": 1,
        "grams": 12_000,
        "grade": 3,
        "harvest_time": chain_now(api),
    }  # no plot given: the farmer's registered plot is used
    done = ok(coop.post("/cooperative/lots", params={"wait": "true"}, json=lot))
    (recorded,) = [e for e in done["events"] if e["event"] == "LotRecorded"]
    lot_id, args = recorded["args"]["lotId"], recorded["args"]
    assert args["plotGeohash"] == "0x" + b"d7ns5".hex()  # the area only, about 5 km
    assert b"d7ns5qzkp8xy".hex() not in str(done)

    # Not disclosed yet: the exporter may not read it.
    assert exporter.get(f"/exporter/lots/{lot_id}/plot").status_code == 403
    shared = ok(
        coop.post(
            f"/cooperative/lots/{lot_id}/plot-disclosures",
            json={"buyer": api.addresses[Role.EXPORTER]},
        ),
        201,
    )
    plot = ok(exporter.get(f"/exporter/lots/{lot_id}/plot"))
    assert plot == shared and plot["plot_geohash"] == "d7ns5qzkp8xy"
    # The buyer checks it against the chain: keccak256(salt ++ plot) is in the event.
    recomputed = "0x" + keccak(bytes.fromhex(plot["salt"][2:]) + b"d7ns5qzkp8xy").hex()
    assert recomputed == args["plotCommitment"] == plot["commitment"]
    # The public trace shows the area only.
    trace = ok(httpx.get(f"{api.url}/trace/lots/{lot_id}"))
    assert trace["plot_geohash"] == "d7ns5" and "d7ns5qzk" not in str(trace)


def test_a_fine_place_is_refused_naming_the_field(module_api: Any) -> None:
    api = module_api
    coop = api.client(api.keys[Role.COOPERATIVE])
    reply = coop.post(
        "/cooperative/jobs",
        json={
            "consignment_id": 1,
            "pickup_geohash": "d7ns5qzk",
            "dropoff_geohash": "d7q3w",
            "deadline": chain_now(api) + 86_400,
            "max_fee": 1,
        },
    )
    problem = ok(reply, 422)
    assert problem["errors"][0]["field"] == "pickup_geohash"
    assert "'d7ns5'" in problem["errors"][0]["message"]


def test_no_event_on_chain_carries_a_geohash_over_5_characters(module_api: Any) -> None:
    """Every Konbit event so far (this module's seasons included), decoded from eth_getLogs."""
    api = module_api
    book = api.runtime.contracts().book
    logs = api.runtime.rpc.call(
        "eth_getLogs",
        {
            "fromBlock": hex(book.deploy_block),
            "toBlock": "latest",
            "address": list(book.addresses.values()),
        },
    )
    decoder = konbit_event_decoder()
    checked = 0
    for log in logs:
        event = decoder.decode(log["topics"], log["data"])
        if event is None:
            continue
        for name, value in event.args.items():
            if "eohash" in name:
                raw = bytes.fromhex(value[2:]).rstrip(b"\0")
                assert len(raw) <= 5, (event.name, name, raw)
                checked += 1
    assert checked > 0


def test_database_files_are_private(module_api: Any) -> None:
    url = make_url(str(module_api.runtime.engine.url))
    if url.get_backend_name() != "sqlite":
        pytest.skip("a PostgreSQL server keeps its own files")
    db = Path(url.database or "")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for side in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600, side


# ---- access follows the chain ----------------------------------------------------------


def test_a_role_revoked_on_chain_stops_the_key(module_api: Any) -> None:
    api = module_api
    op = api.client(api.operator_key)
    name = f"Short-lived {uuid.uuid4().hex[:6]}"
    org = ok(
        op.post(
            "/operator/organisations",
            params={"wait": "true"},
            json={"name": name, "role": "inspector"},
        )
    )["organisation"]
    key = ok(op.post(f"/operator/organisations/{org['address']}/keys", json={}), 201)["key"]
    inspector = api.client(key)
    assert inspector.post("/inspector/lots/1/inspections", json={}).status_code == 422  # in
    ok(op.post(f"/operator/organisations/{org['address']}/deactivate", params={"wait": "true"}))
    reply = inspector.post("/inspector/lots/1/inspections", json={})
    assert reply.status_code == 403 and "no longer holds" in reply.json()["detail"]
    ok(op.post(f"/operator/organisations/{org['address']}/reactivate", params={"wait": "true"}))
    assert inspector.post("/inspector/lots/1/inspections", json={}).status_code == 422


def membership(coop: Any, address: str) -> tuple[bool, bool]:
    """(enrolled, active) of the farmer as ``GET /cooperative/farmers`` lists it."""
    after: int | None = 0
    while after is not None:
        page = ok(coop.get("/cooperative/farmers", params={"after": after, "limit": 200}))
        for farmer in page["items"]:
            if farmer["address"] == address:
                return farmer["enrolled"], farmer["active"]
        after = page["next_after"]
    raise AssertionError(f"{address} is not listed")


def test_a_cooperative_deactivates_its_farmer(module_api: Any) -> None:
    api = module_api
    coop = api.client(api.keys[Role.COOPERATIVE])
    farmer = enrol(api, coop, "Resting farmer")
    lot = {"farmer": farmer, "crop": 1, "grams": 1_000, "grade": 2, "harvest_time": 1}
    ok(coop.post(f"/cooperative/farmers/{farmer}/deactivate", params={"wait": "true"}))
    assert membership(coop, farmer) == (True, False)
    refused = ok(coop.post("/cooperative/lots", json=lot), 409)
    assert refused["error"] == "FarmerNotActiveMember"
    ok(coop.post(f"/cooperative/farmers/{farmer}/reactivate", params={"wait": "true"}))
    assert membership(coop, farmer) == (True, True)
    ok(coop.post("/cooperative/lots", json=lot), 202)
    other = api.client(api.keys[Role.EXPORTER])
    assert other.post(f"/cooperative/farmers/{farmer}/deactivate").status_code == 403


def test_the_operator_cannot_revoke_its_last_key(api: Any) -> None:
    op = api.client(api.operator_key)
    (mine,) = [k for k in ok(op.get("/operator/keys")) if k["role"] == "operator"]
    reply = op.delete(f"/operator/keys/{mine['id']}")
    assert reply.status_code == 409 and "last key" in reply.json()["detail"]
    assert op.get("/operator/keys").status_code == 200  # still works


# ---- abuse costs the abuser ------------------------------------------------------------


@pytest.fixture
def strict_api(anvil: LocalChain, tmp_path: Path, live_server: Any) -> Iterator[Any]:
    """A server with a tight rate limit and a gas budget of one small top-up a day."""
    with serve_api(
        anvil,
        f"sqlite:///{tmp_path / 'konbit.db'}",
        tmp_path,
        live_server,
        rate_limit="40/minute",
        gas_topup_wei=3 * 10**14,
        gas_budget_wei_per_day=3 * 10**14,
    ) as served:
        yield served


def test_rate_limit_and_gas_budget(strict_api: Any) -> None:
    api = strict_api
    op = api.client(api.operator_key)
    org = ok(
        op.post(
            "/operator/organisations",
            params={"wait": "true"},
            json={"name": "Thirsty coop", "role": "cooperative"},
        )
    )["organisation"]
    key = ok(op.post(f"/operator/organisations/{org['address']}/keys", json={}), 201)["key"]
    coop = api.client(key)
    # Gas: writes until the day's sponsorship is spent; then a clear 429 and no more top-ups.
    statuses = []
    for i in range(12):
        reply = coop.post(
            "/cooperative/farmers", params={"wait": "true"}, json={"name": f"Farmer {i}"}
        )
        statuses.append(reply.status_code)
        if reply.status_code != 200:
            break
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    problem = reply.json()
    assert problem["code"] == "gas_budget_spent" and "KONBIT_GAS_BUDGET" in problem["detail"]
    assert int(reply.headers["Retry-After"]) > 0
    (spend,) = [g for g in ok(op.get("/operator/gas")) if g["address"] == org["address"]]
    assert spend["topups"] == 1 and spend["remaining_wei"] == 0
    # Rate: the key's window fills up; 429 with Retry-After, other keys unaffected.
    seen = [coop.get("/cooperative/lots").status_code for _ in range(45)]
    assert 429 in seen and seen[0] == 200
    limited = coop.get("/cooperative/lots")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert op.get("/operator/keys").status_code == 200
