"""Private off-chain tables, keyed by on-chain address and joined to the projection for reads.

Only request handlers (onboarding, SMS) write them; the mirror never does, and
``konbit mirror --rebuild`` never touches them. Nothing here ever goes on chain: the chain
holds only addresses and hashes (e.g. the organisation's ``metadataHash``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Language(StrEnum):
    HAITIAN_CREOLE = "ht"
    FRENCH = "fr"
    ENGLISH = "en"


class FarmerProfile(SQLModel, table=True):
    """Who a farmer is: personal data kept off chain (the chain knows only the address)."""

    __tablename__ = "farmer_profile"

    address: str = Field(primary_key=True, max_length=42, description="custodial address")
    cooperative: str | None = Field(default=None, max_length=42, index=True)
    name: str = Field(max_length=200)
    phone: str | None = Field(
        default=None, max_length=16, unique=True, description="E.164, e.g. +50937000000"
    )
    language: str = Field(default=Language.HAITIAN_CREOLE.value, max_length=2)
    plot_geohash: str | None = Field(default=None, max_length=12)
    plot_polygon: str | None = Field(default=None, sa_type=Text, description="GeoJSON Polygon")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OrganisationProfile(SQLModel, table=True):
    """An organisation's display data; its hash is the on-chain ``metadataHash``."""

    __tablename__ = "organisation_profile"

    address: str = Field(primary_key=True, max_length=42)
    display_name: str = Field(max_length=200)
    kind: str = Field(max_length=32, description="cooperative, exporter, logistics, ...")
    contact: str | None = Field(default=None, max_length=200)
    metadata_salt: str | None = Field(
        default=None, max_length=66, description="salt of the on-chain metadataHash"
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LotPlot(SQLModel, table=True):
    """A lot's exact plot, kept off chain; the chain holds ``keccak256(salt ++ plot)``.

    Keyed by that commitment (it is in the lot's ``LotRecorded`` event), so the plot is
    found from the lot without the chain ever naming it.
    """

    __tablename__ = "lot_plot"

    commitment: str = Field(primary_key=True, max_length=66)
    cooperative: str = Field(max_length=42, index=True)
    plot_geohash: str = Field(max_length=12, description="the exact plot, as recorded")
    salt: str = Field(max_length=66, description="0x-hex, 32 random bytes")
    created_at: datetime = Field(default_factory=utcnow)


class PlotDisclosure(SQLModel, table=True):
    """The cooperative disclosed a lot's exact plot to a named buyer (due diligence)."""

    __tablename__ = "plot_disclosure"

    lot_id: int = Field(primary_key=True, sa_type=BigInteger)
    buyer: str = Field(primary_key=True, max_length=42)
    cooperative: str = Field(max_length=42)
    disclosed_at: datetime = Field(default_factory=utcnow)
