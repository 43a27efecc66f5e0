"""Financiers: offers on advance requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from konbit.api.auth import Actor, require
from konbit.api.models import Role
from konbit.api.reads import After, Limit, Page, as_json, cooperative_history, page, read_page
from konbit.api.routes._write import WRITE_RESPONSES, advance_request_cooperative, write
from konbit.api.schemas import Amount, Id, PositiveAmount, Timestamp, Wait
from konbit.api.writes import Call, runtime_of
from konbit.mirror.models import (
    Advance,
    AdvanceDefault,
    AdvanceOffer,
    AdvanceRepayment,
    AdvanceStatus,
)

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


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/advance-requests", response_model=Page)
def open_requests(request: Request, actor: Financier, after: After = 0, limit: Limit = 50) -> Page:
    """Open advance requests, each with the cooperative's verified history."""
    with Session(runtime_of(request).engine) as session:
        result = page(
            session,
            Advance,
            col(Advance.advance_id),
            [col(Advance.status) == AdvanceStatus.REQUEST_OPEN.value],
            after=after,
            limit=limit,
        )
        for item in result.items:
            item["cooperative_history"] = cooperative_history(session, item["cooperative"])
            offers = session.exec(
                select(AdvanceOffer).where(AdvanceOffer.request_id == item["advance_id"])
            ).all()
            item["offers"] = [as_json(o) for o in offers]
    return result


@router.get("/offers", response_model=Page)
def my_offers(request: Request, actor: Financier, after: After = 0, limit: Limit = 50) -> Page:
    """The financier's offers."""
    return read_page(
        request,
        AdvanceOffer,
        col(AdvanceOffer.offer_id),
        col(AdvanceOffer.financier) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/portfolio", response_model=Page)
def portfolio(request: Request, actor: Financier, after: After = 0, limit: Limit = 50) -> Page:
    """Advances the financier funded, with repayments and defaults."""
    with Session(runtime_of(request).engine) as session:
        result = page(
            session,
            Advance,
            col(Advance.advance_id),
            [col(Advance.financier) == actor.organisation],
            after=after,
            limit=limit,
        )
        for item in result.items:
            repaid = session.exec(
                select(AdvanceRepayment).where(AdvanceRepayment.advance_id == item["advance_id"])
            ).all()
            defaulted = session.exec(
                select(AdvanceDefault).where(AdvanceDefault.advance_id == item["advance_id"])
            ).all()
            item["repayments"] = [as_json(r) for r in repaid]
            item["defaults"] = [as_json(d) for d in defaulted]
    return result
