"""Reads from the mirror: paginated rows as JSON, with status codes named.

Reads never touch the chain: the mirror is the read model (principle 1). Amounts and
grams are integers (token minor units, grams), exactly as on chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from konbit.mirror.models import (
    AdvanceDefault,
    AdvanceRepayment,
    AdvanceStatus,
    ConsignmentStatus,
    InspectionResult,
    JobStatus,
    LotStatus,
    OfferStatus,
    OrderStatus,
    SaleOrder,
    TransportJob,
)

Limit = Annotated[int, Query(ge=1, le=200, description="rows per page")]
After = Annotated[int, Query(ge=0, le=2**63 - 1, description="the last id of the previous page")]

#: Integer status columns and the enum that names them, per table.
STATUS_NAMES: dict[str, dict[str, type[IntEnum]]] = {
    "lot": {"status": LotStatus, "inspection": InspectionResult},
    "consignment": {"status": ConsignmentStatus},
    "sale_order": {"status": OrderStatus},
    "transport_job": {"status": JobStatus},
    "advance": {"status": AdvanceStatus},
    "advance_offer": {"status": OfferStatus},
}


class Page(BaseModel):
    """One page of rows; pass ``next_after`` as ``after`` for the next one."""

    items: list[dict[str, Any]]
    next_after: int | None


def as_json(row: SQLModel) -> dict[str, Any]:
    data = row.model_dump()
    table = str(getattr(row, "__tablename__", ""))
    for column, enum in STATUS_NAMES.get(table, {}).items():
        value = data.get(column)
        if isinstance(value, int) and value in enum._value2member_map_:
            data[column] = enum(value).name.lower()
    for key in ("created_at", "updated_at"):
        data.pop(key, None)
    return data


def page(
    session: Session,
    model: type[SQLModel],
    key: Any,
    filters: Sequence[ColumnElement[bool]],
    *,
    after: int,
    limit: int,
) -> Page:
    """Keyset pagination on an integer key, ascending."""
    query = select(model).where(key > after)
    for condition in filters:
        query = query.where(condition)
    rows = session.exec(query.order_by(key).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = getattr(rows[-1], key.key) if rows and more else None
    return Page(items=[as_json(r) for r in rows], next_after=last)


def read_page(
    request: Request,
    model: type[SQLModel],
    key: Any,
    *filters: ColumnElement[bool],
    after: int,
    limit: int,
) -> Page:
    """:func:`page` in a session of its own, for endpoints that list one table."""
    engine: Engine = request.app.state.engine
    with Session(engine) as session:
        return page(session, model, key, filters, after=after, limit=limit)


def cooperative_history(session: Session, cooperative: str) -> dict[str, Any]:
    """What later lenders read: deliveries, on-time transport, advances repaid or defaulted."""
    delivered_states = [
        s.value
        for s in (
            OrderStatus.DELIVERED,
            OrderStatus.RESOLVED,
            OrderStatus.SETTLING,
            OrderStatus.SETTLED,
        )
    ]
    delivered = session.exec(
        select(func.count())
        .select_from(SaleOrder)
        .where(SaleOrder.cooperative == cooperative)
        .where(col(SaleOrder.status).in_(delivered_states))
    ).one()
    jobs = session.exec(
        select(TransportJob.on_time)
        .where(TransportJob.cooperative == cooperative)
        .where(TransportJob.status == JobStatus.DELIVERED.value)
    ).all()
    repaid = session.exec(
        select(func.count())
        .select_from(AdvanceRepayment)
        .where(AdvanceRepayment.cooperative == cooperative)
    ).one()
    defaulted = session.exec(
        select(func.count())
        .select_from(AdvanceDefault)
        .where(AdvanceDefault.cooperative == cooperative)
    ).one()
    return {
        "orders_delivered": delivered,
        "deliveries": len(jobs),
        "on_time_rate_bps": (sum(1 for j in jobs if j) * 10_000 // len(jobs)) if jobs else None,
        "advances_repaid": repaid,
        "advances_defaulted": defaulted,
    }
