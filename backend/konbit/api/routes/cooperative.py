"""Cooperatives: farmers, lots, consignments, orders, advances, transport, custody."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from konbit.api.auth import Actor, owner_or_403, require
from konbit.api.models import Role
from konbit.api.problems import Problem
from konbit.api.reads import After, Limit, Page, as_json, page, read_page
from konbit.api.routes._write import (
    WRITE_RESPONSES,
    advance_request_cooperative,
    consignment_cooperative,
    custody_call,
    job_parties,
    lot_cooperative,
    order_parties,
    write,
)
from konbit.api.schemas import (
    EMPTY_HASH,
    Address,
    Crop,
    Geohash,
    Grade,
    Grams,
    HandOverIn,
    Hash32,
    Id,
    PositiveAmount,
    Timestamp,
    Wait,
    geohash_bytes,
)
from konbit.api.writes import Call, previous_args, runtime_of
from konbit.mirror.models import (
    Consignment,
    Farmer,
    Lot,
    SaleOrder,
    TransportBid,
    TransportJob,
)
from konbit.profiles.models import FarmerProfile
from konbit.profiles.service import FarmerIn, enrol_farmer_profile, forget_farmer_profile

router = APIRouter(prefix="/cooperative", tags=["cooperative"])
Coop = Annotated[Actor, Depends(require(Role.COOPERATIVE))]


@router.post("/farmers", status_code=202, responses=WRITE_RESPONSES)
async def enrol_farmer(
    body: FarmerIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Enrol a farmer: private profile off chain, a custodial account, membership on chain."""
    runtime = runtime_of(request)
    previous = await run_in_threadpool(previous_args, request, actor)
    farmer = (
        previous[0]
        if previous
        else await run_in_threadpool(
            enrol_farmer_profile, runtime, body, cooperative=actor.organisation
        )
    )
    try:
        return await write(
            request,
            actor,
            [Call("ClusterRegistry", "enrollFarmer", [farmer])],
            wait=wait,
            extra={"farmer": {"address": farmer, "name": body.name}},
        )
    except Problem:
        if not previous:  # nothing was recorded on chain: keep no private data either
            await run_in_threadpool(forget_farmer_profile, runtime, farmer)
        raise


class LotIn(BaseModel):
    farmer: Address
    crop: Crop
    grams: Grams
    grade: Grade
    harvest_time: Timestamp
    plot_geohash: Geohash | None = None
    evidence_hash: Hash32 = EMPTY_HASH

    def as_input(self) -> list[object]:
        return [
            self.farmer,
            self.crop,
            self.grams,
            self.grade,
            self.harvest_time,
            geohash_bytes(self.plot_geohash),
            self.evidence_hash,
        ]


class LotBatchIn(BaseModel):
    lots: list[LotIn] = Field(min_length=1, max_length=200)


@router.post("/lots", status_code=202, responses=WRITE_RESPONSES)
async def record_lot(
    body: LotIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Record one harvest lot for one of the cooperative's farmers."""
    return await write(
        request, actor, [Call("Traceability", "recordLot", [body.as_input()])], wait=wait
    )


@router.post("/lots/batch", status_code=202, responses=WRITE_RESPONSES)
async def record_lots(
    body: LotBatchIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Record up to 200 lots in one transaction (cheapest per lot)."""
    inputs = [lot.as_input() for lot in body.lots]
    return await write(request, actor, [Call("Traceability", "recordLots", [inputs])], wait=wait)


class SplitIn(BaseModel):
    parts: list[Grams] = Field(min_length=2, max_length=50, description="grams of each new lot")


@router.post("/lots/{lot_id}/split", status_code=202, responses=WRITE_RESPONSES)
async def split_lot(
    lot_id: Id, body: SplitIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Split a lot into lots whose grams sum to the original."""
    owner_or_403(actor, lot_cooperative(request, lot_id), f"lot {lot_id}")
    return await write(
        request, actor, [Call("Traceability", "splitLot", [lot_id, body.parts])], wait=wait
    )


@router.post("/orders/{order_id}/accept", status_code=202, responses=WRITE_RESPONSES)
async def accept_order(
    order_id: Id, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Accept an exporter's purchase order."""
    owner_or_403(actor, order_parties(request, order_id)[1], f"order {order_id}")
    return await write(request, actor, [Call("SaleEscrow", "accept", [order_id])], wait=wait)


class ConsignmentIn(BaseModel):
    order_id: int = Field(ge=1)
    min_grade: Grade = 0


@router.post("/consignments", status_code=202, responses=WRITE_RESPONSES)
async def create_consignment(
    body: ConsignmentIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Open a consignment for one of the cooperative's orders."""
    owner_or_403(actor, order_parties(request, body.order_id)[1], f"order {body.order_id}")
    call = Call("Traceability", "createConsignment", [body.order_id, body.min_grade])
    return await write(request, actor, [call], wait=wait)


class LotIdsIn(BaseModel):
    lot_ids: list[int] = Field(min_length=1, max_length=500)


@router.post("/consignments/{consignment_id}/lots", status_code=202, responses=WRITE_RESPONSES)
async def add_lots(
    consignment_id: Id, body: LotIdsIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Add lots to an open consignment."""
    owner_or_403(
        actor, consignment_cooperative(request, consignment_id), f"consignment {consignment_id}"
    )
    call = Call("Traceability", "addLots", [consignment_id, body.lot_ids])
    return await write(request, actor, [call], wait=wait)


@router.post(
    "/consignments/{consignment_id}/lots/remove", status_code=202, responses=WRITE_RESPONSES
)
async def remove_lots(
    consignment_id: Id, body: LotIdsIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Take lots out of a consignment before it ships."""
    owner_or_403(
        actor, consignment_cooperative(request, consignment_id), f"consignment {consignment_id}"
    )
    call = Call("Traceability", "removeLots", [consignment_id, body.lot_ids])
    return await write(request, actor, [call], wait=wait)


class ShipIn(BaseModel):
    consignment_id: int = Field(ge=1)


@router.post("/orders/{order_id}/ship", status_code=202, responses=WRITE_RESPONSES)
async def ship_order(
    order_id: Id, body: ShipIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Mark the order shipped with its consignment (the lots are locked)."""
    owner_or_403(actor, order_parties(request, order_id)[1], f"order {order_id}")
    call = Call("SaleEscrow", "markShipped", [order_id, body.consignment_id])
    return await write(request, actor, [call], wait=wait)


class AdvanceIn(BaseModel):
    amount: PositiveAmount


@router.post("/orders/{order_id}/advance-requests", status_code=202, responses=WRITE_RESPONSES)
async def request_advance(
    order_id: Id, body: AdvanceIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Ask financiers for an advance against a funded order."""
    owner_or_403(actor, order_parties(request, order_id)[1], f"order {order_id}")
    call = Call("FinanceMarket", "requestAdvance", [order_id, body.amount])
    return await write(request, actor, [call], wait=wait)


@router.post("/offers/{offer_id}/accept", status_code=202, responses=WRITE_RESPONSES)
async def accept_offer(
    offer_id: Id, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Accept a financier's offer: its tokens go to the cooperative, the escrow records a lien."""
    return await write(
        request, actor, [Call("FinanceMarket", "acceptOffer", [offer_id])], wait=wait
    )


@router.post("/advance-requests/{request_id}/cancel", status_code=202, responses=WRITE_RESPONSES)
async def cancel_advance_request(
    request_id: Id, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Withdraw an advance request nobody has funded yet."""
    owner_or_403(actor, advance_request_cooperative(request, request_id), f"request {request_id}")
    return await write(
        request, actor, [Call("FinanceMarket", "cancelRequest", [request_id])], wait=wait
    )


class JobIn(BaseModel):
    consignment_id: int = Field(ge=1)
    pickup_geohash: Geohash
    dropoff_geohash: Geohash
    deadline: Timestamp
    max_fee: PositiveAmount


@router.post("/jobs", status_code=202, responses=WRITE_RESPONSES)
async def post_job(body: JobIn, request: Request, actor: Coop, wait: Wait = False) -> JSONResponse:
    """Post a transport job for a consignment."""
    owner_or_403(
        actor,
        consignment_cooperative(request, body.consignment_id),
        f"consignment {body.consignment_id}",
    )
    call = Call(
        "LogisticsMarket",
        "postJob",
        [
            body.consignment_id,
            geohash_bytes(body.pickup_geohash),
            geohash_bytes(body.dropoff_geohash),
            body.deadline,
            body.max_fee,
        ],
    )
    return await write(request, actor, [call], wait=wait)


class AwardIn(BaseModel):
    bid_id: int = Field(ge=1)


@router.post("/jobs/{job_id}/award", status_code=202, responses=WRITE_RESPONSES)
async def award_job(
    job_id: Id, body: AwardIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Award a job to one carrier's bid."""
    owner_or_403(actor, job_parties(request, job_id)[0], f"job {job_id}")
    call = Call("LogisticsMarket", "awardJob", [job_id, body.bid_id])
    return await write(request, actor, [call], wait=wait)


@router.post("/jobs/{job_id}/cancel", status_code=202, responses=WRITE_RESPONSES)
async def cancel_job(job_id: Id, request: Request, actor: Coop, wait: Wait = False) -> JSONResponse:
    """Cancel a job before pickup."""
    owner_or_403(actor, job_parties(request, job_id)[0], f"job {job_id}")
    return await write(request, actor, [Call("LogisticsMarket", "cancelJob", [job_id])], wait=wait)


@router.post("/consignments/{consignment_id}/handover", status_code=202, responses=WRITE_RESPONSES)
async def hand_over(
    consignment_id: Id, body: HandOverIn, request: Request, actor: Coop, wait: Wait = False
) -> JSONResponse:
    """Hand a consignment to the next custodian (who must confirm receipt)."""
    owner_or_403(
        actor, consignment_cooperative(request, consignment_id), f"consignment {consignment_id}"
    )
    return await write(request, actor, [custody_call("handOver", consignment_id, body)], wait=wait)


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/farmers", response_model=Page)
def list_farmers(request: Request, actor: Coop, after: After = 0, limit: Limit = 50) -> Page:
    """The cooperative's farmers: private profile joined to on-chain membership."""
    with Session(runtime_of(request).engine) as session:
        rows = session.exec(
            select(FarmerProfile, Farmer)
            .join(Farmer, col(Farmer.address) == col(FarmerProfile.address), isouter=True)
            .where(FarmerProfile.cooperative == actor.organisation)
            .order_by(col(FarmerProfile.created_at))
            .offset(after)
            .limit(limit + 1)
        ).all()
    items = [
        {
            "address": p.address,
            "name": p.name,
            "phone": p.phone,
            "language": p.language,
            "plot_geohash": p.plot_geohash,
            "enrolled": f is not None,
            "active": bool(f and f.active),
        }
        for p, f in rows[:limit]
    ]
    return Page(items=items, next_after=after + limit if len(rows) > limit else None)


@router.get("/lots", response_model=Page)
def list_lots(request: Request, actor: Coop, after: After = 0, limit: Limit = 50) -> Page:
    """The cooperative's lots, oldest first."""
    return read_page(
        request,
        Lot,
        col(Lot.lot_id),
        col(Lot.cooperative) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/orders", response_model=Page)
def list_orders(request: Request, actor: Coop, after: After = 0, limit: Limit = 50) -> Page:
    """Orders addressed to the cooperative."""
    return read_page(
        request,
        SaleOrder,
        col(SaleOrder.order_id),
        col(SaleOrder.cooperative) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/consignments", response_model=Page)
def list_consignments(request: Request, actor: Coop, after: After = 0, limit: Limit = 50) -> Page:
    """The cooperative's consignments with their custody."""
    return read_page(
        request,
        Consignment,
        col(Consignment.consignment_id),
        col(Consignment.cooperative) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/jobs", response_model=Page)
def list_jobs(request: Request, actor: Coop, after: After = 0, limit: Limit = 50) -> Page:
    """The cooperative's transport jobs, each with its bids."""
    with Session(runtime_of(request).engine) as session:
        result = page(
            session,
            TransportJob,
            col(TransportJob.job_id),
            [col(TransportJob.cooperative) == actor.organisation],
            after=after,
            limit=limit,
        )
        for job in result.items:
            bids = session.exec(
                select(TransportBid).where(TransportBid.job_id == job["job_id"])
            ).all()
            job["bids"] = [as_json(b) for b in bids]
    return result
