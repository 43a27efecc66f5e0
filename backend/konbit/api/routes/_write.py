"""Shared plumbing of the write endpoints: enqueue off the event loop, answer 202 or wait."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from konbit.api.auth import Actor
from konbit.api.schemas import CustodyIn, HandOverIn, geohash_bytes
from konbit.api.writes import Call, TxView, enqueue, runtime_of, settle
from konbit.chain.contracts import konbit_event_decoder

WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "With ?wait=true: mined and mirrored"},
    401: {"description": "No or unknown API key"},
    403: {"description": "Wrong role, or another organisation's resource"},
    404: {"description": "No such resource"},
    409: {"description": "The contract refuses (custom error named), or key reuse"},
    422: {"description": "Invalid input (each field named)"},
}


async def write(
    request: Request,
    actor: Actor,
    calls: Sequence[Call],
    *,
    wait: bool,
    sender: str | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    rows = await run_in_threadpool(enqueue, request, actor, calls, sender=sender)
    rows = await settle(request, rows, wait=wait)
    body: dict[str, Any] = {
        **(extra or {}),
        "transactions": [TxView.of(r).model_dump() for r in rows],
    }
    if wait:
        body["events"] = await run_in_threadpool(_events, request, [r.tx_hash for r in rows])
    return JSONResponse(body, status_code=200 if wait else 202)


def _events(request: Request, tx_hashes: list[str | None]) -> list[dict[str, Any]]:
    """The Konbit events the mined transactions emitted: ids of what they created, etc."""
    runtime = runtime_of(request)
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
    return out


def chain_call(request: Request, contract: str, function: str, *args: Any) -> Any:
    """A view call on the live contract (ownership checks must not trail the mirror)."""
    fn = getattr(runtime_of(request).contracts().contract(contract).functions, function)
    return fn(*args).call()


ZERO = "0x" + "00" * 20


def _exists(owner: str, what: str) -> str:
    if owner.lower() == ZERO:
        from konbit.api.problems import Problem

        raise Problem(404, f"no {what}")
    return owner


def order_parties(request: Request, order_id: int) -> tuple[str, str]:
    """(exporter, cooperative) of an order; 404 when there is none."""
    order = chain_call(request, "SaleEscrow", "getOrder", order_id)
    return _exists(order[0], f"order {order_id}"), order[4]


def job_parties(request: Request, job_id: int) -> tuple[str, str]:
    """(cooperative, carrier) of a transport job."""
    job = chain_call(request, "LogisticsMarket", "jobs", job_id)
    return _exists(job[0], f"job {job_id}"), job[3]


def consignment_cooperative(request: Request, consignment_id: int) -> str:
    info = chain_call(request, "Traceability", "consignmentInfo", consignment_id)
    return _exists(info[0], f"consignment {consignment_id}")


def lot_cooperative(request: Request, lot_id: int) -> str:
    farmer = _exists(chain_call(request, "Traceability", "lots", lot_id)[0], f"lot {lot_id}")
    return str(chain_call(request, "ClusterRegistry", "farmerInfo", farmer)[0])


def advance_request_cooperative(request: Request, request_id: int) -> str:
    info = chain_call(request, "FinanceMarket", "requests", request_id)
    return _exists(info[0], f"advance request {request_id}")


def custody_call(function: str, consignment_id: int, body: CustodyIn) -> Call:
    """``Traceability.handOver`` / ``confirmReceipt`` for ``body``."""
    args: list[object] = [consignment_id]
    if isinstance(body, HandOverIn):
        args.append(body.to)
    args += [body.at, geohash_bytes(body.geohash), body.evidence_hash]
    return Call("Traceability", function, args)
