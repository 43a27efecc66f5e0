"""Carriers (logistics providers): bids, pickup, delivery, custody."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import col

from konbit.api.auth import Actor, require
from konbit.api.reads import LIST_RESPONSES, After, Limit, Page, read_page
from konbit.api.resources import JobOut
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import (
    Body,
    CustodyIn,
    DocumentsIn,
    HandOverIn,
    Id,
    PositiveAmount,
    Timestamp,
)
from konbit.api.writes import WRITE_RESPONSES, Accepted, Writer
from konbit.mirror.models import JobStatus, TransportJob
from konbit.roles import Role
from konbit.services import custody, logistics, release
from konbit.services.custody import CustodyStep

router = PrefixRouter(prefix="/carrier", tags=["carrier"])
Carrier = Annotated[Actor, Depends(require(Role.LOGISTICS))]


class BidIn(Body):
    fee: PositiveAmount
    eta: Timestamp


@router.post(
    "/jobs/{job_id}/bids", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def place_bid(job_id: Id, body: BidIn, actor: Carrier, write: Writer) -> JSONResponse:
    """Bid on an open transport job: a fee and an estimated arrival time."""
    return await write.run(logistics.place_bid, actor, job_id, body.fee, body.eta)


@router.post(
    "/orders/{order_id}/documents",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def present_documents(
    order_id: Id, body: DocumentsIn, actor: Carrier, write: Writer
) -> JSONResponse:
    """Present the shipping documents (hashes) to the release agent of an order the carrier
    transports (the carrier the order's waterfall pays)."""
    return await write.run(release.present_documents, actor, order_id, body.document_hashes)


@router.post(
    "/bids/{bid_id}/withdraw", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def withdraw_bid(bid_id: Id, actor: Carrier, write: Writer) -> JSONResponse:
    """Withdraw a bid that was not awarded."""
    return await write.run(logistics.withdraw_bid, actor, bid_id)


@router.post(
    "/consignments/{consignment_id}/receive",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def receive(
    consignment_id: Id, body: CustodyIn, actor: Carrier, write: Writer
) -> JSONResponse:
    """Confirm taking custody of a consignment (at pickup)."""
    step = CustodyStep(body.at, body.geohash, body.evidence_hash)
    return await write.run(custody.confirm_receipt, actor, consignment_id, step)


@router.post(
    "/consignments/{consignment_id}/handover",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def hand_over(
    consignment_id: Id, body: HandOverIn, actor: Carrier, write: Writer
) -> JSONResponse:
    """Hand the consignment on at the drop-off (the exporter confirms receipt)."""
    step = CustodyStep(body.at, body.geohash, body.evidence_hash)
    return await write.run(custody.hand_over, actor, consignment_id, body.to, step)


@router.post(
    "/jobs/{job_id}/pickup", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def pickup(job_id: Id, actor: Carrier, write: Writer) -> JSONResponse:
    """Record the pickup of an awarded job (the carrier must hold custody)."""
    return await write.run(logistics.pickup, actor, job_id)


@router.post(
    "/jobs/{job_id}/delivery", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def delivery(job_id: Id, actor: Carrier, write: Writer) -> JSONResponse:
    """Record delivery once custody passed on from the carrier."""
    return await write.run(logistics.delivery, actor, job_id)


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/jobs", response_model=Page[JobOut], responses=LIST_RESPONSES)
@on_loop
def open_jobs(
    request: Request, actor: Carrier, after: After = 0, limit: Limit = 50
) -> Page[JobOut]:
    """Jobs open for bids."""
    return read_page(
        request,
        JobOut,
        col(TransportJob.job_id),
        col(TransportJob.status) == JobStatus.OPEN.value,
        after=after,
        limit=limit,
    )


@router.get("/jobs/mine", response_model=Page[JobOut], responses=LIST_RESPONSES)
@on_loop
def my_jobs(request: Request, actor: Carrier, after: After = 0, limit: Limit = 50) -> Page[JobOut]:
    """Jobs awarded to this carrier."""
    return read_page(
        request,
        JobOut,
        col(TransportJob.job_id),
        col(TransportJob.carrier) == actor.organisation,
        after=after,
        limit=limit,
    )
