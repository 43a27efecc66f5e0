"""Writing and reading the private profiles (request handlers only; never the mirror)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from konbit.api.models import Role
from konbit.api.problems import Problem
from konbit.api.schemas import Address
from konbit.profiles.models import FarmerProfile, OrganisationProfile, utcnow
from konbit.runtime import Runtime

Phone = Annotated[
    str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +50937001234")
]


class FarmerIn(BaseModel):
    """A farmer's private profile: it stays in SQL; the chain sees only an address."""

    name: str = Field(min_length=1, max_length=200)
    phone: Phone | None = None
    language: Literal["ht", "fr", "en"] = "ht"
    plot_geohash: str | None = Field(default=None, pattern=r"^[0-9bcdefghjkmnpqrstuvwxyz]{1,12}$")
    plot_polygon: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon")

    @field_validator("plot_polygon")
    @classmethod
    def _polygon(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        rings = value.get("coordinates")
        if value.get("type") != "Polygon" or not isinstance(rings, list) or not rings:
            raise ValueError("must be a GeoJSON Polygon with coordinates")
        for ring in rings:
            if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
                raise ValueError("each ring needs at least 4 positions, first equal to last")
            for point in ring:
                if (
                    not isinstance(point, list)
                    or len(point) != 2
                    or not all(isinstance(c, int | float) for c in point)
                    or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90)
                ):
                    raise ValueError("positions are [longitude, latitude] in degrees")
        return value


def enrol_farmer_profile(runtime: Runtime, body: FarmerIn, *, cooperative: str) -> str:
    """Create the farmer's custodial account and private profile; returns the address."""
    with Session(runtime.engine) as session:
        if (
            body.phone
            and session.exec(
                select(FarmerProfile.address).where(FarmerProfile.phone == body.phone)
            ).first()
        ):
            raise Problem(409, f"phone {body.phone} is already registered", field="phone")
    address = runtime.vault.create_account("farmer")
    profile = FarmerProfile(
        address=address,
        cooperative=cooperative,
        name=body.name,
        phone=body.phone,
        language=body.language,
        plot_geohash=body.plot_geohash,
        plot_polygon=json.dumps(body.plot_polygon) if body.plot_polygon else None,
    )
    with Session(runtime.engine) as session:
        session.add(profile)
        try:
            session.commit()
        except IntegrityError:
            raise Problem(409, f"phone {body.phone} is already registered", field="phone") from None
    return address


def forget_farmer_profile(runtime: Runtime, address: str) -> None:
    """Undo :func:`enrol_farmer_profile` when the enrolment could not be recorded."""
    with Session(runtime.engine) as session:
        row = session.get(FarmerProfile, address)
        if row is not None:
            session.delete(row)
            session.commit()


class OrganisationIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    address: Address | None = Field(
        default=None, description="its own wallet; omit for a custodial account"
    )
    contact: str | None = Field(default=None, max_length=200)


def existing_role(runtime: Runtime, address: str) -> str | None:
    with Session(runtime.engine) as session:
        row = session.get(OrganisationProfile, address)
    return None if row is None else row.kind


def save_organisation(
    runtime: Runtime, body: OrganisationIn, address: str, *, custodial: bool
) -> None:
    with Session(runtime.engine) as session:
        row = session.get(OrganisationProfile, address) or OrganisationProfile(
            address=address, display_name=body.name, kind=body.role.value
        )
        row.display_name = body.name
        row.kind = body.role.value
        row.contact = body.contact
        row.updated_at = utcnow()
        session.add(row)
        session.commit()


def organisation_rows(runtime: Runtime) -> list[dict[str, Any]]:
    custodial = {a.address for a in runtime.vault.accounts()}
    with Session(runtime.engine) as session:
        rows = session.exec(
            select(OrganisationProfile).order_by(col(OrganisationProfile.created_at))
        ).all()
    return [
        {
            "address": r.address,
            "name": r.display_name,
            "role": r.kind,
            "contact": r.contact,
            "custodial": r.address in custodial,
        }
        for r in rows
    ]
