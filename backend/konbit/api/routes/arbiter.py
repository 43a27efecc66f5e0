"""Arbiters: resolve disputed deliveries with a split."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from konbit.api.auth import Actor, require
from konbit.api.models import Role
from konbit.api.routes._write import WRITE_RESPONSES, order_parties, write
from konbit.api.schemas import Amount, Hash32, Id, Wait
from konbit.api.writes import Call

router = APIRouter(prefix="/arbiter", tags=["arbiter"])
Arbiter = Annotated[Actor, Depends(require(Role.ARBITER))]


class RulingIn(BaseModel):
    payment: Amount
    ruling_hash: Hash32


@router.post("/orders/{order_id}/resolve", status_code=202, responses=WRITE_RESPONSES)
async def resolve(
    order_id: Id, body: RulingIn, request: Request, actor: Arbiter, wait: Wait = False
) -> JSONResponse:
    """Resolve a dispute: the payment due to the sellers; the rest returns to the exporter."""
    order_parties(request, order_id)
    call = Call("SaleEscrow", "resolveDispute", [order_id, body.payment, body.ruling_hash])
    return await write(request, actor, [call], wait=wait)
