"""Exporters: purchase orders, escrow funding, delivery confirmation, disputes, receipt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from konbit.api.auth import Actor, owner_or_403, require
from konbit.api.models import Role
from konbit.api.reads import After, Limit, Page, as_json, page, read_page
from konbit.api.routes._write import (
    WRITE_RESPONSES,
    chain_call,
    consignment_cooperative,
    custody_call,
    order_parties,
    write,
)
from konbit.api.schemas import (
    Address,
    Bps,
    Crop,
    CustodyIn,
    Grade,
    Grams,
    Hash32,
    Id,
    PositiveAmount,
    Timestamp,
    Wait,
)
from konbit.api.writes import Call, runtime_of
from konbit.mirror.models import Consignment, OrderStatus, SaleOrder, TransportJob

router = APIRouter(prefix="/exporter", tags=["exporter"])
Exporter = Annotated[Actor, Depends(require(Role.EXPORTER))]


class OrderIn(BaseModel):
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


@router.post("/orders", status_code=202, responses=WRITE_RESPONSES)
async def propose_order(
    body: OrderIn, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Propose a purchase order to a cooperative."""
    token = body.token or runtime_of(request).contracts().book.address("TestStablecoin")
    call = Call(
        "SaleEscrow",
        "propose",
        [
            body.cooperative,
            token,
            body.crop,
            body.grams,
            body.price_per_kg,
            body.min_grade,
            body.delivery_deadline,
            body.coop_fee_bps,
        ],
    )
    return await write(request, actor, [call], wait=wait)


@router.post("/orders/{order_id}/fund", status_code=202, responses=WRITE_RESPONSES)
async def fund_order(
    order_id: Id, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Lock the order's deposit in escrow (approve, then fund)."""
    owner_or_403(actor, order_parties(request, order_id)[0], f"order {order_id}")
    order = chain_call(request, "SaleEscrow", "getOrder", order_id)
    token, deposit = order[8], order[13]
    escrow = runtime_of(request).contracts().escrow.address
    calls = [
        Call("TestStablecoin", "approve", [escrow, deposit]),
        Call("SaleEscrow", "fund", [order_id]),
    ]
    if token != runtime_of(request).contracts().book.addresses.get("TestStablecoin"):
        from konbit.api.problems import Problem

        raise Problem(
            409, f"order {order_id} is paid in {token}, which this backend cannot approve"
        )
    return await write(request, actor, calls, wait=wait)


class ConfirmIn(BaseModel):
    accepted_grams: int = Field(ge=0, le=2**64 - 1, description="grams accepted on arrival")
    rejected_lots: list[int] = Field(default_factory=list, max_length=1000)


@router.post("/orders/{order_id}/confirm", status_code=202, responses=WRITE_RESPONSES)
async def confirm_delivery(
    order_id: Id, body: ConfirmIn, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Confirm delivery: the grams accepted and the lots rejected; payment = grams x price."""
    owner_or_403(actor, order_parties(request, order_id)[0], f"order {order_id}")
    call = Call(
        "SaleEscrow", "confirmDelivery", [order_id, body.accepted_grams, body.rejected_lots]
    )
    return await write(request, actor, [call], wait=wait)


class DisputeIn(BaseModel):
    reason_hash: Hash32


@router.post("/orders/{order_id}/dispute", status_code=202, responses=WRITE_RESPONSES)
async def dispute(
    order_id: Id, body: DisputeIn, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Dispute a delivery within the window."""
    owner_or_403(actor, order_parties(request, order_id)[0], f"order {order_id}")
    call = Call("SaleEscrow", "dispute", [order_id, body.reason_hash])
    return await write(request, actor, [call], wait=wait)


@router.post("/orders/{order_id}/cancel", status_code=202, responses=WRITE_RESPONSES)
async def cancel_order(
    order_id: Id, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Cancel an order before it is funded."""
    owner_or_403(actor, order_parties(request, order_id)[0], f"order {order_id}")
    return await write(request, actor, [Call("SaleEscrow", "cancel", [order_id])], wait=wait)


@router.post("/orders/{order_id}/refund", status_code=202, responses=WRITE_RESPONSES)
async def refund(
    order_id: Id, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Take the deposit back after the deadline passed without delivery."""
    owner_or_403(actor, order_parties(request, order_id)[0], f"order {order_id}")
    return await write(request, actor, [Call("SaleEscrow", "refund", [order_id])], wait=wait)


@router.post("/consignments/{consignment_id}/receive", status_code=202, responses=WRITE_RESPONSES)
async def receive(
    consignment_id: Id, body: CustodyIn, request: Request, actor: Exporter, wait: Wait = False
) -> JSONResponse:
    """Confirm receipt of a consignment handed to the exporter."""
    consignment_cooperative(request, consignment_id)  # 404 when unknown
    return await write(
        request, actor, [custody_call("confirmReceipt", consignment_id, body)], wait=wait
    )


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/orders", response_model=Page)
def list_orders(request: Request, actor: Exporter, after: After = 0, limit: Limit = 50) -> Page:
    """The exporter's orders, oldest first."""
    return read_page(
        request,
        SaleOrder,
        col(SaleOrder.order_id),
        col(SaleOrder.exporter) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/shipments", response_model=Page)
def waiting_shipments(
    request: Request, actor: Exporter, after: After = 0, limit: Limit = 50
) -> Page:
    """Shipped orders the exporter is waiting for, with the consignment's custody and transport."""
    with Session(runtime_of(request).engine) as session:
        result = page(
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
        for order in result.items:
            consignment = (
                session.get(Consignment, order["consignment_id"])
                if order["consignment_id"]
                else None
            )
            order["consignment"] = as_json(consignment) if consignment else None
            job = session.exec(
                select(TransportJob)
                .where(TransportJob.consignment_id == order["consignment_id"])
                .order_by(col(TransportJob.job_id).desc())
            ).first()
            order["transport"] = as_json(job) if job else None
    return result
