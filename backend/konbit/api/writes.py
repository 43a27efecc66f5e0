"""The HTTP side of every write: run the service off the event loop, answer 202 or wait.

The rules of a write (role, ownership, simulation, idempotency, outbox) are the services'
(:mod:`konbit.services`); here are only what HTTP adds: the ``Idempotency-Key`` header,
``?wait=true`` (answer once mined and mirrored, with the decoded events), and the answer's
shape.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from anyio import to_thread
from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from konbit.api.problems import Problem
from konbit.outbox.models import OutboxTx
from konbit.runtime import Runtime
from konbit.services import writes
from konbit.services.writes import Outcome

WAIT_SECONDS = 60.0


class TxView(BaseModel):
    """What happened to one recorded transaction."""

    id: int
    status: str = Field(description="queued, signed, sent, mined or failed")
    contract: str | None
    function: str | None
    tx_hash: str | None
    block_number: int | None
    error: str | None = Field(description="the contract's custom error, when it reverted")
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


class EventView(BaseModel):
    """One Konbit event a mined transaction emitted (e.g. the id of what it created)."""

    contract: str
    event: str
    args: dict[str, Any]


class Accepted(BaseModel):
    """202: recorded, on its way to the chain; 200 with ?wait=true: mined and mirrored."""

    transactions: list[TxView]
    events: list[EventView] | None = Field(
        default=None, description="with ?wait=true: the events the transactions emitted"
    )
    replayed: bool = Field(
        default=False, description="true when this answers a retry of an earlier request"
    )


class FarmerCreated(BaseModel):
    address: str
    name: str


class FarmerAccepted(Accepted):
    farmer: FarmerCreated


class OrganisationCreated(BaseModel):
    address: str
    name: str
    role: str
    custodial: bool


class OrganisationAccepted(Accepted):
    organisation: OrganisationCreated


def write_responses(model: type[Accepted]) -> dict[int | str, dict[str, Any]]:
    """What a write may answer, besides its 202 (``model`` also describes the 200)."""
    return {
        200: {
            "model": model,
            "description": "With ?wait=true: mined and mirrored, with the events it emitted",
        },
        401: {"description": "No or unknown API key"},
        403: {"description": "Wrong role, or another organisation's resource"},
        404: {"description": "No such resource"},
        409: {
            "description": "The contract refuses (custom error named), the Idempotency-Key was "
            "used for another request, or the sender keeps its own wallet"
        },
        413: {"description": "The body is larger than the configured limit"},
        422: {"description": "Invalid input (each field named)"},
        429: {"description": "Too many requests with this key, or the day's gas budget is spent"},
        503: {"description": "The chain node could not be asked"},
        504: {"description": "With ?wait=true: not final in time (poll the transactions)"},
    }


WRITE_RESPONSES = write_responses(Accepted)
FARMER_RESPONSES = write_responses(FarmerAccepted)
ORGANISATION_RESPONSES = write_responses(OrganisationAccepted)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


Wait = Annotated[
    bool, Query(description="answer once mined and mirrored, with the events (else 202)")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=writes.IDEMPOTENCY_KEY_MAX,
        description="makes a retry safe: the same key (per organisation) with the same "
        "request returns the first answer; with another request it is a 409",
    ),
]


@dataclass(frozen=True)
class WriteRequest:
    """What HTTP adds to a write: wait or not, and the client's idempotency key."""

    request: Request
    wait: bool
    idempotency_key: str | None

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.request)

    async def run(
        self,
        service: Callable[..., Outcome],
        *args: Any,
        batched: bool = False,
        **kwargs: Any,
    ) -> JSONResponse:
        """Call ``service(runtime, *args, idempotency_key=..., **kwargs)`` and answer.

        ``batched``: the service mostly waits for a batch other threads' requests join
        (konbit.services.lot_batches); its threads are many, so that a batch can grow.
        """
        call = functools.partial(
            service, self.runtime, *args, idempotency_key=self.idempotency_key, **kwargs
        )
        # Writes wait on the node (the simulation) and on the database's write lock: in
        # threads of their own, so that reads never queue behind them for a thread.
        state = self.request.app.state
        limiter = getattr(state, "batched_threads" if batched else "write_threads", None)
        outcome = await to_thread.run_sync(call, limiter=limiter)
        return await self.answer(outcome)

    async def answer(self, outcome: Outcome) -> JSONResponse:
        rows = outcome.transactions
        body: dict[str, Any] = {**outcome.created, "replayed": outcome.replayed}
        if self.wait and rows:
            rows = await self._settle(rows)
            body["events"] = await run_in_threadpool(
                functools.partial(
                    writes.events_of,
                    self.runtime,
                    [r.tx_hash for r in rows],
                    part=outcome.part,
                )
            )
        body["transactions"] = [TxView.of(r).model_dump() for r in rows]
        return JSONResponse(body, status_code=200 if self.wait else 202)

    async def _settle(self, rows: list[OutboxTx]) -> list[OutboxTx]:
        runtime = self.runtime
        mirror_running = bool(getattr(self.request.app.state, "mirror_running", False))
        stopping: Callable[[], bool] = getattr(self.request.app.state, "stopping", lambda: False)
        deadline = time.monotonic() + WAIT_SECONDS
        current = rows
        while True:
            current = await run_in_threadpool(writes.load, runtime, [r.id for r in current])
            refusal = writes.failed(current)
            if refusal is not None:
                raise refusal
            if await run_in_threadpool(
                writes.final, runtime, current, mirror_running=mirror_running
            ):
                return current
            if stopping():  # else it is cut off after the grace period, with a bare 500
                raise Problem(
                    503,
                    f"the server is stopping before this write is final; poll"
                    f" /transactions/{current[0].id}",
                    headers={"Retry-After": "5"},
                    transactions=[TxView.of(r).model_dump() for r in current],
                )
            if time.monotonic() > deadline:
                raise Problem(
                    504,
                    f"not final after {WAIT_SECONDS:.0f}s; poll /transactions/{current[0].id}",
                    transactions=[TxView.of(r).model_dump() for r in current],
                )
            await asyncio.sleep(0.02)


async def write_request(
    request: Request, wait: Wait = False, idempotency_key: IdempotencyKey = None
) -> WriteRequest:
    # async: a plain dependency would take a trip to the thread pool and back.
    return WriteRequest(request, wait, idempotency_key)


Writer = Annotated[WriteRequest, Depends(write_request)]
