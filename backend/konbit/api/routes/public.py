"""Public trace, no login: the verified history of a lot or a consignment.

What a consumer or auditor sees after scanning a label: where and when the fruit was
harvested, its inspections, its custody from the collection centre to the exporter, and
the sale it went into. No personal data: farmers appear by pseudonymous address only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import Session, col, select

from konbit.api.problems import Problem
from konbit.api.reads import as_json
from konbit.api.schemas import Id
from konbit.api.writes import runtime_of
from konbit.mirror.models import (
    Consignment,
    ConsignmentLot,
    CustodyTransfer,
    Inspection,
    Lot,
    LotSplitRow,
    OrderStatus,
    SaleOrder,
)
from konbit.profiles.models import OrganisationProfile

router = APIRouter(prefix="/trace", tags=["public trace"])


def _organisation(session: Session, address: str | None) -> dict[str, Any] | None:
    if address is None:
        return None
    profile = session.get(OrganisationProfile, address)
    return {"address": address, "name": profile.display_name if profile else None}


def _consignment(session: Session, consignment_id: int) -> dict[str, Any]:
    consignment = session.get(Consignment, consignment_id)
    if consignment is None:
        raise Problem(404, f"no consignment {consignment_id}")
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
        **as_json(consignment),
        "cooperative": _organisation(session, consignment.cooperative),
        "custody": [as_json(c) for c in custody],
        "inspections": [as_json(i) for i in inspections],
        "order": None
        if order is None
        else {
            "order_id": order.order_id,
            "exporter": _organisation(session, order.exporter),
            "status": OrderStatus(order.status).name.lower(),
            "crop": order.crop,
        },
    }


@router.get("/lots/{lot_id}", responses={404: {"description": "No such lot"}})
def trace_lot(lot_id: Id, request: Request) -> dict[str, Any]:
    """A lot's history: harvest, splits, inspections, consignment and custody, sale."""
    with Session(runtime_of(request).engine) as session:
        lot = session.get(Lot, lot_id)
        if lot is None:
            raise Problem(404, f"no lot {lot_id}")
        inspections = session.exec(
            select(Inspection)
            .where(Inspection.lot_id == lot_id)
            .order_by(col(Inspection.block_number), col(Inspection.log_index))
        ).all()
        children = session.exec(
            select(LotSplitRow).where(LotSplitRow.parent_lot_id == lot_id)
        ).all()
        body = {
            **as_json(lot),
            "cooperative": _organisation(session, lot.cooperative),
            "inspections": [as_json(i) for i in inspections],
            "split_into": [c.child_lot_id for c in children],
            "consignment": None,
        }
        if lot.consignment_id is not None:
            body["consignment"] = _consignment(session, lot.consignment_id)
    return body


@router.get(
    "/consignments/{consignment_id}", responses={404: {"description": "No such consignment"}}
)
def trace_consignment(consignment_id: Id, request: Request) -> dict[str, Any]:
    """A consignment: its lots, inspections, custody chain and sale."""
    with Session(runtime_of(request).engine) as session:
        body = _consignment(session, consignment_id)
        lots = session.exec(
            select(Lot)
            .join(ConsignmentLot, col(ConsignmentLot.lot_id) == col(Lot.lot_id))
            .where(ConsignmentLot.consignment_id == consignment_id)
            .order_by(col(Lot.lot_id))
        ).all()
        body["lots"] = [as_json(lot) for lot in lots]
    return body
