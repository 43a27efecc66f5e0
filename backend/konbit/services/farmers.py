"""Farmers: a private profile off chain, a custodial account, membership on chain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from konbit.access.keys import Actor
from konbit.profiles.models import FarmerProfile, Language
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import validate
from konbit.services.common import require_role
from konbit.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from konbit.services.writes import Call, Outcome, Write, earlier_answer, perform


@dataclass(frozen=True)
class FarmerInput:
    """Who the farmer is; it stays in SQL: the chain sees only an address."""

    name: str
    phone: str | None = None
    language: str = Language.HAITIAN_CREOLE.value
    plot_geohash: str | None = None
    #: GeoJSON Polygon of the plot, already checked by the channel.
    plot_polygon: dict[str, Any] | None = None


def enrol_farmer(
    runtime: Runtime, actor: Actor, farmer: FarmerInput, *, idempotency_key: str | None = None
) -> Outcome:
    """Enrol a farmer of the acting cooperative."""
    require_role(actor, Role.COOPERATIVE)
    name = validate.text("name", farmer.name, max_length=200)
    phone = None if farmer.phone is None else validate.phone("phone", farmer.phone)
    if farmer.language not in {lang.value for lang in Language}:
        raise InvalidInput("language must be ht, fr or en", field="language")
    plot = (
        None
        if farmer.plot_geohash is None
        else validate.geohash("plot_geohash", farmer.plot_geohash)
    )
    payload = {
        "name": name,
        "phone": phone,
        "language": farmer.language,
        "plot_geohash": plot,
        "plot_polygon": farmer.plot_polygon,
    }
    first = earlier_answer(runtime, actor, "farmers.enrol", payload, idempotency_key)
    if first is not None:
        return first
    if phone is not None:
        with Session(runtime.engine) as session:
            taken = session.exec(
                select(FarmerProfile.address).where(FarmerProfile.phone == phone)
            ).first()
        if taken is not None:
            raise Conflict(f"phone {phone} is already registered", field="phone")
    sealed = runtime.vault.seal_account("farmer")

    def effects(session: Session) -> dict[str, Any]:
        session.add(sealed.row)
        session.add(
            FarmerProfile(
                address=sealed.address,
                cooperative=actor.organisation,
                name=name,
                phone=phone,
                language=farmer.language,
                plot_geohash=plot,
                plot_polygon=json.dumps(farmer.plot_polygon) if farmer.plot_polygon else None,
            )
        )
        return {}

    write = Write(
        "farmers.enrol",
        payload,
        [Call("ClusterRegistry", "enrollFarmer", [sealed.address])],
        effects=effects,
        created={"farmer": {"address": sealed.address, "name": name}},
        after_commit=lambda: runtime.vault.account_committed(sealed.address, sealed.version),
        duplicate=f"phone {phone} is already registered",
        duplicate_field="phone",
    )
    return perform(runtime, actor, write, idempotency_key=idempotency_key)


def set_active(
    runtime: Runtime,
    actor: Actor,
    farmer: str,
    active: bool,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The cooperative deactivates a farmer (no new lots for them) or reactivates them."""
    require_role(actor, Role.COOPERATIVE)
    farmer = validate.address("farmer", farmer)
    with Session(runtime.engine) as session:
        profile = session.get(FarmerProfile, farmer)
    if profile is None:
        raise NotFound(f"no farmer {farmer}")
    if (profile.cooperative or "").lower() != actor.organisation.lower():
        raise Forbidden(f"farmer {farmer} belongs to another cooperative")
    call = Call("ClusterRegistry", "setFarmerActive", [farmer, active])
    write = Write("farmers.set_active", {"farmer": farmer, "active": active}, [call])
    return perform(runtime, actor, write, idempotency_key=idempotency_key)
