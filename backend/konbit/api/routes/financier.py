"""Financiers: offers on advance requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from konbit.api.auth import Actor, require
from konbit.api.models import Role
from konbit.api.routes._write import WRITE_RESPONSES, advance_request_cooperative, write
from konbit.api.schemas import Amount, Id, PositiveAmount, Timestamp, Wait
from konbit.api.writes import Call, runtime_of

router = APIRouter(prefix="/financier", tags=["financier"])
Financier = Annotated[Actor, Depends(require(Role.FINANCIER))]


class OfferIn(BaseModel):
    amount: PositiveAmount
    fee: Amount
    expiry: Timestamp


@router.post("/advance-requests/{request_id}/offers", status_code=202, responses=WRITE_RESPONSES)
async def make_offer(
    request_id: Id, body: OfferIn, request: Request, actor: Financier, wait: Wait = False
) -> JSONResponse:
    """Offer an advance (amount, fee, expiry); the amount is approved to the market now."""
    advance_request_cooperative(request, request_id)  # 404 when unknown
    finance = runtime_of(request).contracts().finance.address
    calls = [
        Call("TestStablecoin", "approve", [finance, body.amount]),
        Call("FinanceMarket", "makeOffer", [request_id, body.amount, body.fee, body.expiry]),
    ]
    return await write(request, actor, calls, wait=wait)


@router.post("/offers/{offer_id}/withdraw", status_code=202, responses=WRITE_RESPONSES)
async def withdraw_offer(
    offer_id: Id, request: Request, actor: Financier, wait: Wait = False
) -> JSONResponse:
    """Withdraw an offer the cooperative has not accepted."""
    return await write(
        request, actor, [Call("FinanceMarket", "withdrawOffer", [offer_id])], wait=wait
    )
