"""Carriers (logistics providers): bids, pickup, delivery, custody."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import col

from konbit.api.auth import Actor, owner_or_403, require
from konbit.api.models import Role
from konbit.api.reads import After, Limit, Page, read_page
from konbit.api.routes._write import (
    WRITE_RESPONSES,
    consignment_cooperative,
    custody_call,
    job_parties,
    write,
)
from konbit.api.schemas import (
    CustodyIn,
    HandOverIn,
    Id,
    PositiveAmount,
    Timestamp,
    Wait,
)
from konbit.api.writes import Call
from konbit.mirror.models import JobStatus, TransportJob

router = APIRouter(prefix="/carrier", tags=["carrier"])
Carrier = Annotated[Actor, Depends(require(Role.LOGISTICS))]


class BidIn(BaseModel):
    fee: PositiveAmount
    eta: Timestamp


@router.post("/jobs/{job_id}/bids", status_code=202, responses=WRITE_RESPONSES)
async def place_bid(
    job_id: Id, body: BidIn, request: Request, actor: Carrier, wait: Wait = False
) -> JSONResponse:
    """Bid on an open transport job: a fee and an estimated arrival time."""
    job_parties(request, job_id)  # 404 when unknown
    call = Call("LogisticsMarket", "placeBid", [job_id, body.fee, body.eta])
    return await write(request, actor, [call], wait=wait)


@router.post("/bids/{bid_id}/withdraw", status_code=202, responses=WRITE_RESPONSES)
async def withdraw_bid(
    bid_id: Id, request: Request, actor: Carrier, wait: Wait = False
) -> JSONResponse:
    """Withdraw a bid that was not awarded."""
    return await write(
        request, actor, [Call("LogisticsMarket", "withdrawBid", [bid_id])], wait=wait
    )


@router.post("/consignments/{consignment_id}/receive", status_code=202, responses=WRITE_RESPONSES)
async def receive(
    consignment_id: Id, body: CustodyIn, request: Request, actor: Carrier, wait: Wait = False
) -> JSONResponse:
    """Confirm taking custody of a consignment (at pickup)."""
    consignment_cooperative(request, consignment_id)
    return await write(
        request, actor, [custody_call("confirmReceipt", consignment_id, body)], wait=wait
    )


@router.post("/consignments/{consignment_id}/handover", status_code=202, responses=WRITE_RESPONSES)
async def hand_over(
    consignment_id: Id, body: HandOverIn, request: Request, actor: Carrier, wait: Wait = False
) -> JSONResponse:
    """Hand the consignment on at the drop-off (the exporter confirms receipt)."""
    consignment_cooperative(request, consignment_id)
    return await write(request, actor, [custody_call("handOver", consignment_id, body)], wait=wait)


@router.post("/jobs/{job_id}/pickup", status_code=202, responses=WRITE_RESPONSES)
async def pickup(job_id: Id, request: Request, actor: Carrier, wait: Wait = False) -> JSONResponse:
    """Record the pickup of an awarded job (the carrier must hold custody)."""
    owner_or_403(actor, job_parties(request, job_id)[1], f"job {job_id}")
    return await write(
        request, actor, [Call("LogisticsMarket", "recordPickup", [job_id])], wait=wait
    )


@router.post("/jobs/{job_id}/delivery", status_code=202, responses=WRITE_RESPONSES)
async def delivery(
    job_id: Id, request: Request, actor: Carrier, wait: Wait = False
) -> JSONResponse:
    """Record delivery once custody passed on from the carrier."""
    owner_or_403(actor, job_parties(request, job_id)[1], f"job {job_id}")
    return await write(
        request, actor, [Call("LogisticsMarket", "recordDelivery", [job_id])], wait=wait
    )


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/jobs", response_model=Page)
def open_jobs(request: Request, actor: Carrier, after: After = 0, limit: Limit = 50) -> Page:
    """Jobs open for bids."""
    return read_page(
        request,
        TransportJob,
        col(TransportJob.job_id),
        col(TransportJob.status) == JobStatus.OPEN.value,
        after=after,
        limit=limit,
    )


@router.get("/jobs/mine", response_model=Page)
def my_jobs(request: Request, actor: Carrier, after: After = 0, limit: Limit = 50) -> Page:
    """Jobs awarded to this carrier."""
    return read_page(
        request,
        TransportJob,
        col(TransportJob.job_id),
        col(TransportJob.carrier) == actor.organisation,
        after=after,
        limit=limit,
    )
