"""Consignments: a cooperative's lots aggregated for one order."""

from __future__ import annotations

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.writes import Call, Outcome

MAX_LOTS_PER_CALL = 500


def create(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    min_grade: int = 0,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Open a consignment for one of the cooperative's orders."""
    require_role(actor, Role.COOPERATIVE)
    order_id = validate.id_("order_id", order_id)
    min_grade = validate.uint("min_grade", min_grade, 8)
    parties.require_party(actor, parties.order(runtime, order_id).cooperative, f"order {order_id}")
    call = Call("Traceability", "createConsignment", [order_id, min_grade])
    payload = {"order_id": order_id, "min_grade": min_grade}
    return record(runtime, actor, "consignments.create", payload, [call], idempotency_key)


def _lots_change(
    runtime: Runtime,
    actor: Actor,
    function: str,
    consignment_id: int,
    lot_ids: list[int],
    idempotency_key: str | None,
) -> Outcome:
    require_role(actor, Role.COOPERATIVE)
    consignment_id = validate.id_("consignment_id", consignment_id)
    lot_ids = validate.ids("lot_ids", lot_ids, max_items=MAX_LOTS_PER_CALL)
    owner = parties.consignment_cooperative(runtime, consignment_id)
    parties.require_party(actor, owner, f"consignment {consignment_id}")
    call = Call("Traceability", function, [consignment_id, lot_ids])
    payload = {"consignment_id": consignment_id, "lot_ids": lot_ids}
    return record(runtime, actor, f"consignments.{function}", payload, [call], idempotency_key)


def add_lots(
    runtime: Runtime,
    actor: Actor,
    consignment_id: int,
    lot_ids: list[int],
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Add lots to an open consignment."""
    return _lots_change(runtime, actor, "addLots", consignment_id, lot_ids, idempotency_key)


def remove_lots(
    runtime: Runtime,
    actor: Actor,
    consignment_id: int,
    lot_ids: list[int],
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Take lots out of a consignment before it ships."""
    return _lots_change(runtime, actor, "removeLots", consignment_id, lot_ids, idempotency_key)
