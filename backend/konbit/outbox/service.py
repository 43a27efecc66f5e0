"""Recording intended transactions, idempotently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eth_utils import keccak, to_checksum_address
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from konbit.chain.contracts import KonbitContracts
from konbit.outbox.models import OutboxTx


class OutboxError(ValueError):
    """A transaction cannot be recorded as asked."""


class IdempotencyConflict(OutboxError):
    """The idempotency key was used before for a different request."""


def _canonical(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def request_hash(sender: str, to: str | None, data: str, value: int) -> str:
    body = json.dumps([sender, to, data.lower(), str(value)], separators=(",", ":"))
    return "0x" + keccak(text=body).hex()


def submit(
    session: Session,
    *,
    key: str,
    sender: str,
    contracts: KonbitContracts | None = None,
    contract: str | None = None,
    function: str | None = None,
    args: Sequence[Any] = (),
    to: str | None = None,
    data: str = "0x",
    value: int = 0,
    chain_genesis: str | None = None,
) -> tuple[OutboxTx, bool]:
    """Record a transaction once per ``key``; returns (row, created).

    Either ``contract`` + ``function`` + ``args`` (encoded now, so bad arguments fail
    here and not in the worker), or a raw ``to`` / ``data`` (a value transfer, or contract
    creation when ``to`` is None; ``function`` is then only a label). The same key again
    returns the first row; the same key for another request raises IdempotencyConflict.
    ``chain_genesis`` names the chain the transaction is for (konbit.services.chains); a
    key meant for one chain only should name it too.
    """
    if not key or len(key) > 200:
        raise OutboxError("idempotency key must be 1 to 200 characters")
    if value < 0:
        raise OutboxError("value must not be negative")
    sender = to_checksum_address(sender)
    plain_args = _canonical(list(args))
    if contract is not None:
        if contracts is None or function is None:
            raise OutboxError("a contract call needs the contract client and a function name")
        try:
            to, data = contracts.encode_call(contract, function, plain_args)
        except Exception as exc:  # web3 raises several types for unencodable arguments
            raise OutboxError(f"cannot encode {contract}.{function}: {exc}") from None
    elif to is not None:
        to = to_checksum_address(to)
    digest = request_hash(sender, to, data, value)

    existing = session.exec(select(OutboxTx).where(OutboxTx.idempotency_key == key)).first()
    if existing is not None:
        return _same_or_conflict(existing, digest, key), False
    row = add(
        session,
        key=key,
        sender=sender,
        contract=contract,
        function=function,
        args=plain_args,
        to=to,
        data=data,
        value=value,
        chain_genesis=chain_genesis,
    )
    try:
        session.commit()
    except IntegrityError:  # a concurrent request with the same key won the race
        session.rollback()
        existing = session.exec(select(OutboxTx).where(OutboxTx.idempotency_key == key)).one()
        return _same_or_conflict(existing, digest, key), False
    session.refresh(row)
    return row, True


def add(
    session: Session,
    *,
    key: str,
    sender: str,
    to: str | None,
    data: str,
    contract: str | None = None,
    function: str | None = None,
    args: Sequence[Any] = (),
    value: int = 0,
    chain_genesis: str | None = None,
) -> OutboxTx:
    """Add an already encoded transaction to ``session``; the caller's transaction commits it.

    For services that record a write together with what it creates off chain.
    """
    sender = to_checksum_address(sender)
    row = OutboxTx(
        idempotency_key=key,
        request_hash=request_hash(sender, to, data, value),
        sender=sender,
        contract=contract,
        function=function,
        args_json=json.dumps(_canonical(list(args))),
        to_address=to,
        data=data,
        value_wei=str(value),
        chain_genesis=chain_genesis,
    )
    session.add(row)
    return row


def _same_or_conflict(existing: OutboxTx, digest: str, key: str) -> OutboxTx:
    if existing.request_hash != digest:
        raise IdempotencyConflict(f"idempotency key {key!r} was already used for another request")
    return existing


def get(session: Session, tx_id: int) -> OutboxTx | None:
    return session.get(OutboxTx, tx_id)
