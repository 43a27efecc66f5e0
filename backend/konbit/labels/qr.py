"""QR codes as PNG, SVG or a module matrix (for vector drawing in a PDF)."""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathImage

#: Medium error correction (15%): survives a scuffed or dirty label.
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
QUIET_ZONE = 4


def _code(data: str, box_size: int = 10, border: int = QUIET_ZONE) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=box_size, border=border)
    code.add_data(data)
    code.make(fit=True)
    return code


def png(data: str, *, box_size: int = 10) -> bytes:
    """A black-on-white PNG of ``data`` with the standard four-module quiet zone."""
    image = _code(data, box_size).make_image(image_factory=PilImage)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def svg(data: str, *, box_size: int = 10) -> bytes:
    """An SVG (one path) of ``data``; scales to any print size."""
    image = _code(data, box_size).make_image(image_factory=SvgPathImage)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def matrix(data: str) -> list[list[bool]]:
    """The modules of ``data``'s QR code (True: dark), quiet zone included."""
    rows: list[list[bool]] = _code(data).get_matrix()
    return rows
