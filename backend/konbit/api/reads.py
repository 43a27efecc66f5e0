"""Reads from the mirror: pages of typed resources, status codes named.

Reads never touch the chain: the mirror is the read model (principle 1). Amounts and
grams are integers (token minor units, grams), exactly as on chain; what each resource
reads as is in :mod:`konbit.api.resources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from konbit.api.resources import BidOut, CooperativeHistory, OfferOut, Row
from konbit.mirror.models import (
    AdvanceDefault,
    AdvanceOffer,
    AdvanceRepayment,
    JobStatus,
    OrderStatus,
    SaleOrder,
    TransportBid,
    TransportJob,
)

Limit = Annotated[int, Query(ge=1, le=200, description="rows per page")]
After = Annotated[int, Query(ge=0, le=2**63 - 1, description="the last id of the previous page")]

T = TypeVar("T")
M = TypeVar("M", bound=SQLModel)
R = TypeVar("R", bound=Row)

#: ``responses=`` of a read without parameters that needs a key of one role.
ROLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown API key"},
    403: {"description": "Another role's endpoint"},
}
#: ``responses=`` of a list read (``after``, ``limit``) that needs a key of one role.
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ROLE_RESPONSES,
    422: {"description": "Invalid parameter (each named)"},
}
#: ``responses=`` of a read of one resource by id, for its parties.
RECORD_RESPONSES: dict[int | str, dict[str, Any]] = {
    **LIST_RESPONSES,
    403: {"description": "The caller's organisation is not a party to it"},
    404: {"description": "No such resource"},
}
#: ``responses=`` of a public read of one resource by id.
PUBLIC_RECORD_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such resource"},
    422: {"description": "Invalid parameter"},
}


class Page(BaseModel, Generic[T]):
    """One page of rows; pass ``next_after`` as ``after`` for the next one."""

    items: list[T]
    next_after: int | None = Field(description="null on the last page")


def rows_page(
    session: Session,
    model: type[M],
    key: Any,
    filters: Sequence[ColumnElement[bool]],
    *,
    after: int,
    limit: int,
) -> tuple[Sequence[M], int | None]:
    """Keyset pagination on an integer key, ascending: the rows and the next ``after``."""
    query = _keyset(select(model), key, filters, after=after, limit=limit)
    return _page(session.exec(query).all(), key, limit)


def column_rows_page(
    session: Session,
    model: type[SQLModel],
    columns: Sequence[str],
    key: Any,
    filters: Sequence[ColumnElement[bool]],
    *,
    after: int,
    limit: int,
) -> tuple[Sequence[Any], int | None]:
    """:func:`rows_page` as plain rows of ``columns`` (and the key): no ORM objects to
    build and track, for pages answered as they are read."""
    table = model.__table__  # type: ignore[attr-defined]
    wanted = [table.c[name] for name in dict.fromkeys([*columns, key.key])]
    query = _keyset(sa_select(*wanted), key, filters, after=after, limit=limit)
    return _page(session.connection().execute(query).all(), key, limit)


def _keyset(
    query: Any, key: Any, filters: Sequence[ColumnElement[bool]], *, after: int, limit: int
) -> Any:
    """``query`` past ``after`` on ``key``, filtered, in key order, one row more than a page
    (to tell whether there is a next one)."""
    query = query.where(key > after)
    for condition in filters:
        query = query.where(condition)
    return query.order_by(key).limit(limit + 1)


def _page(rows: Sequence[T], key: Any, limit: int) -> tuple[Sequence[T], int | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    last = getattr(rows[-1], key.key) if rows and more else None
    return rows, last


def read_page(
    request: Request,
    out: type[R],
    key: Any,
    *filters: ColumnElement[bool],
    after: int,
    limit: int,
) -> Page[R]:
    """One page of ``out``'s table, read as ``out``, for endpoints that list one table."""
    table = out.table_model
    assert table is not None, f"{out.__name__} reads no table"
    with session_of(request) as session:
        rows, next_after = column_rows_page(
            session, table, out.table_columns, key, filters, after=after, limit=limit
        )
    return Page[out](items=out.of_rows(rows), next_after=next_after)  # type: ignore[valid-type]


def cooperative_history(session: Session, cooperative: str) -> CooperativeHistory:
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
    return CooperativeHistory(
        orders_delivered=delivered,
        deliveries=len(jobs),
        on_time_rate_bps=(sum(1 for j in jobs if j) * 10_000 // len(jobs)) if jobs else None,
        advances_repaid=repaid,
        advances_defaulted=defaulted,
    )


def session_of(request: Request) -> Session:
    """A session on the app's database (the mirror and the API's own tables)."""
    engine: Engine = request.app.state.engine
    return Session(engine)


def bids_by_job(
    session: Session, job_ids: Sequence[int], *, carrier: str | None = None
) -> dict[int, list[BidOut]]:
    """The bids on each of ``job_ids`` (only ``carrier``'s if given), oldest first.

    One query for a whole page of jobs.
    """
    found: dict[int, list[BidOut]] = {job_id: [] for job_id in job_ids}
    if job_ids:
        bids = session.exec(
            select(TransportBid)
            .where(col(TransportBid.job_id).in_(job_ids))
            .order_by(col(TransportBid.bid_id))
        ).all()
        for bid in bids:
            if carrier is None or bid.carrier.lower() == carrier.lower():
                found[bid.job_id].append(BidOut.of(bid))
    return found


def offers_by_advance(session: Session, advance_ids: Sequence[int]) -> dict[int, list[OfferOut]]:
    """The offers on each advance request of ``advance_ids``, oldest first."""
    found: dict[int, list[OfferOut]] = {advance_id: [] for advance_id in advance_ids}
    if advance_ids:
        offers = session.exec(
            select(AdvanceOffer)
            .where(col(AdvanceOffer.request_id).in_(advance_ids))
            .order_by(col(AdvanceOffer.offer_id))
        ).all()
        for offer in offers:
            found[offer.request_id].append(OfferOut.of(offer))
    return found
