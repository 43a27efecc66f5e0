"""Financiers: offers on advance requests; funding orders for exporters; releasing escrow
as an order's release agent."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool
from sqlmodel import col, or_, select

from konbit.api.auth import Actor, require
from konbit.api.reads import (
    LIST_RESPONSES,
    After,
    Limit,
    Page,
    cooperative_history,
    offers_by_advance,
    read_page,
    rows_page,
    session_of,
)
from konbit.api.resources import (
    AdvanceRequestOut,
    DefaultOut,
    OfferOut,
    OrderOut,
    PortfolioAdvanceOut,
    RepaymentOut,
)
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import Amount, Body, Hash32, Id, PositiveAmount, Timestamp
from konbit.api.writes import WRITE_RESPONSES, Accepted, Writer
from konbit.mirror.models import (
    Advance,
    AdvanceDefault,
    AdvanceOffer,
    AdvanceRepayment,
    AdvanceStatus,
    SaleOrder,
)
from konbit.roles import Role
from konbit.services import finance, orders, release

router = PrefixRouter(prefix="/financier", tags=["financier"])
Financier = Annotated[Actor, Depends(require(Role.FINANCIER))]


class OfferIn(Body):
    amount: PositiveAmount
    fee: Amount
    expiry: Timestamp


@router.post(
    "/advance-requests/{advance_id}/offers",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def make_offer(
    advance_id: Id, body: OfferIn, actor: Financier, write: Writer
) -> JSONResponse:
    """Offer an advance (amount, fee, expiry): approve and offer, simulated as one."""
    return await write.run(
        finance.make_offer, actor, advance_id, body.amount, body.fee, body.expiry
    )


@router.post(
    "/offers/{offer_id}/withdraw",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def withdraw_offer(offer_id: Id, actor: Financier, write: Writer) -> JSONResponse:
    """Withdraw an offer the cooperative has not accepted."""
    return await write.run(finance.withdraw_offer, actor, offer_id)


class FundIn(Body):
    agreement_hash: Hash32 = Field(description="the agreement hash the exporter named")


@router.post(
    "/orders/{order_id}/fund", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def fund_order(order_id: Id, body: FundIn, actor: Financier, write: Writer) -> JSONResponse:
    """Fund an order's escrow for its exporter, who named this financier and the agreement
    (approve and fund, simulated as one); every refund of the order comes back here."""
    return await write.run(orders.fund_for, actor, order_id, body.agreement_hash)


class ReleaseIn(Body):
    documents_hash: Hash32 = Field(
        description="keccak-256 of the presented document hashes, as checked (the order's)"
    )
    waive_dispute_window: StrictBool = Field(
        default=False, description="let settlement start at once; the parties can no longer dispute"
    )


@router.post(
    "/orders/{order_id}/release",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def release_escrow(
    order_id: Id, body: ReleaseIn, actor: Financier, write: Writer
) -> JSONResponse:
    """As the order's release agent, release the escrow against the presented documents."""
    return await write.run(
        release.release, actor, order_id, body.documents_hash, body.waive_dispute_window
    )


class RefuseIn(Body):
    reason_hash: Hash32


@router.post(
    "/orders/{order_id}/refuse",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def refuse_release(
    order_id: Id, body: RefuseIn, actor: Financier, write: Writer
) -> JSONResponse:
    """As the order's release agent, refuse to release: the order goes to the arbiter."""
    return await write.run(release.refuse, actor, order_id, body.reason_hash)


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/orders", response_model=Page[OrderOut], responses=LIST_RESPONSES)
@on_loop
def my_orders(
    request: Request, actor: Financier, after: After = 0, limit: Limit = 50
) -> Page[OrderOut]:
    """Orders the financier is the release agent of, was named to fund, or funded."""
    me = actor.organisation
    return read_page(
        request,
        OrderOut,
        col(SaleOrder.order_id),
        or_(
            col(SaleOrder.release_agent) == me,
            col(SaleOrder.funding_financier) == me,
            col(SaleOrder.funder) == me,
        ),
        after=after,
        limit=limit,
    )


@router.get("/advance-requests", response_model=Page[AdvanceRequestOut], responses=LIST_RESPONSES)
@on_loop
def open_requests(
    request: Request, actor: Financier, after: After = 0, limit: Limit = 50
) -> Page[AdvanceRequestOut]:
    """Open advance requests, each with its offers and the cooperative's verified history."""
    with session_of(request) as session:
        advances, next_after = rows_page(
            session,
            Advance,
            col(Advance.advance_id),
            [col(Advance.status) == AdvanceStatus.REQUEST_OPEN.value],
            after=after,
            limit=limit,
        )
        offers = offers_by_advance(session, [a.advance_id for a in advances])
        histories = {c: cooperative_history(session, c) for c in {a.cooperative for a in advances}}
        items = [
            AdvanceRequestOut.of(
                advance,
                offers=offers[advance.advance_id],
                cooperative_history=histories[advance.cooperative],
            )
            for advance in advances
        ]
    return Page[AdvanceRequestOut](items=items, next_after=next_after)


@router.get("/offers", response_model=Page[OfferOut], responses=LIST_RESPONSES)
@on_loop
def my_offers(
    request: Request, actor: Financier, after: After = 0, limit: Limit = 50
) -> Page[OfferOut]:
    """The financier's offers."""
    return read_page(
        request,
        OfferOut,
        col(AdvanceOffer.offer_id),
        col(AdvanceOffer.financier) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/portfolio", response_model=Page[PortfolioAdvanceOut], responses=LIST_RESPONSES)
@on_loop
def portfolio(
    request: Request, actor: Financier, after: After = 0, limit: Limit = 50
) -> Page[PortfolioAdvanceOut]:
    """Advances the financier funded, with repayments and defaults."""
    with session_of(request) as session:
        advances, next_after = rows_page(
            session,
            Advance,
            col(Advance.advance_id),
            [col(Advance.financier) == actor.organisation],
            after=after,
            limit=limit,
        )
        ids = [a.advance_id for a in advances]
        repayments: dict[int, list[RepaymentOut]] = defaultdict(list)
        for repaid in session.exec(
            select(AdvanceRepayment).where(col(AdvanceRepayment.advance_id).in_(ids))
        ):
            repayments[repaid.advance_id].append(RepaymentOut.of(repaid))
        defaults: dict[int, list[DefaultOut]] = defaultdict(list)
        for default in session.exec(
            select(AdvanceDefault).where(col(AdvanceDefault.advance_id).in_(ids))
        ):
            defaults[default.advance_id].append(DefaultOut.of(default))
        items = [
            PortfolioAdvanceOut.of(
                advance,
                repayments=repayments[advance.advance_id],
                defaults=defaults[advance.advance_id],
            )
            for advance in advances
        ]
    return Page[PortfolioAdvanceOut](items=items, next_after=next_after)
