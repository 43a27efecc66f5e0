"""Labels on HTTP: the GS1 Digital Link resolver, QR images and printable sheets.

* ``GET /01/{gtin}/10/{code}``: what a label's QR code opens; redirects (307) to the public
  trace of the lot (code ``42``) or consignment (``C7``). ``GET /l/{id}`` and ``GET /c/{id}``
  are the fallback paths of cooperatives without a GTIN.
* ``GET /labels/lots/{id}.png|.svg`` and ``/labels/consignments/{id}.png|.svg``: the QR code.
* ``GET /labels/lots.pdf?ids=1,2,3`` (and ``consignments.pdf``): an A4 sheet of labels.
* ``GET /labels/farmers/{address}/card.pdf``: a farmer's ID card (name, code, QR of the
  code), for the farmer's cooperative only (its API key).
* ``GET /receipts/{code}``: a payout receipt checked against the chain (no login: the
  code is what the farmer was given).

The pages (``konbit.web``) can use the same pieces: :mod:`konbit.labels` renders,
:mod:`konbit.standards.digital_link` builds the URIs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from konbit.access.keys import Actor
from konbit.labels import pdf, qr
from konbit.mirror.models import Consignment, Lot, SaleOrder
from konbit.profiles import codes
from konbit.profiles.models import FarmerProfile, OrganisationProfile
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import receipts
from konbit.services.actors import actor_for_key
from konbit.services.errors import ServiceError
from konbit.settings import Settings
from konbit.sms.messages import crop_name, day, kilograms, money
from konbit.standards import digital_link

router = APIRouter(tags=["labels and QR"])
bearer = HTTPBearer(auto_error=False, description="an API key: `kb_...`")

MAX_SHEET = 210  # ten A4 pages
PNG, SVG, PDF = "image/png", "image/svg+xml", "application/pdf"
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _gtins(request: Request) -> dict[int, str]:
    gtins: dict[int, str] | None = getattr(request.app.state, "gtins", None)
    if gtins is None:
        settings: Settings = request.app.state.settings
        gtins = digital_link.parse_gtins(settings.gtins)
        request.app.state.gtins = gtins
    return gtins


def _base(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.effective_public_base_url


# ---------------------------------------------------------------------- resolver


@router.get(
    "/01/{gtin}/10/{code}",
    status_code=307,
    response_class=RedirectResponse,
    responses={307: {"description": "To the public trace"}, 404: {"description": "Not a label"}},
)
def resolve_digital_link(gtin: str, code: str) -> RedirectResponse:
    """A GS1 Digital Link (GTIN + lot code) to the trace of the lot or consignment."""
    try:
        digital_link.gtin14(gtin)
    except digital_link.GtinError as exc:
        raise HTTPException(404, f"not a GS1 Digital Link: {exc}") from None
    target = digital_link.resolve_code(code)
    if target is None:
        raise HTTPException(404, "the lot code names no Konbit lot or consignment")
    path = "lots" if target.kind == "lot" else "consignments"
    return RedirectResponse(f"/trace/{path}/{target.id}", status_code=307)


@router.get("/l/{lot_id}", status_code=307, response_class=RedirectResponse)
def resolve_lot(lot_id: Id) -> RedirectResponse:
    """Fallback label path of a lot (no GTIN): to its trace."""
    return RedirectResponse(f"/trace/lots/{lot_id}", status_code=307)


@router.get("/c/{consignment_id}", status_code=307, response_class=RedirectResponse)
def resolve_consignment(consignment_id: Id) -> RedirectResponse:
    """Fallback label path of a consignment (no GTIN): to its trace."""
    return RedirectResponse(f"/trace/consignments/{consignment_id}", status_code=307)


# ---------------------------------------------------------------------- labels


def lot_label(session: Session, lot: Lot, base: str, gtins: dict[int, str]) -> pdf.Label:
    uri = digital_link.label_uri(base, gtins, "lot", lot.lot_id, lot.crop)
    coop = session.get(OrganisationProfile, lot.cooperative)
    lines = [
        f"{kilograms(int(lot.grams), 'en')} kg {crop_name(lot.crop, 'en')}",
        f"Grade {lot.grade}",
        day(lot.harvest_time, "en"),
    ]
    if coop is not None:
        lines.append(coop.display_name)
    return pdf.Label(uri=uri, title=f"Lot {lot.lot_id}", lines=lines)


def consignment_label(
    session: Session, item: Consignment, base: str, gtins: dict[int, str]
) -> pdf.Label:
    order = session.get(SaleOrder, item.order_id)
    crop = order.crop if order is not None else None
    uri = digital_link.label_uri(base, gtins, "consignment", item.consignment_id, crop)
    lines = [f"{item.lot_count} lots, {kilograms(int(item.total_grams), 'en')} kg"]
    if crop is not None:
        lines.append(crop_name(crop, "en"))
    lines.append(f"Order {item.order_id}")
    return pdf.Label(uri=uri, title=f"Consignment {item.consignment_id}", lines=lines)


def _label(request: Request, kind: str, item_id: int) -> pdf.Label:
    with Session(_runtime(request).engine) as session:
        if kind == "lot":
            lot = session.get(Lot, item_id)
            if lot is None:
                raise HTTPException(404, f"no lot {item_id}")
            return lot_label(session, lot, _base(request), _gtins(request))
        item = session.get(Consignment, item_id)
        if item is None:
            raise HTTPException(404, f"no consignment {item_id}")
        return consignment_label(session, item, _base(request), _gtins(request))


IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {PNG: {}, SVG: {}}, "description": "The label's QR code"},
    404: {"description": "No such lot or consignment, or not .png / .svg"},
}


def _image(label: pdf.Label, ext: str) -> Response:
    if ext == "png":
        return Response(qr.png(label.uri), media_type=PNG, headers={"X-Label-URI": label.uri})
    return Response(qr.svg(label.uri), media_type=SVG, headers={"X-Label-URI": label.uri})


@router.get("/labels/lots/{lot_id}.{ext}", response_class=Response, responses=IMAGE_RESPONSES)
def lot_qr(lot_id: Id, ext: str, request: Request) -> Response:
    """A lot's QR code (PNG or SVG); the header ``X-Label-URI`` says what it encodes."""
    if ext not in ("png", "svg"):
        raise HTTPException(404, "labels are .png or .svg")
    return _image(_label(request, "lot", lot_id), ext)


@router.get(
    "/labels/consignments/{consignment_id}.{ext}",
    response_class=Response,
    responses=IMAGE_RESPONSES,
)
def consignment_qr(consignment_id: Id, ext: str, request: Request) -> Response:
    """A consignment's QR code (PNG or SVG)."""
    if ext not in ("png", "svg"):
        raise HTTPException(404, "labels are .png or .svg")
    return _image(_label(request, "consignment", consignment_id), ext)


#: 1 to 210 ids of at most 18 digits (every one below 2**63, as SQL stores them).
IDS_PATTERN = r"^[1-9][0-9]{0,17}(,[1-9][0-9]{0,17}){0,209}$"


def _ids(ids: str) -> list[int]:
    out: list[int] = []
    for part in ids.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) < 2**63:
            raise HTTPException(422, f"ids must be comma-separated ids, not {part[:20]!r}")
        out.append(int(part))
    if not 1 <= len(out) <= MAX_SHEET:
        raise HTTPException(422, f"ids must name 1 to {MAX_SHEET} items")
    return out


SHEET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {PDF: {}}, "description": "A4 pages of 21 labels"},
    404: {"description": "An id names nothing"},
    422: {"description": "ids is not a list of 1 to 210 ids"},
}


@router.get("/labels/lots.pdf", response_class=Response, responses=SHEET_RESPONSES)
async def lot_sheet(
    request: Request,
    ids: Annotated[str, Query(pattern=IDS_PATTERN, description="ids, comma-separated: 1,2,3")],
) -> Response:
    """An A4 sheet of lot labels, in the order given."""
    wanted = _ids(ids)
    labels = [_label(request, "lot", i) for i in wanted]
    return Response(await run_in_threadpool(pdf.label_sheet, labels), media_type=PDF)


@router.get("/labels/consignments.pdf", response_class=Response, responses=SHEET_RESPONSES)
async def consignment_sheet(
    request: Request,
    ids: Annotated[str, Query(pattern=IDS_PATTERN, description="ids, comma-separated: 1,2,3")],
) -> Response:
    """An A4 sheet of consignment labels."""
    wanted = _ids(ids)
    labels = [_label(request, "consignment", i) for i in wanted]
    return Response(await run_in_threadpool(pdf.label_sheet, labels), media_type=PDF)


def cooperative_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The cooperative whose API key this is: 401 without a valid key, 403 for another role."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "send an API key as `Authorization: Bearer kb_...`", {"WWW-Authenticate": "Bearer"}
        )
    try:
        actor = actor_for_key(_runtime(request), credentials.credentials.strip())
    except ServiceError as exc:
        raise HTTPException(403, exc.message) from None
    if actor is None:
        raise HTTPException(
            401, "the API key is unknown or revoked", {"WWW-Authenticate": "Bearer"}
        )
    if actor.role is not Role.COOPERATIVE:
        raise HTTPException(
            403, f"this needs the role cooperative; the key's role is {actor.role.value}"
        )
    return actor


Cooperative = Annotated[Actor, Depends(cooperative_actor)]


def farmer_card(runtime: Runtime, address: str, cooperative: str | None) -> pdf.FarmerCard:
    """The card of a farmer (of ``cooperative`` when given); 404 otherwise."""
    with Session(runtime.engine) as session:
        profile = session.exec(
            select(FarmerProfile).where(col(FarmerProfile.address) == address)
        ).first()
        if profile is None or (
            cooperative is not None and (profile.cooperative or "").lower() != cooperative.lower()
        ):
            raise HTTPException(404, f"no farmer {address} in this cooperative")
        coop = session.get(OrganisationProfile, profile.cooperative or "")
        code = codes.code_for(session, profile.address)
        # Built inside the session: the rows' attributes are not loaded after it closes.
        return pdf.FarmerCard(
            name=profile.name,
            code=code,
            cooperative=coop.display_name if coop is not None else "",
            qr_data=code,
        )


@router.get(
    "/labels/farmers/{address}/card.pdf",
    response_class=Response,
    responses={
        200: {"content": {PDF: {}}, "description": "The farmer's ID card"},
        401: {"description": "No or unknown API key"},
        403: {"description": "Not a cooperative's key"},
        404: {"description": "No such farmer in this cooperative"},
    },
)
async def farmer_card_pdf(
    address: Annotated[str, Path(max_length=42)], actor: Cooperative, request: Request
) -> Response:
    """A farmer's ID card (PDF): name, cooperative, farmer code and its QR code."""
    card = await run_in_threadpool(farmer_card, _runtime(request), address, actor.organisation)
    return Response(await run_in_threadpool(pdf.farmer_cards, [card]), media_type=PDF)


# ---------------------------------------------------------------------- receipts


class ReceiptLot(BaseModel):
    lot_id: int
    grams: int
    amount: int


class ReceiptDeductions(BaseModel):
    advance_repayment: int
    transport: int
    cooperative_fee: int


class ReceiptOut(BaseModel):
    """A farmer's payout receipt for one order, and whether the chain confirms it."""

    code: str
    order_id: int
    farmer: str
    token: str
    lots: list[ReceiptLot]
    sale: int
    deductions: ReceiptDeductions
    net: int
    net_display: str
    transactions: list[str]
    on_chain: bool
    problems: list[str]


@router.get(
    "/receipts/{code}",
    response_model=ReceiptOut,
    responses={
        200: {"description": "The receipt and whether the chain confirms it"},
        404: {"description": "No receipt has this code"},
        503: {"description": "The chain node could not be asked"},
    },
)
def receipt(code: Annotated[str, Path(max_length=40)], request: Request) -> JSONResponse:
    """A payout receipt, checked against the chain's ``FarmerPaid`` logs."""
    checked = receipts.check(_runtime(request), code)
    if checked is None:
        raise HTTPException(404, "no receipt has this code")
    r = checked.receipt
    return JSONResponse(
        {
            "code": r.code,
            "order_id": r.order_id,
            "farmer": r.farmer,
            "token": r.token,
            "lots": [{"lot_id": p.lot_id, "grams": p.grams, "amount": p.amount} for p in r.lots],
            "sale": r.sale,
            "deductions": {
                "advance_repayment": r.advance,
                "transport": r.transport,
                "cooperative_fee": r.cooperative_fee,
            },
            "net": r.net,
            "net_display": money(r.net, "en"),
            "transactions": list(r.tx_hashes),
            "on_chain": checked.on_chain,
            "problems": checked.problems,
        }
    )
