"""Arbiters: resolve disputed deliveries with a split."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.responses import JSONResponse

from konbit.api.auth import Actor, require
from konbit.api.routing import PrefixRouter
from konbit.api.schemas import Amount, Body, Hash32, Id
from konbit.api.writes import WRITE_RESPONSES, Accepted, Writer
from konbit.roles import Role
from konbit.services import orders

router = PrefixRouter(prefix="/arbiter", tags=["arbiter"])
Arbiter = Annotated[Actor, Depends(require(Role.ARBITER))]


class RulingIn(Body):
    payment: Amount
    ruling_hash: Hash32


@router.post(
    "/orders/{order_id}/resolve",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def resolve(order_id: Id, body: RulingIn, actor: Arbiter, write: Writer) -> JSONResponse:
    """Resolve a dispute: the payment due to the sellers; the rest returns to the exporter."""
    return await write.run(orders.resolve_dispute, actor, order_id, body.payment, body.ruling_hash)
