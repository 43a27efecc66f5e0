"""How every write flows, whatever the channel: claim, simulate whole, record, or replay.

1. **Replay.** With an idempotency key (scoped to the acting organisation, not to one API
   key or phone), a request seen before returns its first answer; the same key with
   another request is an :class:`IdempotencyConflict`.
2. **Encode once, simulate whole.** The write's calls are encoded once and simulated as one
   sequence (``eth_simulateV1``) on the node's pending state, after every transaction the
   outbox has recorded but not yet sent, so that ``approve`` + ``fund`` is judged as a
   pair, against the state the chain will have when they are mined. A refusal raises
   :class:`ContractRefused` and nothing is recorded: no nonce used, no allowance left behind.
3. **Claim and record in one database transaction.** The idempotency claim, everything the
   write creates off chain (custodial account, profile, organisation, API key) and its
   outbox rows commit together. A concurrent duplicate blocks on the claim's unique index
   and then finds the first answer; nothing of it is left behind.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak
from sqlalchemy import bindparam, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from konbit.access.keys import Actor
from konbit.chain.contracts import konbit_event_decoder
from konbit.chain.rpc import RpcError
from konbit.db.raw_query import RawQuery
from konbit.outbox import service as outbox
from konbit.outbox.models import PENDING, OutboxRequest, OutboxTx, TxStatus, utcnow
from konbit.runtime import Runtime
from konbit.services.errors import (
    BudgetSpent,
    ChainUnavailable,
    Conflict,
    ContractRefused,
    IdempotencyConflict,
    InvalidInput,
    OwnWallet,
)
from konbit.vault.errors import UnknownAccountError

#: In-flight transactions replayed before a write's own calls when it is simulated.
SIMULATE_PENDING_LIMIT = 200
IDEMPOTENCY_KEY_MAX = 100


@dataclass(frozen=True)
class Call:
    """One contract call of a write."""

    contract: str
    function: str
    args: Sequence[Any]


#: Adds what a write creates off chain to the session; returns what to answer about it.
Effects = Callable[[Session], dict[str, Any]]


@dataclass
class Write:
    """A write as a service prepared it: what to fingerprint, what to send, what to create."""

    operation: str
    payload: Mapping[str, Any]
    calls: Sequence[Call] = ()
    sender: str | None = None
    effects: Effects | None = None
    #: Answered with the transactions (known before anything is stored).
    created: dict[str, Any] = field(default_factory=dict)
    #: Called with the session's outcome once committed (e.g. the vault's rotation check).
    after_commit: Callable[[], None] | None = None
    #: Message of the Conflict raised when ``effects`` break a unique constraint.
    duplicate: str = "this was already recorded"
    duplicate_field: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a write recorded: its transactions and what it created off chain."""

    transactions: list[OutboxTx]
    created: dict[str, Any]
    replayed: bool = False
    #: The request's place in a transaction it shares with other requests (a lot of
    #: konbit.services.lot_batches: ``recordLots`` emits one event per lot, in order), so
    #: that its events are its own; None when the transaction is the request's alone.
    part: int | None = None


def fingerprint(operation: str, payload: Mapping[str, Any]) -> str:
    body = json.dumps([operation, payload], sort_keys=True, separators=(",", ":"), default=str)
    return "0x" + keccak(text=body).hex()


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters",
            field="Idempotency-Key",
        )
    return key


def perform(
    runtime: Runtime, actor: Actor, write: Write, *, idempotency_key: str | None = None
) -> Outcome:
    """Replay, or simulate, claim and record ``write`` for ``actor`` (see the module doc)."""
    key = check_idempotency_key(idempotency_key)
    scope = actor.organisation
    digest = fingerprint(write.operation, write.payload)
    if key is not None:
        first = replay(runtime, scope, key, digest)
        if first is not None:
            return first
    sender = write.sender or actor.organisation
    encoded = encode(runtime, write.calls)
    if encoded:
        require_custodial(runtime, sender)
        require_gas(runtime, sender)
        simulate(runtime, sender, encoded)
    with Session(runtime.engine, expire_on_commit=False) as session:
        claimed: int | None = None
        if key is not None:
            claimed = claim(session, scope, key, write.operation, digest)
            if claimed is None:  # a concurrent duplicate committed first
                session.rollback()
                return duplicate_answer(runtime, scope, key, digest)
        created = dict(write.created)
        try:
            if write.effects is not None:
                created.update(write.effects(session))
            base = f"req:{claimed}" if claimed is not None else f"once:{uuid.uuid4().hex}"
            rows = [
                add_call(runtime, session, f"{base}:{i}", sender, one)
                for i, one in enumerate(encoded)
            ]
            session.flush()
        except IntegrityError:
            session.rollback()
            raise Conflict(write.duplicate, field=write.duplicate_field) from None
        if claimed is not None:
            answer_claim(session, claimed, created, [r.id for r in rows])
        session.commit()
    if rows:
        runtime.nudge_outbox()
    if write.after_commit is not None:
        write.after_commit()
    return Outcome(transactions=rows, created=created)


def add_call(
    runtime: Runtime, session: Session, key: str, sender: str, encoded: tuple[Call, str, str]
) -> OutboxTx:
    """Add one encoded call of ``sender`` to the outbox, in ``session`` (the caller commits)."""
    call, to, data = encoded
    return outbox.add(
        session,
        key=key,
        sender=sender,
        to=to,
        data=data,
        contract=call.contract,
        function=call.function,
        args=call.args,
        chain_genesis=runtime.genesis,
    )


def claim(session: Session, scope: str, key: str, operation: str, digest: str) -> int | None:
    """Claim ``(scope, key)`` in ``session``'s transaction: the claim's id, or None when
    another request holds it (committed: its answer is there to replay). A concurrent
    claim's transaction is waited for on the unique index, so two never both hold a key.

    ``INSERT ... ON CONFLICT DO NOTHING``, not a savepoint: a claim that loses leaves the
    rest of the transaction as it was (lots of other requests share it,
    konbit.services.lot_batches), and SQLite's driver would commit a savepoint opened
    before anything else in the transaction when it is released.
    """
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = (
        insert(OutboxRequest)
        .values(
            scope=scope,
            key=key,
            operation=operation,
            fingerprint=digest,
            answer_json="{}",
            tx_ids_json="[]",
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(col(OutboxRequest.id))
    )
    claim_id: int | None = session.execute(statement).scalar_one_or_none()
    return claim_id


#: In a stored answer, the request's :attr:`Outcome.part` (a key no write creates).
PART_KEY = "$part"


def answer_claim(
    session: Session,
    claim_id: int,
    created: Mapping[str, Any],
    tx_ids: Sequence[int | None],
    *,
    part: int | None = None,
) -> None:
    """Store a claimed request's first answer, in the transaction that records it."""
    answer = dict(created) if part is None else {**created, PART_KEY: part}
    session.execute(
        update(OutboxRequest)
        .where(col(OutboxRequest.id) == claim_id)
        .values(answer_json=json.dumps(answer, default=str), tx_ids_json=json.dumps(tx_ids))
    )


def duplicate_answer(runtime: Runtime, scope: str, key: str, digest: str) -> Outcome:
    """For a request whose claim another took: that request's answer, or a 409 while it
    is still being recorded (or when it was another request)."""
    first = replay(runtime, scope, key, digest)
    if first is None:
        raise IdempotencyConflict(f"a request with idempotency key {key!r} is still being recorded")
    return first


def earlier_answer(
    runtime: Runtime,
    actor: Actor,
    operation: str,
    payload: Mapping[str, Any],
    idempotency_key: str | None,
) -> Outcome | None:
    """For services with checks of their own before :func:`perform` (a phone already
    registered): a retry must find its first answer before those checks refuse it."""
    key = check_idempotency_key(idempotency_key)
    if key is None:
        return None
    return replay(runtime, actor.organisation, key, fingerprint(operation, payload))


def replay(runtime: Runtime, scope: str, key: str, digest: str) -> Outcome | None:
    """The first answer of the request claimed as ``(scope, key)``, if there is one."""
    with Session(runtime.engine, expire_on_commit=False) as session:
        claim = session.exec(
            select(OutboxRequest).where(OutboxRequest.scope == scope, OutboxRequest.key == key)
        ).first()
        if claim is None:
            return None
        if claim.fingerprint != digest:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for another request ({claim.operation})",
                field="Idempotency-Key",
            )
        ids = json.loads(claim.tx_ids_json)
        rows = (
            session.exec(
                select(OutboxTx).where(col(OutboxTx.id).in_(ids)).order_by(col(OutboxTx.id))
            ).all()
            if ids
            else []
        )
        elsewhere = {r.chain_genesis for r in rows if r.chain_genesis} - {runtime.genesis}
        if elsewhere:
            # A local node restarted as a new chain: the first answer's transactions are on
            # the old one. Replaying it would say "done" for a write this chain never saw.
            raise IdempotencyConflict(
                f"idempotency key {key!r} was used on another chain instance (genesis"
                f" {min(elsewhere)[:10]}..., before the node was started afresh); its write is"
                " not on this chain: send it again with a new key",
                field="Idempotency-Key",
            )
        created = json.loads(claim.answer_json)
        part = created.pop(PART_KEY, None)
        return Outcome(transactions=list(rows), created=created, replayed=True, part=part)


def require_custodial(runtime: Runtime, sender: str) -> None:
    if sender in runtime.custodial_seen:  # accounts never leave the vault
        return
    try:
        runtime.vault.account(sender)
        runtime.custodial_seen.add(sender)
    except UnknownAccountError:
        raise OwnWallet(
            f"{sender} keeps its own wallet: sign the transaction and POST it to /transactions/raw"
        ) from None


#: Gas a write is assumed to need when judging a balance nobody will top up any more.
GAS_PER_WRITE = 400_000


def require_gas(runtime: Runtime, sender: str) -> None:
    """Refuse a write that could not be paid: today's sponsorship is spent and the balance
    will not cover it after what the sender already has in flight."""
    settings = runtime.settings
    if settings.gas_budget_wei_per_day == 0 or sender == runtime.operator_address:
        return
    budget = runtime.gas_budget
    if budget.allows(sender, settings.gas_topup_wei, fresh=False):
        return
    replies = runtime.rpc.batch([("eth_getBalance", [sender, "latest"]), ("eth_gasPrice", [])])
    if any(isinstance(r, RpcError) for r in replies):
        raise ChainUnavailable("the chain node did not answer the balance check")
    balance, gas_price = (int(str(r), 16) for r in replies)
    with Session(runtime.engine) as session:
        in_flight = len(
            session.exec(
                select(OutboxTx.id)
                .where(OutboxTx.sender == sender)
                .where(col(OutboxTx.status).in_(PENDING))
            ).all()
        )
    if balance >= (in_flight + 1) * GAS_PER_WRITE * 2 * gas_price:
        return
    wait = budget.frees_in(sender)
    raise BudgetSpent(
        f"the gas the operator sponsors for {sender} is spent for today"
        f" ({settings.gas_budget_wei_per_day} wei per 24 h); retry in {wait} s or ask the"
        " operator to raise KONBIT_GAS_BUDGET_WEI_PER_DAY",
        retry_after=wait,
    )


def encode(runtime: Runtime, calls: Sequence[Call]) -> list[tuple[Call, str, str]]:
    """Each call as (call, to, calldata), encoded once; a value that cannot be encoded is a 422."""
    if not calls:
        return []
    contracts = runtime.contracts()
    out = []
    for call in calls:
        try:
            to, data = contracts.encode_call(call.contract, call.function, call.args)
        except Exception as exc:  # eth_abi raises several types for unencodable values
            raise InvalidInput(f"cannot encode {call.contract}.{call.function}: {exc}") from None
        out.append((call, to, data))
    return out


def simulate(runtime: Runtime, sender: str, encoded: Sequence[tuple[Call, str, str]]) -> None:
    """Run the calls as one sequence after what is in flight; raise on the first refusal."""
    ours = [{"from": sender, "to": to, "data": data} for _, to, data in encoded]
    results = simulate_each(runtime, ours)
    if results is None:
        _simulate_by_call(runtime, ours)
        return
    for (call, _, _), result in zip(encoded, results, strict=True):
        refused = refusal(runtime, call, result)
        if refused is not None:
            raise refused


def simulate_each(runtime: Runtime, calls: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Each call's result (``status``, ``returnData``), run in order after what is in flight;
    None when the node has no ``eth_simulateV1``. A reverted call changes nothing, so the
    calls after it are judged as if it had not been made."""
    prefix = _in_flight(runtime)
    try:
        return _simulate_v1(runtime, prefix + calls)[len(prefix) :]
    except RpcError as exc:
        if exc.method_unknown:
            return None
        if not prefix:
            raise ChainUnavailable(
                f"the chain node refused the simulation: {exc.message}"
            ) from None
        # The in-flight prefix itself was refused (a block full of it): judge ours alone.
        return _simulate_v1(runtime, calls)
    except OSError as exc:
        raise ChainUnavailable(f"the chain node cannot be reached: {exc}") from None


def refusal(runtime: Runtime, call: Call, result: Mapping[str, Any]) -> ContractRefused | None:
    """The contract's refusal of ``call`` in a simulation ``result``, or None if it succeeds."""
    if result.get("status") == "0x1":
        return None
    decoded = runtime.contracts().errors.decode(result.get("returnData") or "0x")
    name = decoded.name if decoded is not None else "Reverted"
    return ContractRefused(
        name,
        decoded.args if decoded is not None else {},
        f"{call.contract}.{call.function} would revert: {name}",
    )


def _simulate_v1(runtime: Runtime, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        blocks = runtime.rpc.call(
            "eth_simulateV1",
            {"blockStateCalls": [{"calls": calls}], "validation": False},
            "pending",
        )
    except RpcError:
        raise
    except Exception as exc:  # requests' connection errors
        raise ChainUnavailable(f"the chain node cannot be reached: {exc}") from None
    results: list[dict[str, Any]] = blocks[0]["calls"]
    return results


def _simulate_by_call(runtime: Runtime, calls: list[dict[str, Any]]) -> None:
    """Nodes without ``eth_simulateV1``: each call alone (a pair is judged by its first)."""
    try:
        runtime.rpc.call("eth_call", calls[0], "pending")
    except RpcError as exc:
        decoded = runtime.contracts().errors.decode(exc.revert_data)
        if decoded is None:
            raise ChainUnavailable(f"the chain node refused the call: {exc.message}") from None
        raise ContractRefused(decoded.name, decoded.args) from None


#: Recorded but not yet in the node's hands. A sent transaction is in the node's pending
#: state already (the simulation runs against ``pending``: its pool on top of the head);
#: replaying it would apply it twice, and cost the replay of every unmined row per write.
NOT_SENT = (TxStatus.QUEUED.value, TxStatus.SIGNED.value)


#: Recorded transactions the node does not have yet, oldest first. Another chain
#: instance's rows wait for it (konbit.services.chains). Every write reads it.
_IN_FLIGHT = RawQuery(
    select(OutboxTx.sender, OutboxTx.to_address, OutboxTx.data, OutboxTx.value_wei)
    .where(col(OutboxTx.status).in_(NOT_SENT))
    .where(col(OutboxTx.to_address).is_not(None))
    .where(
        or_(
            # A placeholder value: compiling with the IN-list bound asks one of every
            # parameter; the caller gives the runtime's genesis.
            col(OutboxTx.chain_genesis) == bindparam("genesis", ""),
            col(OutboxTx.chain_genesis).is_(None),
        )
    )
    .order_by(col(OutboxTx.id))
    .limit(SIMULATE_PENDING_LIMIT)
)


def _in_flight(runtime: Runtime) -> list[dict[str, Any]]:
    """Recorded transactions the node does not have yet, oldest first, as simulation calls."""
    calls = []
    for sender, to, data, value in _IN_FLIGHT.all(runtime.engine, {"genesis": runtime.genesis}):
        call: dict[str, Any] = {"from": sender, "to": to, "data": data}
        if value and value != "0":
            call["value"] = hex(int(value))
        calls.append(call)
    return calls


# ---- after recording -------------------------------------------------------------------


def load(runtime: Runtime, ids: Sequence[int | None]) -> list[OutboxTx]:
    """The rows as they are now."""
    wanted = [i for i in ids if i is not None]
    with Session(runtime.engine) as session:
        rows = session.exec(select(OutboxTx).where(col(OutboxTx.id).in_(wanted))).all()
    by_id = {r.id: r for r in rows}
    return [by_id[i] for i in wanted if i in by_id]


def failed(rows: Sequence[OutboxTx]) -> ContractRefused | None:
    """The refusal of the first reverted row, if any."""
    for row in rows:
        if row.status == TxStatus.FAILED:
            return ContractRefused(
                row.error_name or "Reverted",
                json.loads(row.error_args_json or "{}"),
                f"transaction {row.id} reverted: {row.error_name}",
            )
    return None


def applied_block(runtime: Runtime) -> int | None:
    """The last block the mirror applied, or None when it has not started."""
    from konbit.mirror.models import MirrorCursor

    with Session(runtime.engine) as session:
        cursor = session.get(MirrorCursor, runtime.chain_id)
    return None if cursor is None else cursor.last_block


def final(runtime: Runtime, rows: Sequence[OutboxTx], *, mirror_running: bool) -> bool:
    """Every row mined and (when a mirror runs) its block applied to SQL."""
    if not rows or not all(r.status == TxStatus.MINED for r in rows):
        return False
    if not mirror_running:
        return True
    top = max(r.block_number or 0 for r in rows)
    applied = applied_block(runtime)
    return applied is not None and applied >= top


def wait_final(
    runtime: Runtime, rows: Sequence[OutboxTx], *, timeout: float, mirror_running: bool
) -> list[OutboxTx]:
    """Block until every row is final (for channels without an event loop: SMS, CLI)."""
    deadline = time.monotonic() + timeout
    current = list(rows)
    while True:
        current = load(runtime, [r.id for r in current])
        refusal = failed(current)
        if refusal is not None:
            raise refusal
        if final(runtime, current, mirror_running=mirror_running):
            return current
        if time.monotonic() > deadline:
            return current
        time.sleep(0.05)


def events_of(
    runtime: Runtime, tx_hashes: Sequence[str | None], *, part: int | None = None
) -> list[dict[str, Any]]:
    """The Konbit events the mined transactions emitted: ids of what they created, etc.

    ``part``: the request shares its one transaction with others' (:attr:`Outcome.part`):
    only its own event, the ``part``-th.
    """
    receipts = runtime.rpc.batch([("eth_getTransactionReceipt", [h]) for h in tx_hashes if h])
    decoder = konbit_event_decoder()
    out: list[dict[str, Any]] = []
    for receipt in receipts:
        if not isinstance(receipt, dict):
            continue
        for log in receipt.get("logs", []):
            event = decoder.decode(log["topics"], log["data"])
            if event is not None:
                out.append({"contract": event.contract, "event": event.name, "args": event.args})
    if part is not None:
        return out[part : part + 1]
    return out
