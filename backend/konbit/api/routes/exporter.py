"""Exporters: purchase orders, escrow funding, delivery confirmation, disputes, receipt."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from konbit.api.auth import Actor, require
from konbit.api.reads import LIST_RESPONSES, After, Limit, Page, read_page, rows_page, session_of
from konbit.api.resources import ConsignmentOut, JobOut, OrderOut, ShipmentOut
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import (
    UINT64,
    Address,
    Body,
    Bps,
    Crop,
    CustodyIn,
    Grade,
    Grams,
    Hash32,
    Id,
    PositiveAmount,
    RefId,
    ReleaseAgentIn,
    Timestamp,
    Whole,
)
from konbit.api.writes import WRITE_RESPONSES, Accepted, Writer, runtime_of
from konbit.mirror.models import Consignment, OrderStatus, SaleOrder, TransportJob
from konbit.roles import Role
from konbit.services import custody, lots, orders, release
from konbit.services.custody import CustodyStep
from konbit.services.orders import OrderInput

router = PrefixRouter(prefix="/exporter", tags=["exporter"])
Exporter = Annotated[Actor, Depends(require(Role.EXPORTER))]


class OrderIn(Body):
    cooperative: Address
    crop: Crop
    grams: Grams
    price_per_kg: PositiveAmount = Field(description="token minor units per kilogram")
    min_grade: Grade = 0
    delivery_deadline: Timestamp
    coop_fee_bps: Bps = 0
    token: Address | None = Field(
        default=None, description="allow-listed stablecoin; default: the local test one"
    )


@router.post("/orders", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES)
async def propose_order(body: OrderIn, actor: Exporter, write: Writer) -> JSONResponse:
    """Propose a purchase order to a cooperative."""
    return await write.run(orders.propose, actor, OrderInput(**body.model_dump()))


@router.post(
    "/orders/{order_id}/fund", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def fund_order(order_id: Id, actor: Exporter, write: Writer) -> JSONResponse:
    """Lock the order's deposit in escrow (approve and fund, simulated as one)."""
    return await write.run(orders.fund, actor, order_id)


class ConfirmIn(Body):
    accepted_grams: Annotated[StrictInt, Whole] = Field(
        ge=0, le=UINT64, description="grams accepted on arrival"
    )
    rejected_lots: list[RefId] = Field(
        default_factory=list, max_length=orders.MAX_REJECTED_LOTS, description="lot ids"
    )


@router.post(
    "/orders/{order_id}/confirm",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def confirm_delivery(
    order_id: Id, body: ConfirmIn, actor: Exporter, write: Writer
) -> JSONResponse:
    """Confirm delivery: the grams accepted and the lots rejected; payment = grams x price."""
    return await write.run(
        orders.confirm_delivery, actor, order_id, body.accepted_grams, body.rejected_lots
    )


class DisputeIn(Body):
    reason_hash: Hash32


@router.post(
    "/orders/{order_id}/dispute",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def dispute(order_id: Id, body: DisputeIn, actor: Exporter, write: Writer) -> JSONResponse:
    """Dispute a delivery within the window."""
    return await write.run(orders.dispute, actor, order_id, body.reason_hash)


@router.post(
    "/orders/{order_id}/cancel",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def cancel_order(order_id: Id, actor: Exporter, write: Writer) -> JSONResponse:
    """Cancel an order before it is funded."""
    return await write.run(orders.cancel, actor, order_id)


@router.post(
    "/orders/{order_id}/refund",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def refund(order_id: Id, actor: Exporter, write: Writer) -> JSONResponse:
    """Take the deposit back after the deadline passed without delivery."""
    return await write.run(orders.refund, actor, order_id)


@router.post(
    "/orders/{order_id}/release-agent",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def propose_release_agent(
    order_id: Id, body: ReleaseAgentIn, actor: Exporter, write: Writer
) -> JSONResponse:
    """Propose a financier as the order's release agent (null: none), before funding; the
    cooperative agrees to the same agent and window."""
    return await write.run(release.propose_agent, actor, order_id, body.agent, body.window_seconds)


@router.post(
    "/orders/{order_id}/release-agent/agree",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def agree_release_agent(
    order_id: Id, body: ReleaseAgentIn, actor: Exporter, write: Writer
) -> JSONResponse:
    """Agree to the release agent (and window) the cooperative proposed."""
    return await write.run(release.agree_agent, actor, order_id, body.agent, body.window_seconds)


class FunderIn(Body):
    financier: Address | None = Field(description="a financier; null: the exporter funds")
    agreement_hash: Hash32 | None = Field(
        default=None, description="hash of the financing agreement (the exporter's obligation)"
    )


@router.post(
    "/orders/{order_id}/funder",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def name_funder(order_id: Id, body: FunderIn, actor: Exporter, write: Writer) -> JSONResponse:
    """Name a financier to fund the order for the exporter; refunds then go to the financier."""
    return await write.run(orders.name_funder, actor, order_id, body.financier, body.agreement_hash)


class PlotOut(BaseModel):
    """A lot's exact plot and its proof: keccak256(salt ++ plot) is the on-chain commitment."""

    lot_id: int
    plot_geohash: str
    salt: str
    commitment: str


@router.get(
    "/lots/{lot_id}/plot",
    response_model=PlotOut,
    responses={k: v for k, v in WRITE_RESPONSES.items() if k in (401, 403, 404, 422)},
)
async def lot_plot(lot_id: Id, actor: Exporter, request: Request) -> PlotOut:
    """The exact plot of a lot whose cooperative disclosed it to this exporter."""
    plot = await run_in_threadpool(lots.disclosed_plot, runtime_of(request), actor, lot_id)
    return PlotOut(**asdict(plot))


@router.post(
    "/consignments/{consignment_id}/receive",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def receive(
    consignment_id: Id, body: CustodyIn, actor: Exporter, write: Writer
) -> JSONResponse:
    """Confirm receipt of a consignment handed to the exporter."""
    step = CustodyStep(body.at, body.geohash, body.evidence_hash)
    return await write.run(custody.confirm_receipt, actor, consignment_id, step)


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/orders", response_model=Page[OrderOut], responses=LIST_RESPONSES)
@on_loop
def list_orders(
    request: Request, actor: Exporter, after: After = 0, limit: Limit = 50
) -> Page[OrderOut]:
    """The exporter's orders, oldest first."""
    return read_page(
        request,
        OrderOut,
        col(SaleOrder.order_id),
        col(SaleOrder.exporter) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/shipments", response_model=Page[ShipmentOut], responses=LIST_RESPONSES)
@on_loop
def waiting_shipments(
    request: Request, actor: Exporter, after: After = 0, limit: Limit = 50
) -> Page[ShipmentOut]:
    """Shipped orders the exporter is waiting for, with the consignment's custody and transport."""
    with session_of(request) as session:
        orders, next_after = rows_page(
            session,
            SaleOrder,
            col(SaleOrder.order_id),
            [
                col(SaleOrder.exporter) == actor.organisation,
                col(SaleOrder.status) == OrderStatus.SHIPPED.value,
            ],
            after=after,
            limit=limit,
        )
        items = []
        for order in orders:
            consignment = (
                session.get(Consignment, order.consignment_id) if order.consignment_id else None
            )
            job = session.exec(
                select(TransportJob)
                .where(TransportJob.consignment_id == order.consignment_id)
                .order_by(col(TransportJob.job_id).desc())
            ).first()
            items.append(
                ShipmentOut.of(
                    order,
                    consignment=ConsignmentOut.of(consignment) if consignment else None,
                    transport=JobOut.of(job) if job else None,
                )
            )
    return Page[ShipmentOut](items=items, next_after=next_after)
