"""Who the parties of an order, lot, consignment, job or advance request are.

Read from the mirror by field name; when the mirror has not seen the resource yet (or a
party that can change, a job's carrier, does not match), from the live contract by field
name. Services run off the event loop, so a chain read here never blocks a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from konbit.access.keys import Actor
from konbit.mirror.models import Advance, Consignment, Lot, SaleOrder, TransportJob
from konbit.runtime import Runtime
from konbit.services.errors import Forbidden, NotFound

ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class OrderParties:
    exporter: str
    cooperative: str
    token: str
    deposit: int


@dataclass(frozen=True)
class JobParties:
    cooperative: str
    carrier: str | None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _live(runtime: Runtime, contract: str, function: str, *args: Any) -> dict[str, Any]:
    return runtime.contracts().call_named(contract, function, *args)


def _exists(owner: str, what: str) -> str:
    if owner.lower() == ZERO:
        raise NotFound(f"no {what}")
    return owner


def order(runtime: Runtime, order_id: int) -> OrderParties:
    """The order's exporter, cooperative, token and deposit; NotFound when there is none."""
    with Session(runtime.engine) as session:
        row = session.get(SaleOrder, order_id)
    if row is not None:
        return OrderParties(row.exporter, row.cooperative, row.token, int(row.deposit))
    live = _live(runtime, "SaleEscrow", "getOrder", order_id)
    _exists(live["exporter"], f"order {order_id}")
    return OrderParties(live["exporter"], live["cooperative"], live["token"], live["deposit"])


def job(runtime: Runtime, job_id: int, *, carrier: str | None = None) -> JobParties:
    """A transport job's cooperative and carrier (re-read live when ``carrier`` differs)."""
    with Session(runtime.engine) as session:
        row = session.get(TransportJob, job_id)
    if row is not None and (carrier is None or _same(row.carrier, carrier)):
        return JobParties(row.cooperative, row.carrier)
    live = _live(runtime, "LogisticsMarket", "jobs", job_id)
    _exists(live["cooperative"], f"job {job_id}")
    assigned = None if live["carrier"].lower() == ZERO else live["carrier"]
    return JobParties(live["cooperative"], assigned)


def consignment_cooperative(runtime: Runtime, consignment_id: int) -> str:
    with Session(runtime.engine) as session:
        row = session.get(Consignment, consignment_id)
    if row is not None:
        return row.cooperative
    live = _live(runtime, "Traceability", "consignmentInfo", consignment_id)
    return _exists(live["cooperative"], f"consignment {consignment_id}")


def lot_cooperative(runtime: Runtime, lot_id: int) -> str:
    with Session(runtime.engine) as session:
        row = session.get(Lot, lot_id)
    if row is not None:
        return row.cooperative
    farmer = _exists(_live(runtime, "Traceability", "lots", lot_id)["farmer"], f"lot {lot_id}")
    return str(_live(runtime, "ClusterRegistry", "farmerInfo", farmer)["cooperative"])


def advance_cooperative(runtime: Runtime, advance_id: int) -> str:
    with Session(runtime.engine) as session:
        row = session.get(Advance, advance_id)
    if row is not None:
        return row.cooperative
    live = _live(runtime, "FinanceMarket", "requests", advance_id)
    return _exists(live["cooperative"], f"advance request {advance_id}")


def require_party(actor: Actor, owner: str | None, what: str) -> None:
    """An organisation acts only on its own orders, lots, jobs, offers."""
    if not _same(owner, actor.organisation):
        raise Forbidden(f"{what} belongs to another organisation")
