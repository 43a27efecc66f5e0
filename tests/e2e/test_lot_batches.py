"""Lots of concurrent requests share one transaction, and each is still judged alone.

Over real HTTP and from plain Python, on a real Anvil, on SQLite and PostgreSQL
(konbit.services.lot_batches). A batch is built by hand where the test is about what a
batch does (which lots share, which are refused), so that it does not hang on timing; the
HTTP tests check what a client sees, however the server happened to batch.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import asdict
from typing import Any

import pytest
from eth_utils import keccak
from sqlalchemy import func
from sqlmodel import Session, col, select
from test_write_flow import (
    CONCURRENT,
    WAIT,
    chain_now,
    claims,
    concurrently,
    idem,
    ok,
    one_recorded,
    poll,
    refused,
    settle_sender,
    tx_ids,
    wait_mined,
)

from konbit.access.keys import Actor
from konbit.mirror.models import Lot
from konbit.outbox.models import OutboxRequest, OutboxTx
from konbit.profiles.models import LotPlot
from konbit.roles import Role
from konbit.services import lots
from konbit.services.errors import ContractRefused, IdempotencyConflict
from konbit.services.lot_batches import LotRequest, record_batch
from konbit.services.lots import LotInput

pytestmark = pytest.mark.filterwarnings("ignore::brownie.exceptions.BrownieTestWarning")

PLOT = "d7ns5qzk"


def lot_body(farmer: str, grams: int, now: int, plot: str | None = PLOT) -> dict[str, Any]:
    body: dict[str, Any] = {
        "farmer": farmer,
        "crop": 2,
        "grams": grams,
        "grade": 1,
        "harvest_time": now - 86_400,
    }
    if plot is not None:
        body["plot_geohash"] = plot
    return body


def enrol(api: Any, name: str) -> str:
    coop = api.client(api.keys[Role.COOPERATIVE])
    body = {"name": name, "plot_geohash": PLOT}
    return str(ok(coop.post("/cooperative/farmers", params=WAIT, json=body))["farmer"]["address"])


def recorded_lots(api: Any, hashes: set[str]) -> list[dict[str, Any]]:
    """The LotRecorded events of the transactions ``hashes``, in chain order."""
    traceability = api.runtime.contracts().book.address("Traceability")
    topic0 = (
        "0x"
        + keccak(
            text="LotRecorded(uint64,address,address,uint16,uint64,uint8,uint64,bytes5,bytes32,bytes32)"
        ).hex()
    )
    found = []
    for tx_hash in hashes:
        receipt = api.runtime.rpc.call("eth_getTransactionReceipt", tx_hash)
        assert receipt["status"] == "0x1", receipt
        for log in receipt["logs"]:
            if log["address"].lower() == traceability.lower() and log["topics"][0] == topic0:
                data = bytes.fromhex(log["data"][2:])
                found.append(
                    {
                        "lot_id": int(log["topics"][1], 16),
                        "farmer": "0x" + log["topics"][2][-40:],
                        "grams": int.from_bytes(data[32:64], "big"),
                        "commitment": "0x" + data[160:192].hex(),
                    }
                )
    return sorted(found, key=lambda lot: lot["lot_id"])


def counts(api: Any) -> dict[str, int]:
    """The API's record counts, with the idempotency claims and the plots' private rows."""
    with Session(api.runtime.engine) as session:
        extra = {
            model.__tablename__: session.exec(select(func.count()).select_from(model)).one()
            for model in (OutboxRequest, LotPlot)
        }
    return {**api.counts(), **extra}


def hashes_of(api: Any, ids: list[int]) -> set[str]:
    with Session(api.runtime.engine) as session:
        rows = session.exec(select(OutboxTx).where(col(OutboxTx.id).in_(ids))).all()
    assert all(r.tx_hash for r in rows)
    return {str(r.tx_hash) for r in rows}


@pytest.fixture(scope="module")
def farmers(module_api: Any) -> list[str]:
    """Two farmers of the cooperative, enrolled and mined."""
    return [enrol(module_api, f"Batch farmer {i}") for i in range(2)]


# ---- a batch built by hand -----------------------------------------------------------------


def test_a_batch_shares_one_transaction_and_refuses_only_its_bad_lots(
    module_api: Any, farmers: list[str]
) -> None:
    """Five requests in one batch: three good lots (two farmers), a lot for a farmer who is
    not the cooperative's (FarmerNotActiveMember, as alone) and a retry of the third lot's
    idempotency key. One recordLots carries the three good lots in order; the refused lot
    leaves nothing; the retry gets the first answer."""
    api = module_api
    runtime, cooperative = api.runtime, api.addresses[Role.COOPERATIVE]
    actor = Actor(organisation=cooperative, role=Role.COOPERATIVE)
    now, stranger = chain_now(api), "0x" + uuid.uuid4().hex[:20] * 2
    key = f"batch-{uuid.uuid4().hex}"

    def request(farmer: str, grams: int, key: str | None = None) -> LotRequest:
        lot = LotInput(farmer, 2, grams, 1, now - 86_400, PLOT).checked()
        return LotRequest(actor, "lots.record", lot, lot_payload(lot), key)

    batch = [
        request(farmers[0], 1_001),
        request(stranger, 1_002),
        request(farmers[1], 1_003),
        request(farmers[0], 1_004, key),
        request(farmers[0], 1_004, key),
    ]
    with pytest.raises(ContractRefused) as refused_alone:
        lots.record_lot(runtime, actor, batch[1].lot)
    alone = refused_alone.value
    settle_sender(api, cooperative)
    before = counts(api)

    record_batch(runtime, batch)

    with pytest.raises(ContractRefused) as in_batch:
        batch[1].future.result(timeout=0)
    assert in_batch.value.error == alone.error == "FarmerNotActiveMember"
    assert in_batch.value.args_ == alone.args_
    good = [batch[i].future.result(timeout=0) for i in (0, 2, 3)]
    (row,) = {r.id for outcome in good for r in outcome.transactions}
    assert not any(outcome.replayed for outcome in good)
    assert [outcome.part for outcome in good] == [0, 1, 2]  # each lot's place in recordLots
    retry = batch[4].future.result(timeout=0)
    assert retry.replayed and [r.id for r in retry.transactions] == [row] and retry.part == 2
    assert claims(api, key) == 1

    with Session(runtime.engine) as session:
        shared = session.get(OutboxTx, row)
        assert shared is not None and shared.function == "recordLots"
    assert counts(api) == {
        **before,
        "outbox_tx": before["outbox_tx"] + 1,
        "outbox_request": before["outbox_request"] + 1,
        "lot_plot": before["lot_plot"] + 3,
    }
    wait_mined(api, [row])
    landed = recorded_lots(api, hashes_of(api, [row]))
    assert [(lot["farmer"], lot["grams"]) for lot in landed] == [
        (farmers[0].lower(), 1_001),
        (farmers[1].lower(), 1_003),
        (farmers[0].lower(), 1_004),
    ]
    with Session(runtime.engine) as session:  # each lot's plot opens its own commitment
        for lot in landed:
            plot = session.get(LotPlot, lot["commitment"])
            assert plot is not None and plot.plot_geohash == PLOT
            assert lots.plot_commitment(plot.salt, PLOT) == lot["commitment"]

    # A retry with ?wait=true over HTTP: the shared transaction, and only its own lot's event.
    coop = api.client(api.keys[Role.COOPERATIVE])
    again = ok(
        coop.post(
            "/cooperative/lots",
            params=WAIT,
            json=lot_body(farmers[0], 1_004, now),
            headers={"Idempotency-Key": key},
        )
    )
    assert again["replayed"] and tx_ids(again) == [row]
    (event,) = again["events"]
    assert event["event"] == "LotRecorded"
    assert int(event["args"]["lotId"]) == landed[2]["lot_id"]
    assert int(event["args"]["grams"]) == 1_004


def test_a_batch_of_refused_lots_records_nothing(module_api: Any, farmers: list[str]) -> None:
    api = module_api
    actor = Actor(organisation=api.addresses[Role.COOPERATIVE], role=Role.COOPERATIVE)
    stranger = "0x" + "12" * 20
    lot = LotInput(stranger, 2, 7, 1, chain_now(api) - 86_400).checked()
    batch = [LotRequest(actor, "lots.record", lot, lot_payload(lot), None) for _ in range(3)]
    before = counts(api)

    record_batch(api.runtime, batch)

    for request in batch:
        with pytest.raises(ContractRefused, match="FarmerNotActiveMember"):
            request.future.result(timeout=0)
    assert counts(api) == before


def lot_payload(lot: LotInput) -> dict[str, Any]:
    """What ``record_lot`` fingerprints a lot by (its idempotency payload)."""
    return asdict(lot)


# ---- over HTTP -------------------------------------------------------------------------


def test_concurrent_lots_each_land_once(module_api: Any, farmers: list[str]) -> None:
    """Twenty concurrent lots without wait: each answered 202 with a transaction that
    mines; every lot is on chain once with its own farmer and grams, and in the mirror."""
    api = module_api
    now, base = chain_now(api), 20_000 + uuid.uuid4().int % 10_000 * 100
    bodies = [lot_body(farmers[i % 2], base + i, now) for i in range(CONCURRENT)]
    queue = iter(bodies)

    replies = concurrently(
        CONCURRENT,
        lambda: api.client(api.keys[Role.COOPERATIVE]),
        lambda coop: coop.post("/cooperative/lots", json=next(queue)),
    )

    answers = [ok(reply, 202) for reply in replies]
    ids = sorted({i for answer in answers for i in tx_ids(answer)})
    assert all(len(tx_ids(answer)) == 1 for answer in answers)
    wait_mined(api, ids)
    landed = recorded_lots(api, hashes_of(api, ids))
    mine = [lot for lot in landed if base <= lot["grams"] < base + CONCURRENT]
    assert Counter((lot["farmer"], lot["grams"]) for lot in mine) == Counter(
        (body["farmer"].lower(), body["grams"]) for body in bodies
    )
    lot_ids = [lot["lot_id"] for lot in mine]

    def mirrored() -> bool:
        with Session(api.runtime.engine) as session:
            found = session.exec(select(Lot.lot_id).where(col(Lot.lot_id).in_(lot_ids))).all()
        return len(found) == len(lot_ids)

    poll("the lots in the mirror", mirrored)


def test_concurrent_retries_of_one_lot_record_it_once(module_api: Any, farmers: list[str]) -> None:
    """Twenty concurrent identical lots under one Idempotency-Key: one lot on chain; every
    answer names the same transaction (or is a 409 while the first is being recorded)."""
    api = module_api
    now, grams = chain_now(api), 900_000 + uuid.uuid4().int % 90_000
    body, key = lot_body(farmers[0], grams, now), idem()

    replies = concurrently(
        CONCURRENT,
        lambda: api.client(api.keys[Role.COOPERATIVE]),
        lambda coop: coop.post("/cooperative/lots", json=body, headers=key),
    )

    answers = one_recorded(replies, 202)
    assert {tuple(tx_ids(a)) for a in answers} == {tuple(tx_ids(answers[0]))}
    assert claims(api, key["Idempotency-Key"]) == 1
    wait_mined(api, tx_ids(answers[0]))
    landed = recorded_lots(api, hashes_of(api, tx_ids(answers[0])))
    assert [lot["grams"] for lot in landed].count(grams) == 1


def test_a_bad_lot_among_concurrent_good_ones_is_its_own_409(
    module_api: Any, farmers: list[str]
) -> None:
    """One lot for a farmer of no cooperative among nineteen good ones sent at once: that
    one is a 409 naming FarmerNotActiveMember, the others are 202 and land."""
    api = module_api
    now, base = chain_now(api), 50_000 + uuid.uuid4().int % 10_000 * 100
    bodies = [lot_body(farmers[0], base + i, now) for i in range(CONCURRENT)]
    bodies[7] = lot_body("0x" + "34" * 20, base + 7, now)
    queue = iter(bodies)

    replies = concurrently(
        CONCURRENT,
        lambda: api.client(api.keys[Role.COOPERATIVE]),
        lambda coop: coop.post("/cooperative/lots", json=next(queue)),
    )

    by_grams = {int(json.loads(r.request.content)["grams"]): r for r in replies}
    bad = refused(by_grams.pop(base + 7))
    assert bad["error"] == "FarmerNotActiveMember"
    ids = sorted({i for reply in by_grams.values() for i in tx_ids(ok(reply, 202))})
    wait_mined(api, ids)
    landed = recorded_lots(api, hashes_of(api, ids))
    grams = sorted(lot["grams"] for lot in landed if base <= lot["grams"] < base + CONCURRENT)
    assert grams == sorted(by_grams)


def test_a_lot_that_waits_has_its_own_transaction(module_api: Any, farmers: list[str]) -> None:
    """?wait=true answers the lot's own LotRecorded event: one lot, one transaction."""
    api = module_api
    coop = api.client(api.keys[Role.COOPERATIVE])
    grams = 123_457
    answer = ok(
        coop.post(
            "/cooperative/lots", params=WAIT, json=lot_body(farmers[1], grams, chain_now(api))
        )
    )
    recorded = [e for e in answer["events"] if e["event"] == "LotRecorded"]
    assert len(recorded) == 1 and int(recorded[0]["args"]["grams"]) == grams
    assert [t["function"] for t in answer["transactions"]] == ["recordLot"]


def test_a_shared_lot_from_plain_python_refuses_like_the_api(
    module_api: Any, farmers: list[str]
) -> None:
    """``record_lot(shared=True)`` from Python: the API's refusal, by name and arguments;
    and a retry with the key of another lot is an IdempotencyConflict."""
    api = module_api
    actor = Actor(organisation=api.addresses[Role.COOPERATIVE], role=Role.COOPERATIVE)
    coop = api.client(api.keys[Role.COOPERATIVE])
    stranger = "0x" + "56" * 20
    through_http = refused(
        coop.post("/cooperative/lots", json=lot_body(stranger, 5, chain_now(api)))
    )
    before = counts(api)
    lot = LotInput(stranger, 2, 5, 1, 0, PLOT)

    with pytest.raises(ContractRefused) as refusal:
        lots.record_lot(api.runtime, actor, lot, shared=True)
    assert refusal.value.error == through_http["error"]
    assert refusal.value.args_ == through_http["args"]
    assert counts(api) == before

    key = f"py-{uuid.uuid4().hex}"
    first = lots.record_lot(
        api.runtime, actor, LotInput(farmers[0], 2, 6, 1, 0), idempotency_key=key, shared=True
    )
    with pytest.raises(IdempotencyConflict):
        lots.record_lot(
            api.runtime, actor, LotInput(farmers[0], 2, 7, 1, 0), idempotency_key=key, shared=True
        )
    wait_mined(api, [r.id for r in first.transactions if r.id is not None])
