"""QR labels: every generated code decodes (zxing-cpp) to exactly the intended URI, from
PNG, from SVG and from the PDF sheet rendered to an image; GS1 GTIN check digits."""

from __future__ import annotations

import io
import re

import pypdfium2
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from konbit.labels import pdf, qr
from konbit.standards import digital_link as dl

BASE = "https://trace.konbit.example"
GTIN = "09506000134352"  # GS1's example GTIN


def decode(image: Image.Image) -> list[str]:
    return sorted(r.text for r in zxingcpp.read_barcodes(image))


def svg_to_image(svg: bytes, scale: int = 8) -> Image.Image:
    """Rasterise qrcode's SVG path (one ``M x,y H.. V.. H.. z`` square per module)."""
    text = svg.decode()
    box = re.search(r'viewBox="0 0 (\d+) (\d+)"', text)
    assert box
    size = int(box.group(1))
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    path = re.search(r' d="([^"]+)"', text)
    assert path
    for x, y, x2, y2 in re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z", path.group(1)):
        draw.rectangle(
            [float(x) * scale, float(y) * scale, float(x2) * scale - 1, float(y2) * scale - 1],
            fill=0,
        )
    return image


def pdf_pages(data: bytes, scale: float = 3) -> list[Image.Image]:
    document = pypdfium2.PdfDocument(data)
    return [page.render(scale=scale).to_pil() for page in document]


# --------------------------------------------------------------------------- GS1


@pytest.mark.parametrize(
    "gtin",
    ["09506000134352", "9506000134352", "96385074", "036000291452", "00036000291452"],
)
def test_valid_gtins_become_14_digits(gtin: str) -> None:
    assert dl.gtin14(gtin) == gtin.zfill(14)


@pytest.mark.parametrize("gtin", ["09506000134353", "950600013435", "abc", "", "1" * 15])
def test_invalid_gtins_are_refused(gtin: str) -> None:
    with pytest.raises(dl.GtinError):
        dl.gtin14(gtin)


@given(st.text(alphabet="0123456789", min_size=7, max_size=13))
@settings(max_examples=200, deadline=None)
def test_check_digit_completes_any_body(body: str) -> None:
    gtin = body + str(dl.check_digit(body))
    if len(gtin) in dl.GTIN_LENGTHS:
        assert dl.gtin14(gtin).endswith(gtin)
        wrong = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
        with pytest.raises(dl.GtinError):
            dl.gtin14(wrong)


def test_gtins_setting_and_label_uris() -> None:
    gtins = dl.parse_gtins("1:09506000134352, 2:96385074")
    assert gtins == {1: GTIN, 2: "00000096385074"}
    with pytest.raises(dl.GtinError):
        dl.parse_gtins("1:09506000134353")
    assert dl.label_uri(BASE, gtins, "lot", 42, 1) == f"{BASE}/01/{GTIN}/10/42"
    assert dl.label_uri(BASE, gtins, "consignment", 7, 1) == f"{BASE}/01/{GTIN}/10/C7"
    # Fallback for a crop (cooperative) without a GTIN.
    assert dl.label_uri(BASE, gtins, "lot", 42, 9) == f"{BASE}/l/42"
    assert dl.label_uri(BASE, {}, "consignment", 7, None) == f"{BASE}/c/7"
    assert dl.resolve_code("42") == dl.LinkTarget("lot", 42)
    assert dl.resolve_code("C7") == dl.LinkTarget("consignment", 7)
    for bad in ("0", "C", "C0", "X7", "4 2", "9" * 25):
        assert dl.resolve_code(bad) is None


# --------------------------------------------------------------------------- QR codes

URIS = [
    f"{BASE}/01/{GTIN}/10/1",
    f"{BASE}/01/{GTIN}/10/C12",
    f"{BASE}/01/{GTIN}/10/9223372036854775807",
    f"{BASE}/l/123456",
    "http://127.0.0.1:8000/c/3",
]


@pytest.mark.parametrize("uri", URIS)
def test_png_and_svg_decode_to_exactly_the_uri(uri: str) -> None:
    assert decode(Image.open(io.BytesIO(qr.png(uri)))) == [uri]
    assert decode(svg_to_image(qr.svg(uri))) == [uri]
    small = Image.open(io.BytesIO(qr.png(uri, box_size=3)))
    assert decode(small.rotate(90, expand=True)) == [uri]


@given(st.integers(min_value=1, max_value=2**63 - 1), st.booleans())
@settings(max_examples=25, deadline=None)
def test_any_lot_or_consignment_label_decodes(item_id: int, consignment: bool) -> None:
    kind = "consignment" if consignment else "lot"
    uri = dl.label_uri(BASE, {1: GTIN}, kind, item_id, 1)
    assert decode(Image.open(io.BytesIO(qr.png(uri)))) == [uri]


def test_pdf_sheet_rendered_to_images_decodes_every_label() -> None:
    uris = [dl.label_uri(BASE, {1: GTIN}, "lot", i, 1) for i in range(1, 24)]
    uris.append(dl.label_uri(BASE, {}, "consignment", 5, None))
    labels = [
        pdf.Label(uri=u, title=f"Lot {i}", lines=["250 kg mango", "Grade 2", "Kowoperativ Plèn"])
        for i, u in enumerate(uris, 1)
    ]
    data = pdf.label_sheet(labels)
    assert data.startswith(b"%PDF-")
    pages = pdf_pages(data)
    assert len(pages) == 2  # 21 labels per A4 page
    assert pages[0].size[0] < pages[0].size[1]  # portrait
    found = [text for page in pages for text in decode(page)]
    assert sorted(found) == sorted(uris)


def test_farmer_card_qr_reads_the_farmer_code() -> None:
    cards = [
        pdf.FarmerCard(
            name="Dieudonné Lwi", code="10019", cooperative="Kowop Gran Plèn", qr_data="10019"
        ),
        pdf.FarmerCard(name="Ẅeird Ñame ✓", code="10024", cooperative="", qr_data="10024"),
    ]
    pages = pdf_pages(pdf.farmer_cards(cards), scale=5)
    assert [decode(page) for page in pages] == [["10019"], ["10024"]]


def test_latin1_folding_keeps_kreyol_and_french() -> None:
    assert pdf.latin1("Kòd kiltivatè, reçu, Plèn") == "Kòd kiltivatè, reçu, Plèn"
    assert pdf.latin1("Ẅ✓") == "W?"
