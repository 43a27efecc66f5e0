"""One resource by id, for its parties: orders, lots, consignments, jobs, advance requests.

Any API key may ask; the answer is 404 when the mirror has no such resource, 403 when the
key's organisation is not a party to it, and the operator reads everything. Who the parties
are is read from the mirror's tables (never the chain):

- an order: its exporter and cooperative, any financier with an advance or an offer on it,
  its release agent and the financier named to fund it (or that funded it), the carrier of a
  transport job for it; an arbiter while it is disputed (or after ruling);
- a lot: its cooperative, the parties of an order it is consigned to; any inspector;
- a consignment: its cooperative, the order's exporter, any custodian it had or is offered
  to, the carrier of a job for it; any inspector;
- a transport job: its cooperative, its carrier and the carriers who bid on it; any carrier
  while it is open for bids. A carrier sees only its own bids;
- an advance request: its cooperative and any financier (financiers browse the requests).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from sqlmodel import Session, col, or_, select

from konbit.api.auth import Actor, ActorDep
from konbit.api.problems import Problem
from konbit.api.reads import (
    RECORD_RESPONSES,
    bids_by_job,
    cooperative_history,
    offers_by_advance,
    session_of,
)
from konbit.api.resources import (
    AdvanceRequestOut,
    ConsignmentOut,
    JobWithBidsOut,
    LotOut,
    OrderOut,
)
from konbit.api.routing import ApiRouter, on_loop
from konbit.api.schemas import Id
from konbit.mirror.models import (
    Advance,
    AdvanceOffer,
    Consignment,
    ConsignmentLot,
    CustodyTransfer,
    JobStatus,
    Lien,
    Lot,
    OrderStatus,
    SaleOrder,
    TransportBid,
    TransportJob,
)
from konbit.roles import Role

router = ApiRouter(tags=["records"])


def _addresses(values: Iterable[str | None]) -> set[str]:
    return {v.lower() for v in values if v}


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _check(actor: Actor, parties: set[str], what: str, *, roles: tuple[Role, ...] = ()) -> None:
    """403 unless the actor is the operator, has one of ``roles``, or is one of ``parties``."""
    if actor.role is Role.OPERATOR or actor.role in roles:
        return
    if actor.organisation.lower() not in parties:
        raise Problem(403, f"{what}: the key's organisation is not a party to it")


def order_parties(session: Session, order: SaleOrder) -> set[str]:
    """Exporter, cooperative, financiers with an advance, offer, agency or funding, carriers."""
    order_id = order.order_id
    financiers = session.exec(select(Advance.financier).where(Advance.order_id == order_id)).all()
    offerers = session.exec(
        select(AdvanceOffer.financier).where(AdvanceOffer.order_id == order_id)
    ).all()
    liens = session.exec(select(Lien.financier).where(Lien.order_id == order_id)).all()
    for_order = col(TransportJob.order_id) == order_id
    if order.consignment_id is not None:
        for_order = or_(for_order, col(TransportJob.consignment_id) == order.consignment_id)
    carriers = session.exec(select(TransportJob.carrier).where(for_order)).all()
    return _addresses(
        [
            order.exporter,
            order.cooperative,
            order.carrier,
            order.release_agent,
            order.funding_financier,
            order.funder,
            *financiers,
            *offerers,
            *liens,
            *carriers,
        ]
    )


def lot_parties(session: Session, lot: Lot) -> set[str]:
    """The cooperative, and the parties of every order the lot is (or was last) consigned to."""
    consignment_ids = set(
        session.exec(
            select(ConsignmentLot.consignment_id).where(ConsignmentLot.lot_id == lot.lot_id)
        ).all()
    )
    if lot.consignment_id is not None:
        consignment_ids.add(lot.consignment_id)
    orders = session.exec(
        select(SaleOrder)
        .join(Consignment, col(Consignment.order_id) == col(SaleOrder.order_id))
        .where(col(Consignment.consignment_id).in_(consignment_ids))
    ).all()
    parties = _addresses([lot.cooperative])
    for order in orders:
        parties |= order_parties(session, order)
    return parties


def consignment_parties(session: Session, consignment: Consignment) -> set[str]:
    """Cooperative, the order's exporter, every custodian, the carriers of its jobs."""
    consignment_id = consignment.consignment_id
    exporter = session.exec(
        select(SaleOrder.exporter).where(SaleOrder.order_id == consignment.order_id)
    ).first()
    transfers = session.exec(
        select(CustodyTransfer.from_address, CustodyTransfer.to_address).where(
            CustodyTransfer.consignment_id == consignment_id
        )
    ).all()
    carriers = session.exec(
        select(TransportJob.carrier).where(TransportJob.consignment_id == consignment_id)
    ).all()
    return _addresses(
        [
            consignment.cooperative,
            exporter,
            consignment.custodian,
            consignment.previous_custodian,
            consignment.pending_custodian,
            *(a for pair in transfers for a in pair),
            *carriers,
        ]
    )


@router.get("/orders/{order_id}", response_model=OrderOut, responses=RECORD_RESPONSES)
@on_loop
def get_order(order_id: Id, request: Request, actor: ActorDep) -> OrderOut:
    """A purchase order, for its parties."""
    with session_of(request) as session:
        order = session.get(SaleOrder, order_id)
        if order is None:
            raise Problem(404, f"no order {order_id}")
        parties = order_parties(session, order)
        if order.arbiter is not None:
            parties.add(order.arbiter.lower())
        arbitrating = actor.role is Role.ARBITER and order.status == OrderStatus.DISPUTED.value
        _check(actor, parties, f"order {order_id}", roles=(Role.ARBITER,) if arbitrating else ())
        return OrderOut.of(order)


@router.get("/lots/{lot_id}", response_model=LotOut, responses=RECORD_RESPONSES)
@on_loop
def get_lot(lot_id: Id, request: Request, actor: ActorDep) -> LotOut:
    """A harvest lot, for its cooperative, the parties of its order, and inspectors."""
    with session_of(request) as session:
        lot = session.get(Lot, lot_id)
        if lot is None:
            raise Problem(404, f"no lot {lot_id}")
        _check(actor, lot_parties(session, lot), f"lot {lot_id}", roles=(Role.INSPECTOR,))
        return LotOut.of(lot)


@router.get(
    "/consignments/{consignment_id}", response_model=ConsignmentOut, responses=RECORD_RESPONSES
)
@on_loop
def get_consignment(consignment_id: Id, request: Request, actor: ActorDep) -> ConsignmentOut:
    """A consignment, for its cooperative, exporter, custodians, carriers and inspectors."""
    with session_of(request) as session:
        consignment = session.get(Consignment, consignment_id)
        if consignment is None:
            raise Problem(404, f"no consignment {consignment_id}")
        _check(
            actor,
            consignment_parties(session, consignment),
            f"consignment {consignment_id}",
            roles=(Role.INSPECTOR,),
        )
        return ConsignmentOut.of(consignment)


@router.get("/jobs/{job_id}", response_model=JobWithBidsOut, responses=RECORD_RESPONSES)
@on_loop
def get_job(job_id: Id, request: Request, actor: ActorDep) -> JobWithBidsOut:
    """A transport job with its bids, for its cooperative and carriers.

    The cooperative (and the operator) see every bid; a carrier sees its own.
    """
    with session_of(request) as session:
        job = session.get(TransportJob, job_id)
        if job is None:
            raise Problem(404, f"no job {job_id}")
        bidders = session.exec(
            select(TransportBid.carrier).where(TransportBid.job_id == job_id)
        ).all()
        parties = _addresses([job.cooperative, job.carrier, *bidders])
        browsing = actor.role is Role.LOGISTICS and job.status == JobStatus.OPEN.value
        _check(actor, parties, f"job {job_id}", roles=(Role.LOGISTICS,) if browsing else ())
        sees_all = actor.role is Role.OPERATOR or _same(actor.organisation, job.cooperative)
        bidder = None if sees_all else actor.organisation
        return JobWithBidsOut.of(job, bids=bids_by_job(session, [job_id], carrier=bidder)[job_id])


@router.get(
    "/advance-requests/{advance_id}",
    response_model=AdvanceRequestOut,
    responses=RECORD_RESPONSES,
)
@on_loop
def get_advance_request(advance_id: Id, request: Request, actor: ActorDep) -> AdvanceRequestOut:
    """An advance request (the advance, once funded) with its offers and the cooperative's
    verified history, for the cooperative and financiers."""
    with session_of(request) as session:
        advance = session.get(Advance, advance_id)
        if advance is None:
            raise Problem(404, f"no advance request {advance_id}")
        _check(
            actor,
            _addresses([advance.cooperative]),
            f"advance request {advance_id}",
            roles=(Role.FINANCIER,),
        )
        return AdvanceRequestOut.of(
            advance,
            offers=offers_by_advance(session, [advance_id])[advance_id],
            cooperative_history=cooperative_history(session, advance.cooperative),
        )
