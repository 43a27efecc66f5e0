"""Custody of a consignment: handed over by one party, confirmed by the next."""

from __future__ import annotations

from dataclasses import dataclass

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.writes import Call, Outcome

#: Who may hand over or receive: the cooperative, carriers and the exporter.
CUSTODIANS = (Role.COOPERATIVE, Role.LOGISTICS, Role.EXPORTER)


@dataclass(frozen=True)
class CustodyStep:
    """One step of custody: when, where, and a hash of the evidence (photo, waybill)."""

    at: int
    geohash: str
    evidence_hash: str = validate.EMPTY_HASH

    def checked(self) -> CustodyStep:
        return CustodyStep(
            at=validate.uint("at", self.at, 64),
            geohash=validate.area("geohash", self.geohash),
            evidence_hash=validate.hash32("evidence_hash", self.evidence_hash),
        )

    def args(self) -> list[object]:
        return [self.at, validate.area_bytes(self.geohash), self.evidence_hash]


def hand_over(
    runtime: Runtime,
    actor: Actor,
    consignment_id: int,
    to: str,
    step: CustodyStep,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Hand a consignment to the next custodian (who must confirm receipt)."""
    require_role(actor, *CUSTODIANS)
    consignment_id = validate.id_("consignment_id", consignment_id)
    to = validate.address("to", to)
    step = step.checked()
    owner = parties.consignment_cooperative(runtime, consignment_id)
    if actor.role == Role.COOPERATIVE:
        parties.require_party(actor, owner, f"consignment {consignment_id}")
    call = Call("Traceability", "handOver", [consignment_id, to, *step.args()])
    payload = {"consignment_id": consignment_id, "to": to, **step.__dict__}
    return record(runtime, actor, "custody.hand_over", payload, [call], idempotency_key)


def confirm_receipt(
    runtime: Runtime,
    actor: Actor,
    consignment_id: int,
    step: CustodyStep,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Confirm taking custody of a consignment handed to the actor."""
    require_role(actor, *CUSTODIANS)
    consignment_id = validate.id_("consignment_id", consignment_id)
    step = step.checked()
    parties.consignment_cooperative(runtime, consignment_id)  # NotFound when unknown
    call = Call("Traceability", "confirmReceipt", [consignment_id, *step.args()])
    payload = {"consignment_id": consignment_id, **step.__dict__}
    return record(runtime, actor, "custody.confirm_receipt", payload, [call], idempotency_key)
