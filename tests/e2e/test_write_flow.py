"""How a write flows, over real HTTP on a real Anvil, on SQLite and on PostgreSQL.

1. A call the contract would refuse is answered 409 naming the custom error and leaves
   nothing behind: no outbox row, no nonce, no allowance, whether or not it waits and
   whether or not other transactions of the same sender are in flight (mining is paused
   around those, so "in flight" is a fact, not a race).
2. Twenty concurrent identical requests under one Idempotency-Key create one thing.
3. A replay answers the first answer; the same key with another body changes nothing;
   keys are scoped to the organisation, not to one API key.
4. The service layer refuses the same way from plain Python.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from eth_utils import keccak
from sqlalchemy import func
from sqlmodel import Session, col, select

from konbit.access.keys import Actor, authenticate
from konbit.outbox.models import PENDING, OutboxRequest, OutboxTx
from konbit.roles import Role
from konbit.services import farmers, orders
from konbit.services.errors import ContractRefused, Forbidden, InvalidInput, NotFound

pytestmark = pytest.mark.filterwarnings("ignore::brownie.exceptions.BrownieTestWarning")

PROBLEM = "application/problem+json"
USD, DAY = 10**6, 86_400
WAIT = {"wait": "true"}
CONCURRENT = 20
IN_FLIGHT = 3
POLL_SECONDS = 60.0


# ---- small helpers ---------------------------------------------------------------------


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, f"{reply.request.url}: {reply.status_code} {reply.text}"
    return reply.json()


def refused(reply: httpx.Response, status: int = 409) -> dict[str, Any]:
    """The problem+json body of a refusal with ``status``."""
    assert reply.status_code == status, f"{reply.request.url}: {reply.status_code} {reply.text}"
    assert reply.headers["content-type"].startswith(PROBLEM), reply.headers["content-type"]
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["detail"], body
    return body


def idem(key: str | None = None) -> dict[str, str]:
    """An Idempotency-Key header: ``key``, or a fresh one."""
    return {"Idempotency-Key": key or f"test-{uuid.uuid4().hex}"}


def event_arg(body: dict[str, Any], event: str, arg: str) -> Any:
    (value,) = [e["args"][arg] for e in body["events"] if e["event"] == event]
    return value


def tx_ids(body: dict[str, Any]) -> list[int]:
    return [t["id"] for t in body["transactions"]]


def chain_now(api: Any) -> int:
    """Chain time (other tests move the shared node forward): deadlines start from here."""
    return int(api.runtime.rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def block_number(api: Any) -> int:
    return int(api.runtime.rpc.call("eth_blockNumber"), 16)


def chain_nonce(api: Any, address: str) -> int:
    """The sender's nonce as mined (``latest``)."""
    return int(api.runtime.rpc.call("eth_getTransactionCount", address, "latest"), 16)


def allowance(api: Any, owner: str, spender: str) -> int:
    contracts = api.runtime.contracts()
    spender_address = contracts.book.address(spender)
    return int(contracts.stablecoin.functions.allowance(owner, spender_address).call())


def outbox_rows(api: Any, sender: str, *statuses: str) -> int:
    """How many outbox rows ``sender`` has (in ``statuses``, when given)."""
    query = (
        select(func.count())
        .select_from(OutboxTx)
        .where(func.lower(OutboxTx.sender) == sender.lower())
    )
    if statuses:
        query = query.where(col(OutboxTx.status).in_(statuses))
    with Session(api.runtime.engine) as session:
        return int(session.exec(query).one())


def outbox_by_function(api: Any, function: str) -> list[OutboxTx]:
    with Session(api.runtime.engine) as session:
        query = select(OutboxTx).where(OutboxTx.function == function).order_by(col(OutboxTx.id))
        return list(session.exec(query).all())


def statuses(api: Any, ids: list[int]) -> list[str]:
    with Session(api.runtime.engine) as session:
        query = select(OutboxTx.status).where(col(OutboxTx.id).in_(ids))
        return list(session.exec(query).all())


def claims(api: Any, key: str) -> int:
    """Idempotency claims recorded under ``key``, whatever the organisation."""
    with Session(api.runtime.engine) as session:
        query = select(func.count()).select_from(OutboxRequest).where(OutboxRequest.key == key)
        return int(session.exec(query).one())


def poll(what: str, check: Callable[[], bool], timeout: float = POLL_SECONDS) -> None:
    """Bounded polling: ``check`` true within ``timeout`` seconds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_mined(api: Any, ids: list[int]) -> None:
    """Poll GET /transactions/{id} until each is mined (a failure fails the test)."""
    public = api.client(None)
    for tx_id in ids:

        def mined(tx_id: int = tx_id) -> bool:
            status = ok(public.get(f"/transactions/{tx_id}"))["status"]
            assert status != "failed", f"transaction {tx_id} failed"
            return bool(status == "mined")

        poll(f"transaction {tx_id} to be mined", mined)


def settle_sender(api: Any, sender: str) -> None:
    """Wait until nothing of ``sender`` is pending, so its nonce and rows stand still."""
    poll(f"{sender}'s outbox to drain", lambda: outbox_rows(api, sender, *PENDING) == 0)


@contextmanager
def mining_paused(api: Any) -> Iterator[None]:
    """Anvil stops mining: what is sent stays in the node's pool until the block ends.

    This makes "in flight" deterministic (Anvil otherwise mines each transaction at once);
    it is undone even when the block fails, for the next tests on the shared node."""
    rpc = api.runtime.rpc
    rpc.call("evm_setAutomine", False)
    try:
        yield
    finally:
        rpc.call("evm_setAutomine", True)
        rpc.call("evm_mine")


def topic(address: str) -> str:
    return "0x" + address.lower().removeprefix("0x").rjust(64, "0")


def logs(api: Any, contract: str, signature: str, *topics: str | None, since: int) -> list[Any]:
    """The contract's ``signature`` events from block ``since`` on, filtered by topics."""
    address = api.runtime.contracts().book.address(contract)
    topic0 = "0x" + keccak(text=signature).hex()
    query = {"address": address, "fromBlock": hex(since), "topics": [topic0, *topics]}
    return list(api.runtime.rpc.call("eth_getLogs", query))


def concurrently(
    count: int, make_client: Callable[[], httpx.Client], send: Callable[[httpx.Client], Any]
) -> list[httpx.Response]:
    """``send`` from ``count`` threads at once, each on its own connection, already open
    (a first GET /healthz), so that a barrier releases the requests themselves together."""
    barrier = threading.Barrier(count)

    def one() -> httpx.Response:
        with make_client() as client:
            ok(client.get("/healthz"))
            barrier.wait(timeout=30)
            reply: httpx.Response = send(client)
            return reply

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one) for _ in range(count)]
        return [f.result() for f in futures]


def one_recorded(replies: list[httpx.Response], status: int) -> list[dict[str, Any]]:
    """Each reply is an answer (``status``) or an idempotency 409; exactly one answer is
    not a replay. Returns the answers, that first one first."""
    answers, conflicts = [], []
    for reply in replies:
        if reply.status_code == 409:
            conflicts.append(refused(reply))
        else:
            answers.append(ok(reply, status))
    assert all(c["code"] == "idempotency_conflict" for c in conflicts), conflicts
    firsts = [a for a in answers if not a["replayed"]]
    assert len(firsts) == 1, f"{len(firsts)} requests were recorded, not one: {firsts}"
    return firsts + [a for a in answers if a["replayed"]]


def unchanged_but(before: dict[str, int], after: dict[str, int], **added: int) -> None:
    """Every row count is as before, except those named, which grew by the amount given."""
    expected = {table: count + added.get(table, 0) for table, count in before.items()}
    assert after == expected


# ---- the module's world ----------------------------------------------------------------


@dataclass
class World:
    """Records the tests refuse against, made through the API once per database."""

    api: Any
    now: int
    funded_order: int = 0
    funded_request: int = 0
    unfunded_exporter: str = ""
    unfunded_exporter_key: str = ""
    unfunded_order: int = 0
    #: The financier's open offers on another request: withdrawing one is a valid write.
    open_offers: list[int] = field(default_factory=list)

    def order_body(self) -> dict[str, Any]:
        return {
            "cooperative": self.api.addresses[Role.COOPERATIVE],
            "crop": 1,
            "grams": 100_000,
            "price_per_kg": 2 * USD,
            "delivery_deadline": self.now + 30 * DAY,
        }


@pytest.fixture(scope="module")
def world(module_api: Any) -> World:
    """A funded order with two advance requests on it: one funded (its offer accepted), one
    open with the financier's small offers; and a tokenless exporter's accepted order."""
    api = module_api
    world = World(api, chain_now(api))
    op, coop, exporter, financier = (
        api.client(api.key(r))
        for r in (Role.OPERATOR, Role.COOPERATIVE, Role.EXPORTER, Role.FINANCIER)
    )

    def new_id(client: httpx.Client, path: str, body: Any, event: str, arg: str) -> int:
        return int(event_arg(ok(client.post(path, params=WAIT, json=body)), event, arg))

    for role in (Role.EXPORTER, Role.FINANCIER):
        body = {"address": api.addresses[role], "amount": 10_000 * USD}
        ok(op.post("/operator/faucet", params=WAIT, json=body))
    order = new_id(exporter, "/exporter/orders", world.order_body(), "OrderProposed", "orderId")
    ok(coop.post(f"/cooperative/orders/{order}/accept", params=WAIT))
    ok(exporter.post(f"/exporter/orders/{order}/fund", params=WAIT))
    funded, open_ = (
        new_id(
            coop,
            f"/cooperative/orders/{order}/advance-requests",
            {"amount": 10 * USD},
            "AdvanceRequested",
            "requestId",
        )
        for _ in range(2)
    )
    small = {"amount": USD, "fee": 0, "expiry": world.now + 20 * DAY}
    world.open_offers = [  # one batch per in-flight refusal test of the financier
        new_id(
            financier, f"/financier/advance-requests/{open_}/offers", small, "OfferMade", "offerId"
        )
        for _ in range(2 * IN_FLIGHT)
    ]
    full = {"amount": 10 * USD, "fee": USD, "expiry": world.now + 20 * DAY}
    offer = new_id(
        financier, f"/financier/advance-requests/{funded}/offers", full, "OfferMade", "offerId"
    )
    ok(coop.post(f"/cooperative/offers/{offer}/accept", params=WAIT))
    world.funded_order, world.funded_request = order, funded

    poor = {"name": "Exporter without tokens", "role": "exporter"}
    created = ok(op.post("/operator/organisations", params=WAIT, json=poor))
    world.unfunded_exporter = created["organisation"]["address"]
    world.unfunded_exporter_key = ok(
        op.post(f"/operator/organisations/{world.unfunded_exporter}/keys", json={}), 201
    )["key"]
    world.unfunded_order = new_id(
        api.client(world.unfunded_exporter_key),
        "/exporter/orders",
        world.order_body(),
        "OrderProposed",
        "orderId",
    )
    ok(coop.post(f"/cooperative/orders/{world.unfunded_order}/accept", params=WAIT))
    return world


# ---- 1. refusals record nothing ----------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A call the contract refuses, who sends it, and a valid write of that same sender."""

    sender: str
    api_key: str
    path: str
    body: dict[str, Any] | None
    error: str
    #: The contract the refused call would have approved (approve + call).
    spender: str
    valid_write: Callable[[httpx.Client], httpx.Response]


def refusal(world: World, case: str) -> Refusal:
    api = world.api

    def propose(client: httpx.Client) -> httpx.Response:
        return client.post("/exporter/orders", json=world.order_body())

    def withdraw(client: httpx.Client) -> httpx.Response:
        return client.post(f"/financier/offers/{world.open_offers.pop()}/withdraw")

    if case == "fund a funded order":
        return Refusal(
            api.addresses[Role.EXPORTER],
            api.keys[Role.EXPORTER],
            f"/exporter/orders/{world.funded_order}/fund",
            None,
            "BadStatus",
            "SaleEscrow",
            propose,
        )
    if case == "fund without tokens":
        return Refusal(
            world.unfunded_exporter,
            world.unfunded_exporter_key,
            f"/exporter/orders/{world.unfunded_order}/fund",
            None,
            # Judged with its approve: not ERC20InsufficientAllowance.
            "ERC20InsufficientBalance",
            "SaleEscrow",
            propose,
        )
    assert case == "offer on a funded request"
    return Refusal(
        api.addresses[Role.FINANCIER],
        api.keys[Role.FINANCIER],
        f"/financier/advance-requests/{world.funded_request}/offers",
        {"amount": 7 * USD, "fee": 0, "expiry": world.now + 20 * DAY},
        "BadRequestStatus",
        "FinanceMarket",
        withdraw,
    )


CASES = ("fund a funded order", "fund without tokens", "offer on a funded request")


@pytest.mark.parametrize("in_flight", [0, IN_FLIGHT], ids=["alone", "behind-in-flight"])
@pytest.mark.parametrize("wait", [False, True], ids=["202", "wait"])
@pytest.mark.parametrize("case", CASES)
def test_refusal_records_nothing(world: World, case: str, wait: bool, in_flight: int) -> None:
    """A refused write is a 409 naming the custom error. It adds no outbox row and no claim,
    uses no nonce and leaves no allowance, also when the same sender has transactions in
    flight (sent, unmined): those are still mined, with consecutive nonces."""
    api, spec = world.api, refusal(world, case)
    client = api.client(spec.api_key)
    settle_sender(api, spec.sender)
    nonce_before = chain_nonce(api, spec.sender)
    rows_before = outbox_rows(api, spec.sender)
    allowance_before = allowance(api, spec.sender, spec.spender)
    key = idem()

    flying: list[int] = []
    with mining_paused(api) if in_flight else nullcontext():
        for _ in range(in_flight):
            flying += tx_ids(ok(spec.valid_write(client), 202))
        if flying:  # at least one holds a nonce and waits in the node's pool
            poll("an in-flight transaction to be sent", lambda: "sent" in statuses(api, flying))
        reply = client.post(spec.path, params=WAIT if wait else None, json=spec.body, headers=key)
        # Answered while every earlier transaction was still unmined.
        assert set(statuses(api, flying)) <= set(PENDING)
        assert chain_nonce(api, spec.sender) == nonce_before

    problem = refused(reply)
    assert problem["error"] == spec.error, problem
    assert claims(api, key["Idempotency-Key"]) == 0
    wait_mined(api, flying)
    assert chain_nonce(api, spec.sender) == nonce_before + len(flying)
    assert outbox_rows(api, spec.sender) == rows_before + len(flying)
    assert allowance(api, spec.sender, spec.spender) == allowance_before
    with Session(api.runtime.engine) as session:
        nonces = session.exec(select(OutboxTx.nonce).where(col(OutboxTx.id).in_(flying))).all()
    assert sorted(n or 0 for n in nonces) == list(range(nonce_before, nonce_before + len(flying)))


# ---- 2. concurrent duplicates create one thing -----------------------------------------


def test_concurrent_enrolments_make_one_farmer(world: World) -> None:
    """Twenty identical enrolments at once under one key: one profile, one custodial account,
    one enrollFarmer transaction and one FarmerEnrolled event; the rest replay or are 409."""
    api = world.api
    before, since = api.counts(), block_number(api)
    enrolments_before = len(outbox_by_function(api, "enrollFarmer"))
    body, key = {"name": "Concurrent farmer", "plot_geohash": "d7ns5qzk"}, idem()

    replies = concurrently(
        CONCURRENT,
        lambda: api.client(api.keys[Role.COOPERATIVE]),
        lambda coop: coop.post("/cooperative/farmers", json=body, headers=key),
    )

    answers = one_recorded(replies, 202)
    farmer = answers[0]["farmer"]["address"]
    assert {a["farmer"]["address"] for a in answers} == {farmer}
    assert {tuple(tx_ids(a)) for a in answers} == {tuple(tx_ids(answers[0]))}
    unchanged_but(before, api.counts(), farmer_profile=1, custodial_account=1, outbox_tx=1)
    enrolments = outbox_by_function(api, "enrollFarmer")
    assert len(enrolments) == enrolments_before + 1
    assert farmer.lower() in enrolments[-1].args_json.lower()

    wait_mined(api, tx_ids(answers[0]))
    cooperative = topic(api.addresses[Role.COOPERATIVE])
    enrolled = logs(
        api, "ClusterRegistry", "FarmerEnrolled(address,address)", None, cooperative, since=since
    )
    assert [e["topics"][1] for e in enrolled] == [topic(farmer)]


def test_concurrent_organisation_creations_make_one(world: World) -> None:
    """Twenty identical creations at once: one organisation, one custodial account, one
    registerOrganisation transaction and one OrganisationRegistered event."""
    api = world.api
    before, since = api.counts(), block_number(api)
    registrations_before = len(outbox_by_function(api, "registerOrganisation"))
    name = f"Concurrent co-op {uuid.uuid4().hex[:6]}"
    body, key = {"name": name, "role": "cooperative"}, idem()

    replies = concurrently(
        CONCURRENT,
        lambda: api.client(api.operator_key),
        lambda op: op.post("/operator/organisations", json=body, headers=key),
    )

    answers = one_recorded(replies, 202)
    address = answers[0]["organisation"]["address"]
    assert all(a["organisation"] == answers[0]["organisation"] for a in answers)
    assert {tuple(tx_ids(a)) for a in answers} == {tuple(tx_ids(answers[0]))}
    unchanged_but(before, api.counts(), organisation_profile=1, custodial_account=1, outbox_tx=1)
    registrations = outbox_by_function(api, "registerOrganisation")
    assert len(registrations) == registrations_before + 1
    assert address.lower() in registrations[-1].args_json.lower()

    wait_mined(api, tx_ids(answers[0]))
    registered = logs(
        api,
        "ClusterRegistry",
        "OrganisationRegistered(address,bytes32,bytes32,address)",
        since=since,
    )
    assert [e["topics"][1] for e in registered] == [topic(address)]
    listed = ok(api.client(api.operator_key).get("/operator/organisations"))
    named = [o["address"] for o in listed if o["name"] == name]
    assert named == [address]


def test_concurrent_key_issuances_make_one_key(world: World) -> None:
    """Twenty identical key issuances at once: one api_key row, its secret in one answer."""
    api = world.api
    address = api.addresses[Role.INSPECTOR]
    before, key = api.counts(), idem()

    replies = concurrently(
        CONCURRENT,
        lambda: api.client(api.operator_key),
        lambda op: op.post(
            f"/operator/organisations/{address}/keys", json={"label": "burst"}, headers=key
        ),
    )

    answers = one_recorded(replies, 201)
    assert {a["id"] for a in answers} == {answers[0]["id"]}
    secrets = [a["key"] for a in answers if a["key"] is not None]
    assert secrets == [answers[0]["key"]]
    unchanged_but(before, api.counts(), api_key=1)
    actor = authenticate(api.runtime.engine, secrets[0])
    assert actor is not None and actor.organisation == address


# ---- 3. sequential replays ---------------------------------------------------------------


def test_replay_returns_the_first_answer(world: World) -> None:
    """The same key and body again (with or without ?wait) answers the first answer's
    transactions, marked replayed, and records nothing more."""
    api = world.api
    exporter = api.client(api.keys[Role.EXPORTER])
    key, body = idem(), world.order_body()
    first = ok(exporter.post("/exporter/orders", json=body, headers=key), 202)
    assert first["replayed"] is False
    counts = api.counts()

    again = ok(exporter.post("/exporter/orders", json=body, headers=key), 202)
    waited = ok(exporter.post("/exporter/orders", params=WAIT, json=body, headers=key))

    assert again["replayed"] is True and waited["replayed"] is True
    assert tx_ids(again) == tx_ids(waited) == tx_ids(first)
    assert [e["event"] for e in waited["events"]] == ["OrderProposed"]
    assert api.counts() == counts


def test_a_key_used_on_another_chain_instance_is_refused_not_replayed(world: World) -> None:
    """A local node started afresh is a new chain instance: a retry under a key whose
    first write went to the old one is a 409 saying so, not a replay of "done" for a
    write this chain never saw; nothing is recorded."""
    api = world.api
    exporter = api.client(api.keys[Role.EXPORTER])
    key, body = idem(), world.order_body()
    first = ok(exporter.post("/exporter/orders", params=WAIT, json=body, headers=key))
    old_chain = "0x" + "ab" * 32
    with Session(api.runtime.engine) as session:  # as if recorded before the node's restart
        for row in session.exec(select(OutboxTx).where(col(OutboxTx.id).in_(tx_ids(first)))):
            row.chain_genesis = old_chain
            session.add(row)
        session.commit()
    counts = api.counts()

    again = refused(exporter.post("/exporter/orders", json=body, headers=key))

    assert again["field"] == "Idempotency-Key"
    assert "another chain instance" in again["detail"] and old_chain[:10] in again["detail"]
    assert api.counts() == counts
    fresh = ok(exporter.post("/exporter/orders", json=body, headers=idem()), 202)
    assert fresh["replayed"] is False


@pytest.mark.parametrize("kind", ["farmer with a phone", "organisation with its own wallet"])
def test_replay_of_a_write_with_a_unique_field(world: World, kind: str) -> None:
    """A retry of an enrolment with a phone (or of an onboarding with an address) under the
    same key is the first answer, not a 409 "already registered" about its own record."""
    api = world.api
    if kind == "farmer with a phone":
        client = api.client(api.keys[Role.COOPERATIVE])
        path = "/cooperative/farmers"
        phone = f"+5093{uuid.uuid4().int % 10**7:07d}"
        body: dict[str, Any] = {"name": "Phone farmer", "phone": phone}
    else:
        client = api.client(api.operator_key)
        path = "/operator/organisations"
        wallet = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
        body = {"name": "Own wallet exporter", "role": "exporter", "address": wallet}
    key = idem()
    first = ok(client.post(path, json=body, headers=key), 202)
    counts = api.counts()

    again = client.post(path, json=body, headers=key)

    assert again.status_code == 202, again.text
    assert again.json()["replayed"] is True and tx_ids(again.json()) == tx_ids(first)
    assert api.counts() == counts


def test_same_key_other_body_is_refused_and_changes_nothing(world: World) -> None:
    """The same key with another body is a 409; the organisation is not renamed and no row
    of any kind is added."""
    api = world.api
    op = api.client(api.operator_key)
    key, name = idem(), f"Original name {uuid.uuid4().hex[:6]}"
    created = ok(
        op.post(
            "/operator/organisations",
            params=WAIT,
            json={"name": name, "role": "logistics"},
            headers=key,
        )
    )
    address = created["organisation"]["address"]
    counts = api.counts()

    problem = refused(
        op.post(
            "/operator/organisations", json={"name": "Renamed", "role": "logistics"}, headers=key
        )
    )

    assert problem["code"] == "idempotency_conflict"
    assert api.counts() == counts
    listed = {o["address"]: o["name"] for o in ok(op.get("/operator/organisations"))}
    assert listed[address] == name
    assert "Renamed" not in listed.values()


def test_keys_are_scoped_to_the_organisation(world: World) -> None:
    """Two API keys of one cooperative sending one key and one lot record one lot; another
    organisation may use the same key string for a request of its own."""
    api = world.api
    cooperative = api.addresses[Role.COOPERATIVE]
    op = api.client(api.operator_key)
    second_key = ok(
        op.post(f"/operator/organisations/{cooperative}/keys", json={"label": "second"}), 201
    )["key"]
    first_client, second_client = api.client(api.keys[Role.COOPERATIVE]), api.client(second_key)
    enrolled = ok(
        first_client.post("/cooperative/farmers", params=WAIT, json={"name": "Lot farmer"})
    )
    lot = {
        "farmer": enrolled["farmer"]["address"],
        "crop": 1,
        "grams": 5_000,
        "grade": 2,
        "harvest_time": world.now,
    }
    settle_sender(api, cooperative)
    rows_before, key = outbox_rows(api, cooperative), idem()

    first = ok(first_client.post("/cooperative/lots", json=lot, headers=key), 202)
    second = ok(second_client.post("/cooperative/lots", json=lot, headers=key), 202)

    assert first["replayed"] is False and second["replayed"] is True
    assert tx_ids(second) == tx_ids(first)
    assert outbox_rows(api, cooperative) == rows_before + 1

    exporter = api.client(api.keys[Role.EXPORTER])
    own = ok(exporter.post("/exporter/orders", json=world.order_body(), headers=key), 202)
    assert own["replayed"] is False and set(tx_ids(own)).isdisjoint(tx_ids(first))
    assert claims(api, key["Idempotency-Key"]) == 2
    wait_mined(api, tx_ids(first) + tx_ids(own))


# ---- 4. the service layer from plain Python ----------------------------------------------


def test_service_layer_refuses_like_the_api(world: World) -> None:
    """``orders.fund`` called directly: the contract's refusal by the same name and arguments
    as the API's 409, Forbidden for another role, NotFound for an unknown order, and
    InvalidInput naming the field for an id beyond uint64. Nothing is recorded."""
    api = world.api
    exporter = api.addresses[Role.EXPORTER]
    exporter_client = api.client(api.keys[Role.EXPORTER])
    through_http = refused(exporter_client.post(f"/exporter/orders/{world.funded_order}/fund"))
    actor = Actor(organisation=exporter, role=Role.EXPORTER)
    counts = api.counts()

    with pytest.raises(ContractRefused) as contract_refused:
        orders.fund(api.runtime, actor, world.funded_order)
    assert contract_refused.value.error == through_http["error"] == "BadStatus"
    assert contract_refused.value.args_ == through_http["args"]

    cooperative_actor = Actor(organisation=exporter, role=Role.COOPERATIVE)
    with pytest.raises(Forbidden):
        orders.fund(api.runtime, cooperative_actor, world.funded_order)
    with pytest.raises(NotFound):
        orders.fund(api.runtime, actor, 10**9)
    with pytest.raises(InvalidInput) as invalid:
        orders.fund(api.runtime, actor, 2**64)
    assert invalid.value.field == "order_id"
    assert api.counts() == counts


@pytest.mark.parametrize("phone", ["12", "3700 1234", "+509 3700-1234", "+0123456789"])
def test_a_farmer_phone_is_e164_from_every_channel(world: World, phone: str) -> None:
    """The gateway finds a farmer by the E.164 phone in the profile: the service refuses any
    other form, as the API does (the pages normalise what a person types first)."""
    api = world.api
    actor = Actor(organisation=api.addresses[Role.COOPERATIVE], role=Role.COOPERATIVE)
    counts = api.counts()
    with pytest.raises(InvalidInput) as invalid:
        farmers.enrol_farmer(api.runtime, actor, farmers.FarmerInput(name="Rose", phone=phone))
    assert invalid.value.field == "phone"
    through_http = api.client(api.keys[Role.COOPERATIVE]).post(
        "/cooperative/farmers", json={"name": "Rose", "phone": phone}
    )
    assert through_http.status_code == 422
    assert through_http.json()["errors"][0]["field"] == "phone"
    assert api.counts() == counts
