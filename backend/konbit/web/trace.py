"""The public trace page: what a consumer, buyer or auditor sees after scanning a label.

No login and nothing personal: the cooperative by name, the region as a 5-character area,
the number of farmers (no names: there is no consent record yet), each fact with the
transaction and block that prove it. One request, styles inline, pictures as inline SVG:
small enough for a slow phone.

Browsers reach it at the API's own trace URLs (``/trace/lots/{id}``, where the label's
Digital Link redirects): :class:`HtmlTrace` serves this page there to a client that asks
for HTML, and the JSON to everyone else. ``/t/...`` are the same pages by their own path.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konbit.mirror.models import (
    ChainEvent,
    Consignment,
    ConsignmentLot,
    CustodyTransfer,
    Inspection,
    Lot,
    LotEvent,
    OrderStatus,
    OrderStatusChange,
    Payout,
    SaleOrder,
)
from konbit.profiles.models import OrganisationProfile
from konbit.services import receipts
from konbit.web import i18n, svg
from konbit.web.rendering import area, render, runtime_of

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
AREA = 5


@dataclass
class Proof:
    tx_hash: str
    block: int


@dataclass
class Fact:
    """One line of a list (an inspection, a custody step) with its proof."""

    text: str
    when: int | None
    proof: Proof | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TraceView:
    kind: str  # "lot" | "consignment"
    id: int
    crop: int | None
    grams: int
    cooperative: str
    region: str
    harvest_first: int | None
    harvest_last: int | None
    farmers: int
    recorded: list[Fact]
    inspections: list[Fact]
    custody: list[Fact]
    order: SaleOrder | None
    exporter: str | None
    order_proof: Proof | None
    waterfall: dict[str, int]
    farmer_payouts: list[int]
    payout_proof: Proof | None
    timeline_svg: str = ""
    waterfall_svg: str = ""
    payouts_svg: str = ""


def _name(session: Session, address: str | None) -> str:
    if not address:
        return "—"
    profile = session.get(OrganisationProfile, address)
    return profile.display_name if profile else address


def _lot_recorded(session: Session, lot_ids: list[int]) -> list[Fact]:
    rows = session.exec(
        select(LotEvent, ChainEvent)
        .join(
            ChainEvent,
            (col(ChainEvent.block_number) == col(LotEvent.block_number))
            & (col(ChainEvent.log_index) == col(LotEvent.log_index)),
        )
        .where(col(LotEvent.lot_id).in_(lot_ids))
        .where(LotEvent.kind == "LotRecorded")
        .order_by(col(LotEvent.lot_id))
    ).all()
    return [
        Fact(f"#{ev.lot_id}", chain.block_time, Proof(chain.tx_hash, chain.block_number))
        for ev, chain in rows
    ]


def _view(session: Session, kind: str, item_id: int) -> TraceView | None:
    lots: list[Lot]
    if kind == "lot":
        lot = session.get(Lot, item_id)
        if lot is None:
            return None
        lots = [lot]
        consignment = session.get(Consignment, lot.consignment_id) if lot.consignment_id else None
        cooperative = lot.cooperative
        grams = int(lot.grams)
    else:
        consignment = session.get(Consignment, item_id)
        if consignment is None:
            return None
        lots = list(
            session.exec(
                select(Lot)
                .join(ConsignmentLot, col(ConsignmentLot.lot_id) == col(Lot.lot_id))
                .where(ConsignmentLot.consignment_id == item_id)
                .order_by(col(Lot.lot_id))
            ).all()
        )
        cooperative = consignment.cooperative
        grams = int(consignment.total_grams)
    lot_ids = [lot.lot_id for lot in lots]
    areas = sorted({area(lot.plot_geohash) for lot in lots} - {""})
    harvests = [lot.harvest_time for lot in lots if lot.harvest_time]

    inspection_filter: Any = col(Inspection.lot_id).in_(lot_ids)
    if consignment is not None and kind == "consignment":
        inspection_filter = inspection_filter | (
            col(Inspection.consignment_id) == consignment.consignment_id
        )
    inspections = [
        Fact(
            (f"#{i.lot_id}" if i.lot_id else ""),
            None,
            Proof(i.tx_hash, i.block_number),
            {"passed": i.passed, "grade": i.grade, "certificate": i.certificate_hash},
        )
        for i in session.exec(
            select(Inspection)
            .where(inspection_filter)
            .order_by(col(Inspection.block_number), col(Inspection.log_index))
        ).all()
    ]
    custody: list[Fact] = []
    order = exporter = order_proof = payout_proof = None
    waterfall: dict[str, int] = defaultdict(int)
    farmer_payouts: dict[str, int] = defaultdict(int)
    if consignment is not None:
        for c in session.exec(
            select(CustodyTransfer)
            .where(CustodyTransfer.consignment_id == consignment.consignment_id)
            .order_by(col(CustodyTransfer.block_number), col(CustodyTransfer.log_index))
        ).all():
            custody.append(
                Fact(
                    c.kind,
                    c.at,
                    Proof(c.tx_hash, c.block_number),
                    {
                        "from": _name(session, c.from_address),
                        "to": _name(session, c.to_address),
                        "area": area(c.geohash),
                    },
                )
            )
        order = session.get(SaleOrder, consignment.order_id)
    if order is not None:
        exporter = _name(session, order.exporter)
        change = session.exec(
            select(OrderStatusChange)
            .where(OrderStatusChange.order_id == order.order_id)
            .order_by(col(OrderStatusChange.block_number).desc())
        ).first()
        if change is not None:
            order_proof = Proof(change.tx_hash, change.block_number)
        payouts = session.exec(
            select(Payout)
            .where(Payout.order_id == order.order_id)
            .order_by(col(Payout.block_number), col(Payout.log_index))
        ).all()
        for p in payouts:
            waterfall[p.kind] += int(p.amount)
            if p.kind == "farmer":
                farmer_payouts[p.payee] += int(p.amount)
        if payouts:
            payout_proof = Proof(payouts[-1].tx_hash, payouts[-1].block_number)
    return TraceView(
        kind=kind,
        id=item_id,
        crop=order.crop if order is not None else (lots[0].crop if lots else None),
        grams=grams,
        cooperative=_name(session, cooperative),
        region=", ".join(areas) or "—",
        harvest_first=min(harvests) if harvests else None,
        harvest_last=max(harvests) if harvests else None,
        farmers=len({lot.farmer for lot in lots}),
        recorded=_lot_recorded(session, lot_ids),
        inspections=inspections,
        custody=custody,
        order=order,
        exporter=exporter,
        order_proof=order_proof,
        waterfall=dict(waterfall),
        farmer_payouts=sorted(farmer_payouts.values(), reverse=True),
        payout_proof=payout_proof,
    )


def _pictures(view: TraceView, lang: i18n.Lang) -> None:
    def tr(key: str, **values: object) -> str:
        return i18n.t(lang, key, **values)

    steps = [
        svg.Step(
            f.when, f"{tr('recorded')} {tr('lot').lower()} {f.text}", i18n.moment(f.when, lang)
        )
        for f in view.recorded[:1]
        if f.when
    ]
    steps += [
        svg.Step(
            f.when or 0,
            f"{tr(f.text)}: {f.extra['to']} ({f.extra['area']})",
            i18n.moment(f.when, lang),
        )
        for f in view.custody
    ]
    if steps:
        view.timeline_svg = svg.timeline(tr("timeline"), steps)
    if view.waterfall:
        kinds = sorted(view.waterfall, key=lambda k: (k != "farmer", k))
        parts = [
            svg.Bar(
                tr(f"kind_{k}") if f"kind_{k}" in i18n.CATALOGUE else tr("kind_other"),
                view.waterfall[k],
                i18n.money(view.waterfall[k], lang),
            )
            for k in kinds
        ]
        total = sum(view.waterfall.values())
        view.waterfall_svg = svg.waterfall(
            tr("where_money"), tr("sale"), i18n.money(total, lang), parts
        )
    if view.farmer_payouts:
        view.payouts_svg = svg.bars(
            tr("payouts"),
            [
                svg.Bar(tr("farmer_n", n=i), amount, i18n.money(amount, lang))
                for i, amount in enumerate(view.farmer_payouts, start=1)
            ],
        )


def _load(request: Request, kind: str, item_id: int) -> TraceView | None:
    with Session(runtime_of(request).engine) as session:
        return _view(session, kind, item_id)


async def _page(request: Request, kind: str, item_id: int) -> HTMLResponse:
    view = await run_in_threadpool(_load, request, kind, item_id)
    if view is None:
        return render(request, "not_found.html", status_code=404, label=True)
    from konbit.web.rendering import language

    lang = language(request)
    _pictures(view, lang)
    share = None
    if view.order is not None and view.order.payment and view.waterfall.get("farmer"):
        share = i18n.percent(view.waterfall["farmer"], int(view.order.payment), lang)
    return render(
        request,
        "trace.html",
        view=view,
        share=share,
        status=(
            i18n.status(lang, OrderStatus(view.order.status).name)
            if view.order is not None
            else None
        ),
    )


@router.get("/t/lots/{lot_id}", response_class=HTMLResponse)
async def lot_page(lot_id: Id, request: Request) -> HTMLResponse:
    return await _page(request, "lot", lot_id)


@router.get("/t/consignments/{consignment_id}", response_class=HTMLResponse)
async def consignment_page(consignment_id: Id, request: Request) -> HTMLResponse:
    return await _page(request, "consignment", consignment_id)


TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


def _transaction(request: Request, tx_hash: str) -> dict[str, Any] | None:
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        events = session.exec(
            select(ChainEvent)
            .where(col(ChainEvent.tx_hash).in_([tx_hash, tx_hash.lower()]))
            .order_by(col(ChainEvent.log_index))
        ).all()
    if not events:
        return None
    on_chain: bool | None
    try:
        receipt = runtime.rpc.call("eth_getTransactionReceipt", events[0].tx_hash)
        on_chain = bool(
            receipt
            and int(receipt["status"], 16) == 1
            and receipt["blockHash"].lower() == events[0].block_hash.lower()
        )
    except Exception:  # the node is down: say so, the mirror's copy is still shown
        on_chain = None
    return {
        "tx_hash": events[0].tx_hash,
        "block": events[0].block_number,
        "block_hash": events[0].block_hash,
        "time": events[0].block_time,
        "on_chain": on_chain,
        "events": [
            {"contract": e.contract, "event": e.event, "args": json.loads(e.args)} for e in events
        ],
    }


@router.get("/t/tx/{tx_hash}", response_class=HTMLResponse)
async def transaction_page(
    tx_hash: Annotated[str, Path(max_length=66)], request: Request
) -> HTMLResponse:
    """A fact's proof: the transaction, its block, its Konbit events, checked on the node."""
    if not TX_HASH.fullmatch(tx_hash):
        return render(request, "not_found.html", status_code=404)
    tx = await run_in_threadpool(_transaction, request, tx_hash)
    if tx is None:
        return render(request, "not_found.html", status_code=404)
    return render(request, "transaction.html", tx=tx)


@router.get("/t/receipts", response_class=HTMLResponse)
async def receipt_page(
    request: Request, code: Annotated[str | None, Query(max_length=40)] = None
) -> HTMLResponse:
    """Check a payout receipt code (the farmer's paper receipt) against the chain."""
    checked = None
    if code:
        checked = await run_in_threadpool(receipts.check, runtime_of(request), code.strip())
    return render(request, "receipt.html", code=code or "", checked=checked, asked=bool(code))


TRACE_PATH = re.compile(r"^/trace/(lots|consignments)/([^/]+)/?$")
#: Where a label or a shared link takes a browser: the label paths (GS1 Digital Link and the
#: fallback ``/l/``, ``/c/``) and the pages. A mistyped or unknown one gets the not-found
#: page in the reader's language, not the API's problem document.
PUBLIC_PATH = re.compile(r"^/(?:01/[^/]*/10/[^/]*|[lc]/[^/]*|t/(?:lots|consignments)/[^/]*)/?$")


def wants_html(accept: str) -> bool:
    """A browser's Accept: text/html preferred over JSON (``*/*`` alone is not a browser)."""
    best_html = best_json = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif media in ("application/json", "application/problem+json"):
            best_json = max(best_json, q)
    return best_html > 0 and best_html >= best_json


class HtmlTrace:
    """ASGI middleware for browsers (``Accept: text/html``) on the public links.

    - ``GET /trace/lots/{id}`` gets the page. The API's trace route stays the JSON one (its
      OpenAPI, its tests, its clients); a browser that opens the same URL, as a scanned
      label does, is served ``/t/lots/{id}`` in place, without a second redirect on a slow
      connection.
    - A label path or page that names nothing (``/l/abc``, a GTIN with a wrong check digit,
      lot 0) gets the not-found page (404) in the reader's language, where a JSON client
      gets the problem document.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        if not wants_html(accept):
            await self.app(scope, receive, send)
            return
        match = TRACE_PATH.match(scope["path"])
        if match is not None:
            path = f"/t/{match.group(1)}/{match.group(2)}"
            scope = {**scope, "path": path, "raw_path": path.encode()}
        if not PUBLIC_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_or_page(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] in (404, 422):
                replaced = True
                page = render(Request(scope), "not_found.html", status_code=404, label=True)
                await page(scope, receive, send)
            elif not replaced:  # the problem document's body is dropped with its head
                await send(message)

        await self.app(scope, receive, send_or_page)
