"""PDF: an A4 sheet of lot or consignment labels, and farmer ID cards.

QR codes are drawn as vector squares (crisp at any printer resolution), one rectangle per
horizontal run of dark modules. Text uses the PDF core fonts (no font files to ship):
characters outside Latin-1 are folded to their base letter (Kreyòl and French accents are
all in Latin-1).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from fpdf import FPDF

from konbit.labels import qr

# A4 sheet of 3 x 7 labels of 70 x 42.4 mm (the common 21-up label stock).
A4_WIDTH, A4_HEIGHT = 210.0, 297.0
COLUMNS, ROWS = 3, 7
LABEL_WIDTH, LABEL_HEIGHT = 70.0, 297.0 / 7
QR_SIZE = 34.0
# ID-1 card (a bank card): 85.6 x 54 mm.
CARD_WIDTH, CARD_HEIGHT = 85.6, 54.0


@dataclass(frozen=True)
class Label:
    """One label: the URI its QR code holds, a title and a few short lines."""

    uri: str
    title: str
    lines: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class FarmerCard:
    """A farmer's ID card; ``qr_data`` is what the scanner reads (the farmer code)."""

    name: str
    code: str
    cooperative: str
    qr_data: str
    heading: str = "Konbit"
    code_label: str = "Kòd / Code"


def latin1(text: str) -> str:
    """``text`` in the core fonts' Latin-1: other characters folded to base letters or '?'."""
    out = []
    for char in text:
        try:
            char.encode("latin-1")
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        try:
            base.encode("latin-1")
            out.append(base or "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out)


def draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    """``data``'s QR code as a ``size`` mm square at (x, y), quiet zone included."""
    modules = qr.matrix(data)
    cell = size / len(modules)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(modules):
        c = 0
        while c < len(row):
            if not row[c]:
                c += 1
                continue
            start = c
            while c < len(row) and row[c]:
                c += 1
            pdf.rect(x + start * cell, y + r * cell, (c - start) * cell, cell, style="F")


def _document(width: float, height: float) -> FPDF:
    pdf = FPDF(unit="mm", format=(width, height))
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_creator("Konbit")
    pdf.set_title("Konbit labels")
    return pdf


def label_sheet(labels: Sequence[Label]) -> bytes:
    """A4 pages of 21 labels each (3 columns, 7 rows), in order."""
    pdf = _document(A4_WIDTH, A4_HEIGHT)
    per_page = COLUMNS * ROWS
    for index, label in enumerate(labels or []):
        if index % per_page == 0:
            pdf.add_page()
        slot = index % per_page
        x = (slot % COLUMNS) * LABEL_WIDTH
        y = (slot // COLUMNS) * LABEL_HEIGHT
        draw_qr(pdf, label.uri, x + 2, y + (LABEL_HEIGHT - QR_SIZE) / 2, QR_SIZE)
        text_x = x + QR_SIZE + 4
        width = LABEL_WIDTH - QR_SIZE - 6
        pdf.set_xy(text_x, y + 6)
        pdf.set_font("helvetica", "B", 11)
        pdf.cell(width, 6, latin1(label.title)[:24])
        pdf.set_font("helvetica", "", 8)
        for n, line in enumerate(list(label.lines)[:5]):
            pdf.set_xy(text_x, y + 13 + n * 4.2)
            pdf.cell(width, 4, latin1(line)[:30])
    if not labels:
        pdf.add_page()
    return bytes(pdf.output())


def farmer_cards(cards: Sequence[FarmerCard]) -> bytes:
    """One ID-1 page per farmer: name, cooperative, farmer code, and its QR code."""
    pdf = _document(CARD_WIDTH, CARD_HEIGHT)
    for card in cards:
        pdf.add_page()
        pdf.set_draw_color(0, 0, 0)
        pdf.rect(1, 1, CARD_WIDTH - 2, CARD_HEIGHT - 2)
        pdf.set_xy(4, 4)
        pdf.set_font("helvetica", "B", 12)
        pdf.cell(44, 6, latin1(card.heading)[:20])
        pdf.set_xy(4, 12)
        pdf.set_font("helvetica", "B", 10)
        pdf.multi_cell(44, 5, latin1(card.name)[:60])
        pdf.set_xy(4, 26)
        pdf.set_font("helvetica", "", 7)
        pdf.multi_cell(44, 3.5, latin1(card.cooperative)[:60])
        pdf.set_xy(4, 38)
        pdf.set_font("helvetica", "", 7)
        pdf.cell(44, 4, latin1(card.code_label))
        pdf.set_xy(4, 42)
        pdf.set_font("courier", "B", 16)
        pdf.cell(44, 8, latin1(card.code))
        draw_qr(pdf, card.qr_data, CARD_WIDTH - 36, (CARD_HEIGHT - 33) / 2, 33)
    if not cards:
        pdf.add_page()
    return bytes(pdf.output())
