"""Field types shared by the routers: integers for money and weight, hex for hashes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from eth_utils import is_address, to_checksum_address
from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

UINT64 = 2**64 - 1
UINT128 = 2**128 - 1
#: Ids are stored as signed 64-bit integers in SQL (row ids of the API's own tables, 32-bit).
INT63 = 2**63 - 1
INT31 = 2**31 - 1


def _checksummed(value: str) -> str:
    """Any-case hex address to EIP-55; a mixed-case one must carry a valid checksum."""
    if not is_address(value):
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return str(to_checksum_address(value))


Id = Annotated[int, Path(ge=1, le=INT63, description="on-chain id")]
#: An on-chain id inside a body (lists of lot ids, a bid, an order).
RefId = Annotated[int, Strict(), Field(ge=1, le=INT63, description="on-chain id")]
RowId = Annotated[int, Path(ge=1, le=INT31, description="id of a record of this backend")]
Grams = Annotated[int, Strict(), Field(ge=1, le=UINT64, description="weight in grams")]
Amount = Annotated[
    int, Strict(), Field(ge=0, le=UINT128, description="token minor units (6 decimals)")
]
PositiveAmount = Annotated[int, Strict(), Field(ge=1, le=UINT128, description="token minor units")]
Grade = Annotated[
    int, Strict(), Field(ge=0, le=255, description="quality grade (higher is better)")
]
Crop = Annotated[
    int, Strict(), Field(ge=1, le=65535, description="crop code (1 mango, 2 avocado, ...)")
]
Bps = Annotated[int, Strict(), Field(ge=0, le=10_000, description="basis points")]
Timestamp = Annotated[int, Strict(), Field(ge=0, le=UINT64, description="unix seconds")]
Address = Annotated[
    str,
    Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="0x address (any case; EIP-55 if mixed)"),
    AfterValidator(_checksummed),
]
Hash32 = Annotated[
    str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="keccak-256 of an off-chain document")
]
Geohash = Annotated[
    str, Field(pattern=r"^[0-9bcdefghjkmnpqrstuvwxyz]{1,12}$", description="geohash, 1-12 chars")
]
#: A public place (custody, pickup, drop-off): at most 5 geohash characters, about 5 km.
AREA_PATTERN = re.compile(r"[0-9bcdefghjkmnpqrstuvwxyz]{1,12}")


def _area(value: str) -> str:
    """Checked here rather than by a pattern, so that the error says what to send."""
    if not AREA_PATTERN.fullmatch(value):
        raise ValueError("a geohash: 1 to 5 of the characters 0-9 and b-z except i, l, o")
    if len(value) > 5:
        raise ValueError(
            f"at most 5 geohash characters go on chain (about 5 km): send {value[:5]!r}"
        )
    return value


Area = Annotated[
    str,
    Field(
        description="geohash of at most 5 characters (about 5 km): nothing finer goes on chain",
        json_schema_extra={"pattern": "^[0-9bcdefghjkmnpqrstuvwxyz]{1,5}$", "maxLength": 5},
    ),
    AfterValidator(_area),
]
Phone = Annotated[
    str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +50937001234")
]
#: Text a person typed: no control characters (NUL breaks PostgreSQL, others break logs).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
EMPTY_HASH = "0x" + "00" * 32


class Body(BaseModel):
    """A request body: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


def text(
    max_length: int, *, min_length: int = 1, default: Any = ..., description: str | None = None
) -> Any:
    """A text field of bounded length without control characters."""
    return Field(
        default,
        min_length=min_length,
        max_length=max_length,
        pattern=TEXT_PATTERN,
        description=description,
    )


def geohash_text(value: str | bytes | None) -> str | None:
    if value is None:
        return None
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else value
    return raw.rstrip(b"\0").decode("ascii", "replace") or None


class CustodyIn(Body):
    """One step of custody: when, where, and a hash of the evidence (photo, waybill)."""

    at: Timestamp
    geohash: Area
    evidence_hash: Hash32 = EMPTY_HASH


class HandOverIn(CustodyIn):
    to: Address


def check_polygon(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A GeoJSON Polygon: closed rings of [longitude, latitude] positions."""
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
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
                or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90)
            ):
                raise ValueError("positions are [longitude, latitude] in degrees")
    return value
