"""GS1 Digital Link URIs for lot and consignment labels, and the GTIN check digit.

A label's QR code holds ``{public base}/01/{GTIN-14}/10/{lot code}``: application
identifier 01 (the trade item: one GTIN per crop, set by ``KONBIT_GTINS``) and 10 (batch or
lot number). Konbit's lot code is the on-chain lot id (``42``); a consignment, which
aggregates lots, is ``C`` and its id (``C7``). The server at the base resolves both
paths to the public trace.

A GTIN is 8, 12, 13 or 14 digits whose last one is the GS1 mod-10 check digit; in a Digital
Link it is written as 14 digits (left-padded with zeros).

Fallback for a cooperative without a GTIN (none configured for the crop): the label
encodes ``{public base}/l/{id}`` (lot) or ``{public base}/c/{id}`` (consignment), which
resolve to the same trace (short paths: a smaller QR code). It is an ordinary URL, not a
GS1 key: GS1 scanners that only accept Digital Link read it as a web link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

GTIN_LENGTHS = (8, 12, 13, 14)
#: GS1 AI (10): up to 20 characters of GS1 character set 82; Konbit's codes use [0-9A-Z].
LOT_CODE = re.compile(r"^[0-9A-Za-z!\"%&'()*+,\-./:;<=>?_]{1,20}$")
CONSIGNMENT_PREFIX = "C"


class GtinError(ValueError):
    """Not a GTIN: wrong length, not digits, or a wrong check digit."""


def check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for ``body`` (a GTIN without its last digit)."""
    if not body.isascii() or not body.isdigit():
        raise GtinError(f"not digits: {body!r:.30}")
    total = 0
    for position, digit in enumerate(reversed(body)):
        total += int(digit) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def gtin14(gtin: str) -> str:
    """A valid GTIN-8/12/13/14 as the 14 digits a Digital Link carries; raises GtinError."""
    gtin = gtin.strip()
    if not gtin.isascii() or not gtin.isdigit() or len(gtin) not in GTIN_LENGTHS:
        raise GtinError(f"a GTIN has 8, 12, 13 or 14 digits, not {gtin!r:.30}")
    if check_digit(gtin[:-1]) != int(gtin[-1]):
        raise GtinError(f"wrong check digit in GTIN {gtin}: expected {check_digit(gtin[:-1])}")
    return gtin.zfill(14)


def parse_gtins(spec: str | None) -> dict[int, str]:
    """``"1:09506000134352,2:0614141000036"`` -> {crop: GTIN-14}; raises GtinError."""
    out: dict[int, str] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        crop, sep, gtin = item.partition(":")
        if not sep or not (crop.strip().isascii() and crop.strip().isdigit()):
            raise GtinError(f"expected <crop>:<gtin>, not {item!r:.40}")
        out[int(crop)] = gtin14(gtin)
    return out


def lot_code(lot_id: int) -> str:
    return str(int(lot_id))


def consignment_code(consignment_id: int) -> str:
    return f"{CONSIGNMENT_PREFIX}{int(consignment_id)}"


def digital_link(base: str, gtin: str, code: str) -> str:
    """``{base}/01/{gtin14}/10/{code}`` (the code percent-encoded where GS1 requires)."""
    if not LOT_CODE.fullmatch(code):
        raise ValueError(f"not a GS1 lot code: {code!r:.30}")
    return f"{base.rstrip('/')}/01/{gtin14(gtin)}/10/{quote(code, safe='')}"


@dataclass(frozen=True)
class LinkTarget:
    """What a label names: ``lot`` or ``consignment``, and its id."""

    kind: str
    id: int


def resolve_code(code: str) -> LinkTarget | None:
    """The lot (``42``) or consignment (``C7``) a Digital Link lot code names."""
    code = unquote(code)
    if code.isascii() and code.isdigit() and len(code) <= 19:
        return LinkTarget("lot", int(code)) if int(code) >= 1 else None
    body = code[1:]
    consignment = code[:1].upper() == CONSIGNMENT_PREFIX and body.isascii() and body.isdigit()
    if consignment and len(body) <= 19 and int(body) >= 1:
        return LinkTarget("consignment", int(body))
    return None


def label_uri(base: str, gtins: dict[int, str], kind: str, item_id: int, crop: int | None) -> str:
    """The URI a label encodes: a GS1 Digital Link when the crop has a GTIN, else the fallback."""
    gtin = gtins.get(crop) if crop is not None else None
    code = lot_code(item_id) if kind == "lot" else consignment_code(item_id)
    if gtin is not None:
        return digital_link(base, gtin, code)
    path = "l" if kind == "lot" else "c"
    return f"{base.rstrip('/')}/{path}/{int(item_id)}"
