"""Harvest lots: recorded by the cooperative for its farmers, one at a time or in batches."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.errors import InvalidInput
from konbit.services.writes import Call, Outcome

MAX_BATCH = 200
MAX_SPLIT = 50


@dataclass(frozen=True)
class LotInput:
    """One farmer's delivery of one crop at one grade on one day (weight in grams)."""

    farmer: str
    crop: int
    grams: int
    grade: int
    harvest_time: int
    plot_geohash: str | None = None
    evidence_hash: str = validate.EMPTY_HASH

    def checked(self, prefix: str = "") -> LotInput:
        return LotInput(
            farmer=validate.address(f"{prefix}farmer", self.farmer),
            crop=validate.uint(f"{prefix}crop", self.crop, 16, minimum=1),
            grams=validate.uint(f"{prefix}grams", self.grams, 64, minimum=1),
            grade=validate.uint(f"{prefix}grade", self.grade, 8),
            harvest_time=validate.uint(f"{prefix}harvest_time", self.harvest_time, 64),
            plot_geohash=None
            if self.plot_geohash is None
            else validate.geohash(f"{prefix}plot_geohash", self.plot_geohash),
            evidence_hash=validate.hash32(f"{prefix}evidence_hash", self.evidence_hash),
        )

    def as_struct(self) -> list[object]:
        return [
            self.farmer,
            self.crop,
            self.grams,
            self.grade,
            self.harvest_time,
            validate.geohash_bytes(self.plot_geohash),
            self.evidence_hash,
        ]


def record_lot(
    runtime: Runtime, actor: Actor, lot: LotInput, *, idempotency_key: str | None = None
) -> Outcome:
    """Record one harvest lot for one of the cooperative's farmers."""
    require_role(actor, Role.COOPERATIVE)
    lot = lot.checked()
    call = Call("Traceability", "recordLot", [lot.as_struct()])
    return record(runtime, actor, "lots.record", asdict(lot), [call], idempotency_key)


def record_lots(
    runtime: Runtime, actor: Actor, lots: list[LotInput], *, idempotency_key: str | None = None
) -> Outcome:
    """Record up to 200 lots in one transaction (cheapest per lot)."""
    require_role(actor, Role.COOPERATIVE)
    if not 1 <= len(lots) <= MAX_BATCH:
        raise InvalidInput(f"lots must hold 1 to {MAX_BATCH} lots", field="lots")
    lots = [lot.checked(f"lots[{i}].") for i, lot in enumerate(lots)]
    call = Call("Traceability", "recordLots", [[lot.as_struct() for lot in lots]])
    payload = {"lots": [asdict(lot) for lot in lots]}
    return record(runtime, actor, "lots.record_batch", payload, [call], idempotency_key)


def split_lot(
    runtime: Runtime,
    actor: Actor,
    lot_id: int,
    parts: list[int],
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Split a lot into lots whose grams sum to the original."""
    require_role(actor, Role.COOPERATIVE)
    lot_id = validate.id_("lot_id", lot_id)
    parts = validate.uints("parts", parts, 64, minimum=1, max_items=MAX_SPLIT)
    if len(parts) < 2:
        raise InvalidInput("parts must hold at least 2 weights", field="parts")
    parties.require_party(actor, parties.lot_cooperative(runtime, lot_id), f"lot {lot_id}")
    call = Call("Traceability", "splitLot", [lot_id, parts])
    payload = {"lot_id": lot_id, "parts": parts}
    return record(runtime, actor, "lots.split", payload, [call], idempotency_key)
