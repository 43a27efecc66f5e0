"""Harvest lots: recorded by the cooperative for its farmers, one at a time or in batches.

A lot's exact plot never goes on chain. The chain gets the plot's area (the first 5
geohash characters, about 5 km) and ``keccak256(salt ++ plot)``; the plot and the salt stay
here, and the cooperative discloses them to a named buyer, who can check them against the
commitment in the lot's ``LotRecorded`` event (EU deforestation-style due diligence).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from typing import Any

from eth_utils import keccak
from sqlalchemy import insert
from sqlmodel import Session, col, select

from konbit.access.keys import Actor
from konbit.mirror.models import Lot
from konbit.profiles.models import FarmerProfile, LotPlot, PlotDisclosure, utcnow
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import require_role
from konbit.services.errors import Forbidden, InvalidInput, NotFound
from konbit.services.lot_batches import LotRequest
from konbit.services.writes import (
    Call,
    Outcome,
    Write,
    check_idempotency_key,
    earlier_answer,
    perform,
)

MAX_BATCH = 200
MAX_SPLIT = 50
#: Traceability keeps a lot's grams in 40 bits (at most about 1,100 tonnes a lot).
LOT_GRAMS_BITS = 40
ZERO_HASH = "0x" + "00" * 32


@dataclass(frozen=True)
class LotInput:
    """One farmer's delivery of one crop at one grade on one day (weight in grams).

    ``plot_geohash`` is the exact plot (up to 12 characters); without it, the farmer's
    registered plot is used, if there is one.
    """

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
            grams=validate.uint(f"{prefix}grams", self.grams, LOT_GRAMS_BITS, minimum=1),
            grade=validate.uint(f"{prefix}grade", self.grade, 8),
            harvest_time=validate.uint(f"{prefix}harvest_time", self.harvest_time, 64),
            plot_geohash=None
            if self.plot_geohash is None
            else validate.geohash(f"{prefix}plot_geohash", self.plot_geohash),
            evidence_hash=validate.hash32(f"{prefix}evidence_hash", self.evidence_hash),
        )


@dataclass(frozen=True)
class PlotSeal:
    """What goes on chain about a plot, and what opens the commitment (kept off chain)."""

    area: str
    commitment: str
    plot: str | None = None
    salt: str | None = None


def plot_commitment(salt: str, plot: str) -> str:
    """``keccak256(salt ++ plot)``: the 32-byte salt, then the geohash's ASCII bytes."""
    return "0x" + keccak(bytes.fromhex(salt[2:]) + plot.encode("ascii")).hex()


def seal_plot(plot: str | None) -> PlotSeal:
    if plot is None:
        return PlotSeal(area="", commitment=ZERO_HASH)
    salt = "0x" + secrets.token_bytes(32).hex()
    commitment = plot_commitment(salt, plot)
    return PlotSeal(plot[: validate.AREA_CHARS], commitment, plot, salt)


def store_plots(session: Session, cooperative: str, seals: Iterable[PlotSeal]) -> None:
    """The plots' private rows, in ``session``'s transaction: one statement for them all
    (a row object each cost more than sealing the plot, under load)."""
    now = utcnow()
    rows = [
        {
            "commitment": seal.commitment,
            "cooperative": cooperative,
            "plot_geohash": seal.plot,
            "salt": seal.salt,
            "created_at": now,
        }
        for seal in seals
        if seal.plot is not None
    ]
    if rows:
        session.execute(insert(LotPlot), rows)


def lot_struct(lot: LotInput, seal: PlotSeal) -> list[object]:
    return [
        lot.farmer,
        lot.crop,
        lot.grams,
        lot.grade,
        lot.harvest_time,
        validate.area_bytes(seal.area),
        seal.commitment,
        lot.evidence_hash,
    ]


def with_registered_plots(runtime: Runtime, lots: list[LotInput]) -> list[LotInput]:
    """Lots without a plot take their farmer's registered plot."""
    missing = {lot.farmer for lot in lots if lot.plot_geohash is None}
    if not missing:
        return lots
    with Session(runtime.engine) as session:
        plots = dict(
            session.exec(
                select(FarmerProfile.address, FarmerProfile.plot_geohash).where(
                    col(FarmerProfile.address).in_(missing)
                )
            ).all()
        )
    return [
        lot if lot.plot_geohash is not None else replace(lot, plot_geohash=plots.get(lot.farmer))
        for lot in lots
    ]


def _record(
    runtime: Runtime,
    actor: Actor,
    operation: str,
    lots: list[LotInput],
    payload: dict[str, Any],
    idempotency_key: str | None,
) -> Outcome:
    lots = with_registered_plots(runtime, lots)
    seals = [seal_plot(lot.plot_geohash) for lot in lots]
    structs = [lot_struct(lot, seal) for lot, seal in zip(lots, seals, strict=True)]
    call = (
        Call("Traceability", "recordLot", [structs[0]])
        if operation == "lots.record"
        else Call("Traceability", "recordLots", [structs])
    )

    def effects(session: Session) -> dict[str, Any]:
        # Each seal has a salt of its own (seal_plot): its commitment is new, no lookup
        # needed (one was a read per write, ~7% of a web worker's CPU under load).
        store_plots(session, actor.organisation, seals)
        return {}

    write = Write(operation, payload, [call], effects=effects)
    return perform(runtime, actor, write, idempotency_key=idempotency_key)


def record_lot(
    runtime: Runtime,
    actor: Actor,
    lot: LotInput,
    *,
    idempotency_key: str | None = None,
    shared: bool = False,
) -> Outcome:
    """Record one harvest lot for one of the cooperative's farmers.

    ``shared``: the lot may go on chain in one ``recordLots`` with lots other requests
    record at the same moment (:mod:`konbit.services.lot_batches`): the same checks and
    refusals, far less work per lot under load; its transaction's events are then every
    lot's, so a caller that reads its own lot's id from them records it alone.
    """
    if shared:
        return submit_lot(runtime, actor, lot, idempotency_key=idempotency_key).result()
    require_role(actor, Role.COOPERATIVE)
    lot = lot.checked()
    return _record(runtime, actor, "lots.record", [lot], asdict(lot), idempotency_key)


def submit_lot(
    runtime: Runtime, actor: Actor, lot: LotInput, *, idempotency_key: str | None = None
) -> Future[Outcome]:
    """``record_lot(shared=True)`` without waiting: the lot is checked now (raising as
    ``record_lot`` does) and the future gets its outcome once its batch is recorded.
    Without an idempotency key it neither blocks nor reads the database, so an event loop
    may call it."""
    require_role(actor, Role.COOPERATIVE)
    lot = lot.checked()
    payload = asdict(lot)
    first = earlier_answer(runtime, actor, "lots.record", payload, idempotency_key)
    if first is not None:
        done: Future[Outcome] = Future()
        done.set_result(first)
        return done
    key = check_idempotency_key(idempotency_key)
    return runtime.lot_batcher.submit(LotRequest(actor, "lots.record", lot, payload, key))


def record_lots(
    runtime: Runtime, actor: Actor, lots: list[LotInput], *, idempotency_key: str | None = None
) -> Outcome:
    """Record up to 200 lots in one transaction (cheapest per lot)."""
    require_role(actor, Role.COOPERATIVE)
    if not 1 <= len(lots) <= MAX_BATCH:
        raise InvalidInput(f"lots must hold 1 to {MAX_BATCH} lots", field="lots")
    lots = [lot.checked(f"lots[{i}].") for i, lot in enumerate(lots)]
    payload = {"lots": [asdict(lot) for lot in lots]}
    return _record(runtime, actor, "lots.record_batch", lots, payload, idempotency_key)


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
    parts = validate.uints("parts", parts, LOT_GRAMS_BITS, minimum=1, max_items=MAX_SPLIT)
    if len(parts) < 2:
        raise InvalidInput("parts must hold at least 2 weights", field="parts")
    parties.require_party(actor, parties.lot_cooperative(runtime, lot_id), f"lot {lot_id}")
    call = Call("Traceability", "splitLot", [lot_id, parts])
    payload = {"lot_id": lot_id, "parts": parts}
    write = Write("lots.split", payload, [call])
    return perform(runtime, actor, write, idempotency_key=idempotency_key)


# ---- the exact plot, for a named buyer -------------------------------------------------


@dataclass(frozen=True)
class Plot:
    """A lot's exact plot and what proves it: the salt and the on-chain commitment."""

    lot_id: int
    plot_geohash: str
    salt: str
    commitment: str


def _lot_plot(runtime: Runtime, lot_id: int) -> tuple[Lot, LotPlot]:
    with Session(runtime.engine) as session:
        lot = session.get(Lot, lot_id)
        if lot is None:
            raise NotFound(f"no lot {lot_id} (or not mirrored yet)")
        plot = session.get(LotPlot, lot.plot_commitment)
    if plot is None:
        raise NotFound(f"lot {lot_id} was recorded without a plot")
    return lot, plot


def disclose_plot(runtime: Runtime, actor: Actor, lot_id: int, buyer: str) -> Plot:
    """The cooperative lets ``buyer`` (an exporter) read the lot's exact plot."""
    require_role(actor, Role.COOPERATIVE)
    lot_id = validate.id_("lot_id", lot_id)
    buyer = validate.address("buyer", buyer)
    lot, plot = _lot_plot(runtime, lot_id)
    parties.require_party(actor, lot.cooperative, f"lot {lot_id}")
    with Session(runtime.engine) as session:
        if session.get(PlotDisclosure, (lot_id, buyer)) is None:
            session.add(PlotDisclosure(lot_id=lot_id, buyer=buyer, cooperative=lot.cooperative))
            session.commit()
    return Plot(lot_id, plot.plot_geohash, plot.salt, plot.commitment)


def disclosed_plot(runtime: Runtime, actor: Actor, lot_id: int) -> Plot:
    """The exact plot of a lot, for a buyer it was disclosed to (or its cooperative)."""
    lot_id = validate.id_("lot_id", lot_id)
    lot, plot = _lot_plot(runtime, lot_id)
    if actor.organisation.lower() != lot.cooperative.lower():
        with Session(runtime.engine) as session:
            shared = session.get(PlotDisclosure, (lot_id, actor.organisation))
        if shared is None:
            raise Forbidden(f"the plot of lot {lot_id} was not disclosed to {actor.organisation}")
    return Plot(lot_id, plot.plot_geohash, plot.salt, plot.commitment)
