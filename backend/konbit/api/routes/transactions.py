"""Transaction status (public) and submission of transactions signed by their own wallets."""

from __future__ import annotations

from typing import Annotated

from eth_account import Account
from fastapi import Body, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from konbit.api.auth import ActorDep
from konbit.api.problems import Problem
from konbit.api.reads import PUBLIC_RECORD_RESPONSES
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import RowId
from konbit.api.writes import TxView, runtime_of
from konbit.chain.rpc import RpcError
from konbit.outbox.models import OutboxTx, TxStatus, utcnow
from konbit.outbox.service import request_hash

router = PrefixRouter(prefix="/transactions", tags=["transactions"])


# `:int`: `/transactions/raw` is not a transaction id (a GET there is a 405, not a 422).
@router.get("/{tx_id:int}", response_model=TxView, responses=PUBLIC_RECORD_RESPONSES)
@on_loop
def transaction_status(tx_id: RowId, request: Request) -> TxView:
    """Where a recorded transaction is: queued, signed, sent, mined or failed (no login)."""
    with Session(runtime_of(request).engine) as session:
        row = session.get(OutboxTx, tx_id)
    if row is None:
        raise Problem(404, f"no transaction {tx_id}")
    return TxView.of(row)


class RawTransaction(BaseModel):
    raw: str = Field(
        pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
        max_length=262_144,
        description="a signed transaction, 0x-hex, from the organisation's own wallet",
    )


@router.post(
    "/raw", status_code=202, response_model=TxView, responses={401: {}, 403: {}, 409: {}, 422: {}}
)
def submit_signed(
    body: Annotated[RawTransaction, Body()], actor: ActorDep, request: Request
) -> TxView:
    """Broadcast a transaction signed by the organisation's own wallet; mirrored like any other."""
    runtime = runtime_of(request)
    try:
        sender = Account.recover_transaction(body.raw)
    except Exception:
        raise Problem(422, "raw is not a signed transaction", field="raw") from None
    if sender.lower() != actor.organisation.lower():
        raise Problem(403, f"the transaction is signed by {sender}, not by the key's organisation")
    try:
        tx_hash = runtime.rpc.call("eth_sendRawTransaction", body.raw)
    except RpcError as exc:
        raise Problem(409, f"the node refused the transaction: {exc.message}") from None
    with Session(runtime.engine) as session:
        row = session.exec(
            select(OutboxTx)
            .where(OutboxTx.tx_hash == tx_hash)
            .where(OutboxTx.chain_genesis == runtime.genesis)
        ).first()
        if row is None:
            row = OutboxTx(
                idempotency_key=f"raw:{tx_hash}",
                request_hash=request_hash(sender, None, body.raw, 0),
                sender=sender,
                function="external",
                raw_tx=body.raw,
                tx_hash=tx_hash,
                status=TxStatus.SENT.value,
                sent_at=utcnow(),
                chain_genesis=runtime.genesis,
            )
            session.add(row)
            session.commit()
            session.refresh(row)
            runtime.nudge_outbox()  # its receipt is recorded now, not at the next poll
    return TxView.of(row)
