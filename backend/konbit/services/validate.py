"""Input checks every channel gets alike: integers in their Solidity range, text, hashes.

The HTTP API validates its bodies first (and documents the bounds in OpenAPI); these
checks make a service safe to call from any channel (SMS, pages, a plain Python caller)
and name the field in the same way.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from eth_utils import is_address, to_checksum_address

from konbit.services.errors import InvalidInput

GEOHASH = re.compile(r"[0-9bcdefghjkmnpqrstuvwxyz]{1,12}")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
HASH32 = re.compile(r"0x[0-9a-fA-F]{64}")
#: What profiles hold and the SMS gateway looks people up by (konbit.profiles.phones
#: turns what a person types into it).
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
EMPTY_HASH = "0x" + "00" * 32


def uint(field: str, value: Any, bits: int, *, minimum: int = 0) -> int:
    """An integer in [minimum, 2**bits - 1]; booleans and strings are refused."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{field} must be an integer", field=field)
    top = 2**bits - 1
    if not minimum <= value <= top:
        raise InvalidInput(f"{field} must be between {minimum} and {top}", field=field)
    return value


def uints(field: str, values: Any, bits: int, *, minimum: int = 0, max_items: int) -> list[int]:
    if not isinstance(values, list | tuple) or not 1 <= len(values) <= max_items:
        raise InvalidInput(f"{field} must be a list of 1 to {max_items} integers", field=field)
    return [uint(f"{field}[{i}]", v, bits, minimum=minimum) for i, v in enumerate(values)]


@functools.lru_cache(maxsize=16_384)
def checksummed(value: str) -> str | None:
    """A 0x address in EIP-55 form; None when it is mixed-case with a wrong checksum.

    Cached: the same farmers and organisations come back with every lot and order, and each
    check is a keccak or two (5-6% of a web worker's CPU recording lots, py-spy).
    """
    if not is_address(value):
        return None
    return str(to_checksum_address(value))


def address(field: str, value: Any) -> str:
    if not isinstance(value, str) or not ADDRESS.fullmatch(value):
        raise InvalidInput(f"{field} must be a 0x address", field=field)
    found = checksummed(value)
    if found is None:
        raise InvalidInput(f"{field}: mixed-case address with a wrong EIP-55 checksum", field=field)
    return found


def hash32(field: str, value: Any) -> str:
    if not isinstance(value, str) or not HASH32.fullmatch(value):
        raise InvalidInput(f"{field} must be a 0x-prefixed 32-byte hex hash", field=field)
    return value.lower()


def geohash(field: str, value: Any) -> str:
    if not isinstance(value, str) or not GEOHASH.fullmatch(value):
        raise InvalidInput(f"{field} must be a geohash of 1 to 12 characters", field=field)
    return value


#: Characters of a geohash that may go on chain or on a public page: about 5 km x 5 km.
AREA_CHARS = 5


def area(field: str, value: Any) -> str:
    """A public place: a geohash of at most 5 characters (an exact place stays off chain)."""
    checked = geohash(field, value)
    if len(checked) > AREA_CHARS:
        raise InvalidInput(
            f"{field}: at most {AREA_CHARS} geohash characters go on chain (about 5 km);"
            f" send {checked[:AREA_CHARS]!r}",
            field=field,
        )
    return checked


def area_bytes(value: str | None) -> str:
    """An area as the contracts' ``bytes5``: ASCII, zero-padded on the right."""
    raw = (value or "").encode("ascii")[:AREA_CHARS]
    return "0x" + raw.hex().ljust(2 * AREA_CHARS, "0")


def text(field: str, value: Any, *, max_length: int, min_length: int = 1) -> str:
    """Printable text without control characters (NUL included)."""
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise InvalidInput(
            f"{field} must be text of {min_length} to {max_length} characters", field=field
        )
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    return value


#: On-chain ids are uint64; SQL stores them as signed 64-bit integers, so ids stop here.
MAX_ID = 2**63 - 1


def phone(field: str, value: Any) -> str:
    """An E.164 phone number, the one form the gateway recognises a sender by."""
    if not isinstance(value, str) or not E164.fullmatch(value):
        raise InvalidInput(f"{field} must be E.164, e.g. +50937000000", field=field)
    return value


def id_(field: str, value: Any) -> int:
    """An on-chain id (order, lot, consignment, job, bid, offer, advance): 1 to 2**63 - 1."""
    checked = uint(field, value, 64, minimum=1)
    if checked > MAX_ID:
        raise InvalidInput(f"{field} must be between 1 and {MAX_ID}", field=field)
    return checked


def ids(field: str, values: Any, *, max_items: int) -> list[int]:
    if not isinstance(values, list | tuple) or not 1 <= len(values) <= max_items:
        raise InvalidInput(f"{field} must be a list of 1 to {max_items} ids", field=field)
    return [id_(f"{field}[{i}]", v) for i, v in enumerate(values)]
