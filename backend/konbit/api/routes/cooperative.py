"""Cooperatives: farmers, lots, consignments, orders, advances, transport, custody."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import col
from starlette.concurrency import run_in_threadpool

from konbit.api.auth import Actor, require
from konbit.api.reads import (
    LIST_RESPONSES,
    After,
    Limit,
    Page,
    bids_by_job,
    read_page,
    rows_page,
    session_of,
)
from konbit.api.resources import ConsignmentOut, FarmerOut, JobWithBidsOut, LotOut, OrderOut
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import (
    EMPTY_HASH,
    Address,
    Area,
    Body,
    Crop,
    DocumentsIn,
    Geohash,
    Grade,
    HandOverIn,
    Hash32,
    Id,
    LotGrams,
    Phone,
    Polygon,
    PositiveAmount,
    RefId,
    ReleaseAgentIn,
    Timestamp,
    text,
)
from konbit.api.writes import (
    FARMER_RESPONSES,
    WRITE_RESPONSES,
    Accepted,
    FarmerAccepted,
    Writer,
    runtime_of,
)
from konbit.mirror.models import (
    Consignment,
    Farmer,
    Lot,
    SaleOrder,
    TransportJob,
)
from konbit.profiles.models import FarmerProfile
from konbit.roles import Role
from konbit.services import (
    consignments,
    custody,
    farmers,
    finance,
    logistics,
    lots,
    orders,
    release,
)
from konbit.services.custody import CustodyStep
from konbit.services.farmers import FarmerInput
from konbit.services.logistics import JobInput
from konbit.services.lots import LotInput

router = PrefixRouter(prefix="/cooperative", tags=["cooperative"])
Coop = Annotated[Actor, Depends(require(Role.COOPERATIVE))]


class FarmerIn(Body):
    """A farmer's private profile: it stays in SQL; the chain sees only an address."""

    name: str = text(200)
    phone: Phone | None = None
    language: Literal["ht", "fr", "en"] = "ht"
    plot_geohash: Geohash | None = None
    plot_polygon: Polygon | None = Field(default=None, description="GeoJSON Polygon")


@router.post("/farmers", status_code=202, response_model=FarmerAccepted, responses=FARMER_RESPONSES)
async def enrol_farmer(body: FarmerIn, actor: Coop, write: Writer) -> JSONResponse:
    """Enrol a farmer: private profile off chain, a custodial account, membership on chain."""
    return await write.run(farmers.enrol_farmer, actor, FarmerInput(**body.model_dump()))


@router.post(
    "/farmers/{address}/deactivate",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def deactivate_farmer(address: Address, actor: Coop, write: Writer) -> JSONResponse:
    """Deactivate a farmer: no new lots can be recorded for them."""
    return await write.run(farmers.set_active, actor, address, False)


@router.post(
    "/farmers/{address}/reactivate",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def reactivate_farmer(address: Address, actor: Coop, write: Writer) -> JSONResponse:
    """Reactivate a farmer."""
    return await write.run(farmers.set_active, actor, address, True)


class LotIn(Body):
    farmer: Address
    crop: Crop
    grams: LotGrams
    grade: Grade
    harvest_time: Timestamp
    plot_geohash: Geohash | None = Field(
        default=None,
        description="the exact plot (kept off chain; the chain gets its 5-character area and "
        "a salted commitment). Default: the farmer's registered plot",
    )
    evidence_hash: Hash32 = EMPTY_HASH

    def as_input(self) -> LotInput:
        return LotInput(**self.model_dump())


class LotBatchIn(Body):
    lots: list[LotIn] = Field(min_length=1, max_length=lots.MAX_BATCH)


@router.post("/lots", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES)
async def record_lot(body: LotIn, actor: Coop, write: Writer) -> JSONResponse:
    """Record one harvest lot for one of the cooperative's farmers.

    Without `wait`, lots recorded at the same moment may share one transaction
    (`recordLots`): each is still judged alone (its own 409), and its answer names the
    shared transaction. With `wait`, the lot has a transaction of its own, whose events
    give its id; a retry with `wait` of a lot first recorded without it answers the shared
    transaction and that lot's own `LotRecorded` event.
    """
    if write.wait:
        return await write.run(lots.record_lot, actor, body.as_input())
    if write.idempotency_key is None:  # nothing to look up: queued from the event loop
        future = lots.submit_lot(write.runtime, actor, body.as_input())
        return await write.answer(await asyncio.wrap_future(future))
    return await write.run(lots.record_lot, actor, body.as_input(), shared=True, batched=True)


@router.post("/lots/batch", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES)
async def record_lots(body: LotBatchIn, actor: Coop, write: Writer) -> JSONResponse:
    """Record up to 200 lots in one transaction (cheapest per lot)."""
    return await write.run(lots.record_lots, actor, [lot.as_input() for lot in body.lots])


class SplitIn(Body):
    parts: list[LotGrams] = Field(
        min_length=2, max_length=lots.MAX_SPLIT, description="grams of each new lot"
    )


@router.post(
    "/lots/{lot_id}/split", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def split_lot(lot_id: Id, body: SplitIn, actor: Coop, write: Writer) -> JSONResponse:
    """Split a lot into lots whose grams sum to the original."""
    return await write.run(lots.split_lot, actor, lot_id, body.parts)


class DisclosureIn(Body):
    buyer: Address = Field(description="the exporter that may read the exact plot")


class PlotOut(BaseModel):
    """A lot's exact plot and its proof: keccak256(salt ++ plot) is the on-chain commitment."""

    lot_id: int
    plot_geohash: str
    salt: str
    commitment: str


@router.post(
    "/lots/{lot_id}/plot-disclosures",
    status_code=201,
    response_model=PlotOut,
    responses={k: v for k, v in WRITE_RESPONSES.items() if k in (401, 403, 404, 422)},
)
async def disclose_plot(lot_id: Id, body: DisclosureIn, actor: Coop, request: Request) -> PlotOut:
    """Disclose a lot's exact plot to a named buyer (it can then read it and check it)."""
    plot = await run_in_threadpool(
        lots.disclose_plot, runtime_of(request), actor, lot_id, body.buyer
    )
    return PlotOut(**asdict(plot))


@router.post(
    "/orders/{order_id}/accept",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def accept_order(order_id: Id, actor: Coop, write: Writer) -> JSONResponse:
    """Accept an exporter's purchase order."""
    return await write.run(orders.accept, actor, order_id)


class ConsignmentIn(Body):
    order_id: RefId
    min_grade: Grade = 0


@router.post("/consignments", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES)
async def create_consignment(body: ConsignmentIn, actor: Coop, write: Writer) -> JSONResponse:
    """Open a consignment for one of the cooperative's orders."""
    return await write.run(consignments.create, actor, body.order_id, body.min_grade)


class LotIdsIn(Body):
    lot_ids: list[RefId] = Field(min_length=1, max_length=consignments.MAX_LOTS_PER_CALL)


@router.post(
    "/consignments/{consignment_id}/lots",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def add_lots(consignment_id: Id, body: LotIdsIn, actor: Coop, write: Writer) -> JSONResponse:
    """Add lots to an open consignment."""
    return await write.run(consignments.add_lots, actor, consignment_id, body.lot_ids)


@router.post(
    "/consignments/{consignment_id}/lots/remove",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def remove_lots(
    consignment_id: Id, body: LotIdsIn, actor: Coop, write: Writer
) -> JSONResponse:
    """Take lots out of a consignment before it ships."""
    return await write.run(consignments.remove_lots, actor, consignment_id, body.lot_ids)


class ShipIn(Body):
    consignment_id: RefId


@router.post(
    "/orders/{order_id}/ship", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def ship_order(order_id: Id, body: ShipIn, actor: Coop, write: Writer) -> JSONResponse:
    """Mark the order shipped with its consignment (the lots are locked)."""
    return await write.run(orders.ship, actor, order_id, body.consignment_id)


class DisputeIn(Body):
    reason_hash: Hash32


@router.post(
    "/orders/{order_id}/dispute",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def dispute(order_id: Id, body: DisputeIn, actor: Coop, write: Writer) -> JSONResponse:
    """Dispute a delivery within the window (as the exporter may)."""
    return await write.run(orders.dispute, actor, order_id, body.reason_hash)


@router.post(
    "/orders/{order_id}/release-agent",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def propose_release_agent(
    order_id: Id, body: ReleaseAgentIn, actor: Coop, write: Writer
) -> JSONResponse:
    """Propose a financier as the order's release agent (null: none), before funding; the
    exporter agrees to the same agent and window."""
    return await write.run(release.propose_agent, actor, order_id, body.agent, body.window_seconds)


@router.post(
    "/orders/{order_id}/release-agent/agree",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def agree_release_agent(
    order_id: Id, body: ReleaseAgentIn, actor: Coop, write: Writer
) -> JSONResponse:
    """Agree to the release agent (and window) the exporter proposed."""
    return await write.run(release.agree_agent, actor, order_id, body.agent, body.window_seconds)


@router.post(
    "/orders/{order_id}/documents",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def present_documents(
    order_id: Id, body: DocumentsIn, actor: Coop, write: Writer
) -> JSONResponse:
    """Present the shipping documents (hashes) to the order's release agent after delivery."""
    return await write.run(release.present_documents, actor, order_id, body.document_hashes)


class AdvanceIn(Body):
    amount: PositiveAmount


@router.post(
    "/orders/{order_id}/advance-requests",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def request_advance(
    order_id: Id, body: AdvanceIn, actor: Coop, write: Writer
) -> JSONResponse:
    """Ask financiers for an advance against a funded order."""
    return await write.run(finance.request_advance, actor, order_id, body.amount)


@router.post(
    "/offers/{offer_id}/accept", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def accept_offer(offer_id: Id, actor: Coop, write: Writer) -> JSONResponse:
    """Accept a financier's offer: its tokens go to the cooperative, the escrow records a lien."""
    return await write.run(finance.accept_offer, actor, offer_id)


@router.post(
    "/advance-requests/{advance_id}/cancel",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def cancel_advance_request(advance_id: Id, actor: Coop, write: Writer) -> JSONResponse:
    """Withdraw an advance request nobody has funded yet."""
    return await write.run(finance.cancel_request, actor, advance_id)


class JobIn(Body):
    consignment_id: RefId
    pickup_geohash: Area
    dropoff_geohash: Area
    deadline: Timestamp
    max_fee: PositiveAmount


@router.post("/jobs", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES)
async def post_job(body: JobIn, actor: Coop, write: Writer) -> JSONResponse:
    """Post a transport job for a consignment."""
    return await write.run(logistics.post_job, actor, JobInput(**body.model_dump()))


class AwardIn(Body):
    bid_id: RefId


@router.post(
    "/jobs/{job_id}/award", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def award_job(job_id: Id, body: AwardIn, actor: Coop, write: Writer) -> JSONResponse:
    """Award a job to one carrier's bid."""
    return await write.run(logistics.award, actor, job_id, body.bid_id)


@router.post(
    "/jobs/{job_id}/cancel", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES
)
async def cancel_job(job_id: Id, actor: Coop, write: Writer) -> JSONResponse:
    """Cancel a job before pickup."""
    return await write.run(logistics.cancel_job, actor, job_id)


@router.post(
    "/consignments/{consignment_id}/handover",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def hand_over(
    consignment_id: Id, body: HandOverIn, actor: Coop, write: Writer
) -> JSONResponse:
    """Hand a consignment to the next custodian (who must confirm receipt)."""
    step = CustodyStep(body.at, body.geohash, body.evidence_hash)
    return await write.run(custody.hand_over, actor, consignment_id, body.to, step)


# ---- reads (from the mirror) ---------------------------------------------------------


@router.get("/farmers", response_model=Page[FarmerOut], responses=LIST_RESPONSES)
@on_loop
def list_farmers(
    request: Request, actor: Coop, after: After = 0, limit: Limit = 50
) -> Page[FarmerOut]:
    """The cooperative's farmers: private profile joined to on-chain membership.

    Enrolment order; ``after`` counts the farmers already read.
    """
    with session_of(request) as session:
        # Columns, not objects: nothing is written back, and building and tracking the
        # objects cost more than the query.
        rows = session.execute(
            select(
                col(FarmerProfile.address),
                col(FarmerProfile.name),
                col(FarmerProfile.phone),
                col(FarmerProfile.language),
                col(FarmerProfile.plot_geohash),
                col(Farmer.address).is_not(None).label("enrolled"),
                func.coalesce(col(Farmer.active), False).label("active"),
            )
            .join(Farmer, col(Farmer.address) == col(FarmerProfile.address), isouter=True)
            .where(col(FarmerProfile.cooperative) == actor.organisation)
            .order_by(col(FarmerProfile.created_at), col(FarmerProfile.address))
            .offset(after)
            .limit(limit + 1)
        ).all()
    items = [FarmerOut.model_validate(row._mapping) for row in rows[:limit]]
    next_after = after + limit if len(rows) > limit else None
    return Page[FarmerOut](items=items, next_after=next_after)


@router.get("/lots", response_model=Page[LotOut], responses=LIST_RESPONSES)
@on_loop
def list_lots(request: Request, actor: Coop, after: After = 0, limit: Limit = 50) -> Page[LotOut]:
    """The cooperative's lots, oldest first."""
    return read_page(
        request,
        LotOut,
        col(Lot.lot_id),
        col(Lot.cooperative) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/orders", response_model=Page[OrderOut], responses=LIST_RESPONSES)
@on_loop
def list_orders(
    request: Request, actor: Coop, after: After = 0, limit: Limit = 50
) -> Page[OrderOut]:
    """Orders addressed to the cooperative."""
    return read_page(
        request,
        OrderOut,
        col(SaleOrder.order_id),
        col(SaleOrder.cooperative) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/consignments", response_model=Page[ConsignmentOut], responses=LIST_RESPONSES)
@on_loop
def list_consignments(
    request: Request, actor: Coop, after: After = 0, limit: Limit = 50
) -> Page[ConsignmentOut]:
    """The cooperative's consignments with their custody."""
    return read_page(
        request,
        ConsignmentOut,
        col(Consignment.consignment_id),
        col(Consignment.cooperative) == actor.organisation,
        after=after,
        limit=limit,
    )


@router.get("/jobs", response_model=Page[JobWithBidsOut], responses=LIST_RESPONSES)
@on_loop
def list_jobs(
    request: Request, actor: Coop, after: After = 0, limit: Limit = 50
) -> Page[JobWithBidsOut]:
    """The cooperative's transport jobs, each with its bids."""
    with session_of(request) as session:
        jobs, next_after = rows_page(
            session,
            TransportJob,
            col(TransportJob.job_id),
            [col(TransportJob.cooperative) == actor.organisation],
            after=after,
            limit=limit,
        )
        bids = bids_by_job(session, [job.job_id for job in jobs])
        items = [JobWithBidsOut.of(job, bids=bids[job.job_id]) for job in jobs]
    return Page[JobWithBidsOut](items=items, next_after=next_after)
