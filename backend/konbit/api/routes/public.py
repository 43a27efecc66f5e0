"""Public trace, no login: the verified history of a lot or a consignment.

What a consumer or auditor sees after scanning a label: where and when the fruit was
harvested, its inspections, its custody from the collection centre to the exporter, and
the sale it went into. No personal data: farmers appear by pseudonymous address only.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from konbit.api.problems import Problem
from konbit.api.reads import PUBLIC_RECORD_RESPONSES, session_of
from konbit.api.resources import (
    ConsignmentTrace,
    ConsignmentTraceWithLots,
    CustodyTransferOut,
    InspectionOut,
    LotOut,
    LotTrace,
    Party,
    TraceOrder,
)
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import Id
from konbit.mirror.models import (
    Consignment,
    ConsignmentLot,
    CustodyTransfer,
    Inspection,
    Lot,
    LotSplitRow,
    SaleOrder,
)
from konbit.profiles.models import OrganisationProfile

router = PrefixRouter(prefix="/trace", tags=["public trace"])


def _party(session: Session, address: str) -> Party:
    name = session.exec(
        select(OrganisationProfile.display_name).where(OrganisationProfile.address == address)
    ).first()
    return Party(address=address, name=name)


def _consignment(session: Session, consignment: Consignment) -> dict[str, object]:
    """The fields of a consignment's trace beyond its own columns."""
    consignment_id = consignment.consignment_id
    custody = session.exec(
        select(CustodyTransfer)
        .where(CustodyTransfer.consignment_id == consignment_id)
        .order_by(col(CustodyTransfer.block_number), col(CustodyTransfer.log_index))
    ).all()
    inspections = session.exec(
        select(Inspection)
        .where(Inspection.consignment_id == consignment_id)
        .order_by(col(Inspection.block_number), col(Inspection.log_index))
    ).all()
    order = session.get(SaleOrder, consignment.order_id)
    return {
        "cooperative": _party(session, consignment.cooperative),
        "custody": [CustodyTransferOut.of(c) for c in custody],
        "inspections": [InspectionOut.of(i) for i in inspections],
        "order": None
        if order is None
        else TraceOrder.of(order, exporter=_party(session, order.exporter)),
    }


@router.get("/lots/{lot_id}", response_model=LotTrace, responses=PUBLIC_RECORD_RESPONSES)
@on_loop
def trace_lot(lot_id: Id, request: Request) -> LotTrace:
    """A lot's history: harvest, splits, inspections, consignment and custody, sale."""
    with session_of(request) as session:
        # Rows of columns, not ORM objects, for the lot's own parts: nothing is written
        # back, and this is the page every scanned label asks for.
        connection = session.connection()
        lots, inspections = Lot.__table__, Inspection.__table__  # type: ignore[attr-defined]
        lot = connection.execute(sa_select(lots).where(lots.c.lot_id == lot_id)).first()
        if lot is None:
            raise Problem(404, f"no lot {lot_id}")
        inspected = connection.execute(
            sa_select(inspections)
            .where(inspections.c.lot_id == lot_id)
            .order_by(inspections.c.block_number, inspections.c.log_index)
        ).all()
        children = session.exec(
            select(LotSplitRow.child_lot_id)
            .where(LotSplitRow.parent_lot_id == lot_id)
            .order_by(col(LotSplitRow.child_lot_id))
        ).all()
        consignment = session.get(Consignment, lot.consignment_id) if lot.consignment_id else None
        trace = LotTrace.of(
            lot,
            cooperative=_party(session, lot.cooperative),
            inspections=[InspectionOut.of(i) for i in inspected],
            split_into=list(children),
            consignment=None
            if consignment is None
            else ConsignmentTrace.of(consignment, **_consignment(session, consignment)),
        )
    return trace


@router.get(
    "/consignments/{consignment_id}",
    response_model=ConsignmentTraceWithLots,
    responses=PUBLIC_RECORD_RESPONSES,
)
@on_loop
def trace_consignment(consignment_id: Id, request: Request) -> ConsignmentTraceWithLots:
    """A consignment: its lots, inspections, custody chain and sale."""
    with session_of(request) as session:
        consignment = session.get(Consignment, consignment_id)
        if consignment is None:
            raise Problem(404, f"no consignment {consignment_id}")
        lots = session.exec(
            select(Lot)
            .join(ConsignmentLot, col(ConsignmentLot.lot_id) == col(Lot.lot_id))
            .where(ConsignmentLot.consignment_id == consignment_id)
            .order_by(col(Lot.lot_id))
        ).all()
        trace = ConsignmentTraceWithLots.of(
            consignment,
            **_consignment(session, consignment),
            lots=[LotOut.of(lot) for lot in lots],
        )
    return trace
