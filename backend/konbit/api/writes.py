"""The write path shared by every router: record in the outbox, answer 202, or wait.

A handler validates and checks role and ownership, then calls :func:`enqueue` with the
contract calls to make; nothing is sent from the request. With ``?wait=true`` the answer
comes once every transaction is mined and the mirror has applied its block, so the
caller can read the resource it just changed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from konbit.api.auth import Actor
from konbit.api.problems import ContractRevert, Problem
from konbit.chain.rpc import RpcError
from konbit.outbox.models import PENDING, OutboxTx, TxStatus
from konbit.outbox.service import submit
from konbit.runtime import Runtime
from konbit.vault.errors import UnknownAccountError

WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Call:
    contract: str
    function: str
    args: Sequence[Any]


class TxView(BaseModel):
    """What happened to one recorded transaction."""

    id: int
    status: str
    contract: str | None
    function: str | None
    tx_hash: str | None
    block_number: int | None
    error: str | None
    error_args: dict[str, Any] | None
    href: str

    @classmethod
    def of(cls, row: OutboxTx) -> TxView:
        assert row.id is not None
        return cls(
            id=row.id,
            status=row.status,
            contract=row.contract,
            function=row.function,
            tx_hash=row.tx_hash,
            block_number=row.block_number,
            error=row.error_name,
            error_args=json.loads(row.error_args_json) if row.error_args_json else None,
            href=f"/transactions/{row.id}",
        )


class Accepted(BaseModel):
    """202: the request is recorded; its transactions are on their way."""

    transactions: list[TxView]


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _key_base(request: Request, actor: Actor) -> str | None:
    header = request.headers.get("idempotency-key")
    if header is None:
        return None
    if not 1 <= len(header) <= 100:
        raise Problem(422, "Idempotency-Key must be 1 to 100 characters", field="Idempotency-Key")
    return f"api:{actor.key_id}:{header}"


def previous_args(request: Request, actor: Actor) -> list[Any] | None:
    """Arguments of the first call recorded under this request's Idempotency-Key, if any.

    Endpoints that create something off chain first (a custodial account, a profile) use
    it so that a retried request reuses what the first one created.
    """
    base = _key_base(request, actor)
    if base is None:
        return None
    with Session(runtime_of(request).engine) as session:
        row = session.exec(select(OutboxTx).where(OutboxTx.idempotency_key == f"{base}:0")).first()
    return None if row is None else list(json.loads(row.args_json))


def enqueue(
    request: Request, actor: Actor, calls: Sequence[Call], *, sender: str | None = None
) -> list[OutboxTx]:
    """Record ``calls`` (in order) for the actor's custodial account.

    The ``Idempotency-Key`` header, scoped to the API key, makes a retry return the first
    answer. When the sender has nothing in flight, the first call is simulated first, so a
    revert answers 409 at once and nothing is recorded.
    """
    runtime = runtime_of(request)
    sender = sender or actor.organisation
    try:
        runtime.vault.account(sender)
    except UnknownAccountError:
        raise Problem(
            409,
            f"{sender} keeps its own wallet: sign the transaction and POST it to /transactions/raw",
        ) from None
    contracts = runtime.contracts()
    base = _key_base(request, actor) or f"api:{actor.key_id}:{uuid.uuid4().hex}"
    rows: list[OutboxTx] = []
    with Session(runtime.engine, expire_on_commit=False) as session:
        first_key = f"{base}:0"
        already = session.exec(
            select(OutboxTx).where(OutboxTx.idempotency_key == first_key)
        ).first()
        if already is None and calls and not _has_pending(session, sender):
            _simulate(runtime, sender, calls[0])
        for i, call in enumerate(calls):
            row, _ = submit(
                session,
                key=f"{base}:{i}",
                sender=sender,
                contracts=contracts,
                contract=call.contract,
                function=call.function,
                args=call.args,
            )
            rows.append(row)
    return rows


def _has_pending(session: Session, sender: str) -> bool:
    from sqlmodel import col

    found = session.exec(
        select(OutboxTx.id)
        .where(OutboxTx.sender == sender)
        .where(col(OutboxTx.status).in_(PENDING))
    ).first()
    return found is not None


def _simulate(runtime: Runtime, sender: str, call: Call) -> None:
    to, data = runtime.contracts().encode_call(call.contract, call.function, list(call.args))
    try:
        runtime.rpc.call("eth_call", {"from": sender, "to": to, "data": data}, "pending")
    except RpcError as exc:
        decoded = runtime.contracts().errors.decode(exc.revert_data)
        if decoded is None:
            raise Problem(502, f"the chain node refused the call: {exc.message}") from None
        raise ContractRevert(decoded.name, decoded.args) from None


async def settle(request: Request, rows: list[OutboxTx], *, wait: bool) -> list[OutboxTx]:
    """Without ``wait``, the rows as recorded. With it, once mined and mirrored (409 on revert)."""
    if not wait:
        return rows
    runtime = runtime_of(request)
    ids = [r.id for r in rows]
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        current = await run_in_threadpool(_load, runtime, ids)
        failed = next((r for r in current if r.status == TxStatus.FAILED), None)
        if failed is not None:
            raise ContractRevert(
                failed.error_name or "Reverted",
                json.loads(failed.error_args_json or "{}"),
                detail=f"transaction {failed.id} reverted: {failed.error_name}",
            )
        if all(r.status == TxStatus.MINED for r in current):
            top = max(r.block_number or 0 for r in current)
            mirror_running = bool(getattr(request.app.state, "mirror_running", False))
            if await run_in_threadpool(_mirrored, runtime, top, mirror_running):
                return current
        if time.monotonic() > deadline:
            raise Problem(
                504,
                f"not final after {WAIT_SECONDS:.0f}s; poll /transactions/{ids[0]}",
                transactions=[TxView.of(r).model_dump() for r in current],
            )
        await asyncio.sleep(0.02)


def _load(runtime: Runtime, ids: list[int | None]) -> list[OutboxTx]:
    with Session(runtime.engine) as session:
        return [session.get(OutboxTx, i) for i in ids if i is not None]  # type: ignore[misc]


def applied_block(runtime: Runtime) -> int | None:
    """The last block the mirror applied, or None when it has not started."""
    from konbit.mirror.models import MirrorCursor

    with Session(runtime.engine) as session:
        cursor = session.get(MirrorCursor, runtime.chain_id)
    return None if cursor is None else cursor.last_block


def _mirrored(runtime: Runtime, block: int, mirror_running: bool) -> bool:
    """Has the mirror applied ``block``? (True when no mirror runs: nothing to wait for.)"""
    if not mirror_running:
        return True
    applied = applied_block(runtime)
    return applied is not None and applied >= block
