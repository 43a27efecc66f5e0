"""Inspections: quality and phytosanitary results on lots and consignments."""

from __future__ import annotations

from dataclasses import dataclass

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.errors import InvalidInput
from konbit.services.writes import Call, Outcome


@dataclass(frozen=True)
class InspectionInput:
    passed: bool
    grade: int
    certificate_hash: str

    def args(self) -> list[object]:
        if not isinstance(self.passed, bool):
            raise InvalidInput("passed must be true or false", field="passed")
        return [
            self.passed,
            validate.uint("grade", self.grade, 8),
            validate.hash32("certificate_hash", self.certificate_hash),
        ]


def inspect_lot(
    runtime: Runtime,
    actor: Actor,
    lot_id: int,
    result: InspectionInput,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Record an inspection of one lot; a failed lot is excluded from payouts."""
    require_role(actor, Role.INSPECTOR)
    lot_id = validate.id_("lot_id", lot_id)
    args = result.args()
    parties.lot_cooperative(runtime, lot_id)  # NotFound when unknown
    call = Call("Traceability", "inspectLot", [lot_id, *args])
    payload = {"lot_id": lot_id, "result": args}
    return record(runtime, actor, "inspections.lot", payload, [call], idempotency_key)


def inspect_consignment(
    runtime: Runtime,
    actor: Actor,
    consignment_id: int,
    result: InspectionInput,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Record an inspection of a whole consignment."""
    require_role(actor, Role.INSPECTOR)
    consignment_id = validate.id_("consignment_id", consignment_id)
    args = result.args()
    parties.consignment_cooperative(runtime, consignment_id)
    call = Call("Traceability", "inspectConsignment", [consignment_id, *args])
    payload = {"consignment_id": consignment_id, "result": args}
    return record(runtime, actor, "inspections.consignment", payload, [call], idempotency_key)
