"""Field types shared by the routers: integers for money and weight, hex for hashes."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
)

from konbit.services import validate

UINT64 = 2**64 - 1
UINT128 = 2**128 - 1
#: Ids are stored as signed 64-bit integers in SQL (row ids of the API's own tables, 32-bit).
INT63 = 2**63 - 1
INT31 = 2**31 - 1


def _checksummed(value: str) -> str:
    """Any-case hex address to EIP-55; a mixed-case one must carry a valid checksum."""
    found = validate.checksummed(value)
    if found is None:
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return found


#: Up to this magnitude a float holds every integer exactly.
EXACT_FLOAT = 2**53


def _whole(value: Any) -> Any:
    """JSON Schema counts ``1.0`` as an integer: take it as ``1``, where a float is exact.

    Everything else goes on to the strict integer check: fractions, numeric strings and
    booleans are refused, and so is a whole float beyond 2**53, which may not be the
    number the client wrote (send such numbers without a fraction).
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_FLOAT:
        return int(value)
    return value


#: A body's integer: strict (no strings, no booleans), but ``3.0`` is 3, as in JSON Schema.
Whole = BeforeValidator(_whole)

Id = Annotated[int, Path(ge=1, le=INT63, description="on-chain id")]
#: An on-chain id inside a body (lists of lot ids, a bid, an order).
RefId = Annotated[int, Strict(), Field(ge=1, le=INT63, description="on-chain id"), Whole]
RowId = Annotated[int, Path(ge=1, le=INT31, description="id of a record of this backend")]
Grams = Annotated[int, Strict(), Field(ge=1, le=UINT64, description="weight in grams"), Whole]
#: A lot's weight: Traceability keeps it in 40 bits (at most about 1,100 tonnes a lot).
LOT_GRAMS_MAX = 2**40 - 1
LotGrams = Annotated[
    int, Strict(), Field(ge=1, le=LOT_GRAMS_MAX, description="a lot's weight in grams"), Whole
]
Amount = Annotated[
    int, Strict(), Field(ge=0, le=UINT128, description="token minor units (6 decimals)"), Whole
]
PositiveAmount = Annotated[
    int, Strict(), Field(ge=1, le=UINT128, description="token minor units"), Whole
]
Grade = Annotated[
    int, Strict(), Field(ge=0, le=255, description="quality grade (higher is better)"), Whole
]
Crop = Annotated[
    int, Strict(), Field(ge=1, le=65535, description="crop code (1 mango, 2 avocado, ...)"), Whole
]
Bps = Annotated[int, Strict(), Field(ge=0, le=10_000, description="basis points"), Whole]
Timestamp = Annotated[int, Strict(), Field(ge=0, le=UINT64, description="unix seconds"), Whole]
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


#: SaleEscrow.MAX_AGENT_WINDOW (30 days).
MAX_AGENT_WINDOW = 30 * 86400


class ReleaseAgentIn(Body):
    """A release agent for an order (a financier), or none, agreed by both parties."""

    agent: Address | None = Field(description="a financier; null: no release agent")
    window_seconds: Annotated[int, Strict(), Whole] = Field(
        ge=0,
        le=MAX_AGENT_WINDOW,
        description="seconds after the dispute window the agent has to act (0 with no agent)",
    )


class DocumentsIn(Body):
    """The shipping documents presented to the release agent, as hashes."""

    document_hashes: list[Hash32] = Field(
        min_length=1,
        max_length=32,
        description="keccak-256 of each document (bill of lading, certificates, receipt ...)",
    )


Longitude = Annotated[float, Strict(), Field(ge=-180, le=180)]
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90)]


class Polygon(BaseModel):
    """A GeoJSON Polygon: rings of at least 4 [longitude, latitude] positions.

    A ring whose last position is not its first is closed here (its first one appended):
    JSON Schema cannot say "last equal to first", so the API does not ask it.
    """

    model_config = ConfigDict(extra="allow")  # GeoJSON's foreign members (bbox, ...)

    type: Literal["Polygon"]
    coordinates: list[Annotated[list[tuple[Longitude, Latitude]], Field(min_length=4)]] = Field(
        min_length=1, description="rings of [longitude, latitude] in degrees"
    )

    @field_validator("coordinates")
    @classmethod
    def _closed(cls, rings: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        return [ring if ring[0] == ring[-1] else [*ring, ring[0]] for ring in rings]


#: JSON Schema keywords that hold a number.
_NUMERIC_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
#: The integer bounds above 2**53 the API declares, by the float that cannot spell them.
_BIG_BOUNDS = {float(bound): bound for bound in (INT63, UINT64, UINT128)}


def exact_bounds(node: Any) -> Any:
    """Give integer schemas back the integer bounds FastAPI's OpenAPI model made floats.

    FastAPI reads ``minimum``/``maximum`` as floats (fastapi/fastapi#9517): ``255`` becomes
    ``255.0`` and 2**64 - 1 becomes 1.8446744073709552e19, which is 2**64, one more than
    the API accepts. Each whole float bound of an integer schema is put back as the integer
    the models declare; one that is not known here is an error, not a silent rounding.
    """
    if isinstance(node, list):
        for item in node:
            exact_bounds(item)
    elif isinstance(node, dict):
        if node.get("type") == "integer":
            for keyword in _NUMERIC_KEYWORDS:
                bound = node.get(keyword)
                if not isinstance(bound, float) or not bound.is_integer():
                    continue
                if abs(bound) <= EXACT_FLOAT:
                    node[keyword] = int(bound)
                elif bound in _BIG_BOUNDS:
                    node[keyword] = _BIG_BOUNDS[bound]
                else:
                    raise ValueError(f"{keyword} {bound!r}: add the exact bound to _BIG_BOUNDS")
        for value in node.values():
            exact_bounds(value)
    return node
