"""Dashboards with login, one per role, and the forms that act through the services.

Every form posts to ``/app/do/{action}`` with the session's CSRF token and a one-time
idempotency key (a double submit records nothing twice). A write answers with a redirect
to the dashboard and its transactions, whose state the page refreshes until they are mined
and mirrored (htmx polling; without JavaScript a ``<meta refresh>``). A refusal is shown as
a form error, from the service's own message.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from eth_utils import keccak
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, text
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from konbit.access.keys import Actor
from konbit.labels import pdf
from konbit.mirror.models import (
    Advance,
    AdvanceDefault,
    AdvanceOffer,
    AdvanceRepayment,
    AdvanceStatus,
    Consignment,
    ConsignmentLot,
    JobStatus,
    Lot,
    MirrorCursor,
    OrderStatus,
    Payout,
    ReleaseState,
    SaleOrder,
    TransportBid,
    TransportJob,
)
from konbit.outbox.models import OutboxTx, TxStatus
from konbit.profiles import phones
from konbit.profiles.models import FarmerProfile, OrganisationProfile
from konbit.roles import MARKET_ROLES, Role
from konbit.runtime import Runtime
from konbit.services import (
    custody,
    farmers,
    finance,
    logistics,
    orders,
    organisations,
    release,
    writes,
)
from konbit.services.errors import ContractRefused, InvalidInput, ServiceError
from konbit.services.writes import Outcome
from konbit.settings import Settings
from konbit.standards import digital_link
from konbit.web import auth, i18n, svg
from konbit.web.rendering import language, render, runtime_of

router = APIRouter(include_in_schema=False)
USD = 10**6
DAY = 86_400
#: The dashboard of each role, by its path.
PAGES: dict[Role, str] = {
    Role.COOPERATIVE: "cooperative",
    Role.EXPORTER: "exporter",
    Role.FINANCIER: "financier",
    Role.LOGISTICS: "carrier",
    Role.OPERATOR: "operator",
    Role.INSPECTOR: "other",
    Role.ARBITER: "other",
}
LIST = 50


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


# ---------------------------------------------------------------------- home, sign in


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")


@router.get("/trace", response_class=HTMLResponse)
def trace_lookup(
    request: Request, lot: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None
) -> Response:
    """The home page's "find a lot" form."""
    if lot is None:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(f"/t/lots/{lot}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", csrf=token, failed=False)
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=3600,
        path="/login",
    )
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    expected = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or ""
    if not expected or not auth.csrf_ok(expected, _text(form, "csrf")):
        return render(request, "login.html", status_code=403, csrf=expected, failed=True)
    token = await run_in_threadpool(
        auth.sign_in,
        runtime_of(request),
        _text(form, "username"),
        _text(form, "password"),
        _text(form, "api_key"),
    )
    if token is None:
        return render(request, "login.html", status_code=401, csrf=expected, failed=True)
    response = RedirectResponse("/app", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=auth.SESSION_HOURS * 3600,
    )
    response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    signed = await run_in_threadpool(auth.current, runtime_of(request), request)
    form = await request.form()
    if signed is not None and auth.csrf_ok(signed[1].csrf_token, _text(form, "csrf")):
        await run_in_threadpool(
            auth.end_session, runtime_of(request), request.cookies.get(auth.COOKIE)
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE)
    return response


# ---------------------------------------------------------------------- dashboards


@router.get("/app", response_class=HTMLResponse)
async def app_home(request: Request) -> Response:
    signed = await run_in_threadpool(auth.current, runtime_of(request), request)
    if signed is None:
        return RedirectResponse("/login", status_code=303)
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/app/{PAGES[signed[0].role]}{query}", status_code=303)


@router.get("/app/{page}", response_class=HTMLResponse)
async def dashboard(page: str, request: Request) -> Response:
    runtime = runtime_of(request)
    signed = await run_in_threadpool(auth.current, runtime, request)
    if signed is None:
        return RedirectResponse("/login", status_code=303)
    actor, session_row = signed
    if page != PAGES[actor.role]:
        return RedirectResponse(f"/app/{PAGES[actor.role]}", status_code=303)
    return await _dashboard(request, actor, session_row.csrf_token)


@dataclass(frozen=True)
class FormError:
    """What the page says went wrong: a catalogue sentence in the reader's language, and
    the service's own (English) words, which name the exact limit."""

    key: str
    values: dict[str, str] = field(default_factory=dict)
    detail: str | None = None

    @classmethod
    def of(cls, exc: ServiceError) -> FormError:
        if isinstance(exc, ContractRefused):
            return cls("err_contract_refused", {"error": exc.error}, exc.message)
        if exc.code == "invalid_input" and exc.field:
            return cls("err_invalid_input", {"field": exc.field}, exc.message)
        if exc.code == "invalid_input":
            return cls("err_invalid", detail=exc.message)
        key = f"err_{exc.code}"
        return cls(key if key in i18n.CATALOGUE else "err_refused", detail=exc.message)


async def _dashboard(
    request: Request,
    actor: Actor,
    csrf: str,
    *,
    error: FormError | None = None,
    shown: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    runtime = runtime_of(request)
    lang = language(request)
    data = await run_in_threadpool(READERS[actor.role], runtime, actor, lang)
    ids = _tx_ids(request.query_params.get("tx"))
    pending = await run_in_threadpool(_tx_rows, request, actor, ids) if ids else None
    return render(
        request,
        f"dash_{PAGES[actor.role]}.html",
        status_code=status_code,
        actor=actor,
        me=data.pop("me", actor.organisation),
        csrf=csrf,
        idem=secrets.token_urlsafe(12),
        error=error,
        shown=shown or {},
        pending=pending,
        **data,
    )


# ---------------------------------------------------------------------- what each role reads


def _name(session: Session, address: str | None) -> str:
    if not address:
        return "—"
    profile = session.get(OrganisationProfile, address)
    return profile.display_name if profile else address


def _rows(session: Session, statement: Any) -> list[Any]:
    return list(session.exec(statement).all())


def read_cooperative(runtime: Runtime, actor: Actor, lang: i18n.Lang) -> dict[str, Any]:
    me = actor.organisation
    with Session(runtime.engine) as s:
        advances = _rows(
            s,
            select(Advance)
            .where(Advance.cooperative == me)
            .order_by(col(Advance.advance_id).desc())
            .limit(LIST),
        )
        jobs = _rows(
            s,
            select(TransportJob)
            .where(TransportJob.cooperative == me)
            .order_by(col(TransportJob.job_id).desc())
            .limit(LIST),
        )
        return {
            "me": _name(s, me),
            "farmers": _rows(
                s,
                select(FarmerProfile)
                .where(FarmerProfile.cooperative == me)
                .order_by(col(FarmerProfile.name))
                .limit(200),
            ),
            "lots": _rows(
                s,
                select(Lot)
                .where(Lot.cooperative == me)
                .order_by(col(Lot.lot_id).desc())
                .limit(200),
            ),
            "consignments": _rows(
                s,
                select(Consignment)
                .where(Consignment.cooperative == me)
                .order_by(col(Consignment.consignment_id).desc())
                .limit(LIST),
            ),
            "orders": [
                (o, _name(s, o.exporter))
                for o in _rows(
                    s,
                    select(SaleOrder)
                    .where(SaleOrder.cooperative == me)
                    .order_by(col(SaleOrder.order_id).desc())
                    .limit(LIST),
                )
            ],
            "advances": [
                (
                    a,
                    [
                        (o, _name(s, o.financier))
                        for o in _rows(
                            s, select(AdvanceOffer).where(AdvanceOffer.request_id == a.advance_id)
                        )
                    ],
                )
                for a in advances
            ],
            "jobs": [
                (
                    j,
                    [
                        (b, _name(s, b.carrier))
                        for b in _rows(
                            s,
                            select(TransportBid)
                            .where(TransportBid.job_id == j.job_id)
                            .order_by(col(TransportBid.bid_id)),
                        )
                    ],
                )
                for j in jobs
            ],
            "payouts_svg": _farmer_payouts_svg(s, me, lang),
        }


def _farmer_payouts_svg(s: Session, cooperative: str, lang: i18n.Lang) -> str:
    """Payouts per farmer of the cooperative (its own farmers: names shown to it)."""
    rows = s.exec(
        select(Payout.payee, func.sum(Payout.amount))
        .join(Lot, col(Lot.lot_id) == col(Payout.lot_id))
        .where(Payout.kind == "farmer")
        .where(Lot.cooperative == cooperative)
        .group_by(col(Payout.payee))
    ).all()
    if not rows:
        return ""
    names = {
        p.address: p.name
        for p in s.exec(
            select(FarmerProfile).where(col(FarmerProfile.address).in_([r[0] for r in rows]))
        ).all()
    }
    items = sorted(
        (
            svg.Bar(names.get(payee, payee[:10]), int(total), i18n.money(int(total), lang))
            for payee, total in rows
        ),
        key=lambda b: -b.value,
    )
    return svg.bars(i18n.t(lang, "payouts"), items)


def _waterfall_svg(s: Session, order: SaleOrder, lang: i18n.Lang) -> str:
    parts: dict[str, int] = {}
    for p in s.exec(select(Payout).where(Payout.order_id == order.order_id)).all():
        parts[p.kind] = parts.get(p.kind, 0) + int(p.amount)
    if not parts:
        return ""
    kinds = sorted(parts, key=lambda k: (k != "farmer", k))
    bars = [
        svg.Bar(
            i18n.t(lang, f"kind_{k}") if f"kind_{k}" in i18n.CATALOGUE else k,
            parts[k],
            i18n.money(parts[k], lang),
        )
        for k in kinds
    ]
    return svg.waterfall(
        f"{i18n.t(lang, 'where_money')} — {i18n.t(lang, 'order')} {order.order_id}",
        i18n.t(lang, "sale"),
        i18n.money(sum(parts.values()), lang),
        bars,
    )


def read_exporter(runtime: Runtime, actor: Actor, lang: i18n.Lang) -> dict[str, Any]:
    me = actor.organisation
    with Session(runtime.engine) as s:
        out = []
        for o in _rows(
            s,
            select(SaleOrder)
            .where(SaleOrder.exporter == me)
            .order_by(col(SaleOrder.order_id).desc())
            .limit(LIST),
        ):
            lots = (
                _rows(
                    s,
                    select(ConsignmentLot)
                    .where(ConsignmentLot.consignment_id == o.consignment_id)
                    .order_by(col(ConsignmentLot.lot_id)),
                )
                if o.consignment_id
                else []
            )
            out.append(
                {
                    "order": o,
                    "cooperative": _name(s, o.cooperative),
                    "lots": lots,
                    "waterfall": _waterfall_svg(s, o, lang),
                }
            )
        return {"me": _name(s, me), "orders": out}


def history(s: Session, cooperative: str) -> dict[str, Any]:
    """What a lender reads about a cooperative, from the chain's facts only."""
    delivered = s.exec(
        select(func.count())
        .select_from(SaleOrder)
        .where(SaleOrder.cooperative == cooperative)
        .where(
            col(SaleOrder.status).in_(
                [
                    OrderStatus.DELIVERED.value,
                    OrderStatus.RESOLVED.value,
                    OrderStatus.SETTLING.value,
                    OrderStatus.SETTLED.value,
                ]
            )
        )
    ).one()
    jobs = s.exec(
        select(TransportJob.on_time)
        .where(TransportJob.cooperative == cooperative)
        .where(TransportJob.status == JobStatus.DELIVERED.value)
    ).all()
    repaid = s.exec(
        select(func.count())
        .select_from(AdvanceRepayment)
        .where(AdvanceRepayment.cooperative == cooperative)
    ).one()
    defaulted = s.exec(
        select(func.count())
        .select_from(AdvanceDefault)
        .where(AdvanceDefault.cooperative == cooperative)
    ).one()
    return {
        "orders_delivered": delivered,
        "deliveries": len(jobs),
        "on_time": sum(1 for j in jobs if j),
        "advances_repaid": repaid,
        "advances_defaulted": defaulted,
    }


def read_financier(runtime: Runtime, actor: Actor, lang: i18n.Lang) -> dict[str, Any]:
    me = actor.organisation
    with Session(runtime.engine) as s:
        requests = [
            {
                "advance": a,
                "cooperative": _name(s, a.cooperative),
                "history": history(s, a.cooperative),
                "offers": _rows(
                    s,
                    select(AdvanceOffer)
                    .where(AdvanceOffer.request_id == a.advance_id)
                    .where(AdvanceOffer.financier == me),
                ),
            }
            for a in _rows(
                s,
                select(Advance)
                .where(Advance.status == AdvanceStatus.REQUEST_OPEN.value)
                .order_by(col(Advance.advance_id).desc())
                .limit(LIST),
            )
        ]
        portfolio = [
            (a, _name(s, a.cooperative))
            for a in _rows(
                s,
                select(Advance)
                .where(Advance.financier == me)
                .order_by(col(Advance.advance_id).desc())
                .limit(LIST),
            )
        ]
        agent_orders = [
            {
                "order": o,
                "cooperative": _name(s, o.cooperative),
                "exporter": _name(s, o.exporter),
                "documents": json.loads(o.document_hashes) if o.document_hashes else [],
                "state": ReleaseState(o.release_state).name.lower(),
                "can_decide": o.release_state == ReleaseState.PRESENTED.value,
            }
            for o in _rows(
                s,
                select(SaleOrder)
                .where(SaleOrder.release_agent == me)
                .order_by(col(SaleOrder.order_id).desc())
                .limit(LIST),
            )
        ]
        return {
            "me": _name(s, me),
            "requests": requests,
            "portfolio": portfolio,
            "agent_orders": agent_orders,
        }


def read_carrier(runtime: Runtime, actor: Actor, lang: i18n.Lang) -> dict[str, Any]:
    me = actor.organisation
    with Session(runtime.engine) as s:
        open_jobs = [
            (j, _name(s, j.cooperative))
            for j in _rows(
                s,
                select(TransportJob)
                .where(TransportJob.status == JobStatus.OPEN.value)
                .order_by(col(TransportJob.job_id).desc())
                .limit(LIST),
            )
        ]
        bids = _rows(
            s,
            select(TransportBid)
            .where(TransportBid.carrier == me)
            .order_by(col(TransportBid.bid_id).desc())
            .limit(LIST),
        )
        jobs = []
        for j in _rows(
            s,
            select(TransportJob)
            .where(TransportJob.carrier == me)
            .order_by(col(TransportJob.job_id).desc())
            .limit(LIST),
        ):
            consignment = s.get(Consignment, j.consignment_id)
            order = s.get(SaleOrder, j.order_id)
            jobs.append(
                {
                    "job": j,
                    "consignment": consignment,
                    "exporter": order.exporter if order else None,
                    "holding": consignment is not None
                    and consignment.custodian.lower() == me.lower(),
                    "incoming": consignment is not None
                    and (consignment.pending_custodian or "").lower() == me.lower(),
                }
            )
        return {"me": _name(s, me), "open_jobs": open_jobs, "bids": bids, "jobs": jobs}


def read_operator(runtime: Runtime, actor: Actor, lang: i18n.Lang) -> dict[str, Any]:
    with Session(runtime.engine) as s:
        orgs = _rows(s, select(OrganisationProfile).order_by(col(OrganisationProfile.display_name)))
        disputes = [
            (o, _name(s, o.exporter), _name(s, o.cooperative))
            for o in _rows(
                s, select(SaleOrder).where(SaleOrder.status == OrderStatus.DISPUTED.value)
            )
        ]
        outbox = dict(
            s.exec(select(OutboxTx.status, func.count()).group_by(col(OutboxTx.status))).all()
        )
        oldest = s.exec(
            select(func.min(OutboxTx.created_at)).where(
                col(OutboxTx.status).in_(["queued", "signed", "sent"])
            )
        ).one()
        cursor = s.exec(select(MirrorCursor)).first()
        sms = _sms_outbox(s)
    try:
        head: int | None = int(runtime.rpc.call("eth_blockNumber"), 16)
    except Exception:  # the node is down: the page says so
        head = None
    try:
        gas = organisations.gas_spend(runtime, actor)
    except Exception:  # no chain, no budget: the rest of the page still shows
        gas = []
    return {
        "organisations": orgs,
        "keys": organisations.active_keys(runtime),
        "roles": [r.value for r in MARKET_ROLES],
        "disputes": disputes,
        "outbox": outbox,
        "oldest_pending": oldest,
        "mirror_block": cursor.last_block if cursor else None,
        "chain_head": head,
        "gas": gas,
        "sms": sms,
    }


def _sms_outbox(s: Session) -> dict[str, Any]:
    """The gateway's queue, read as rows (a channel does not import another's models)."""
    try:
        counts = dict(
            s.execute(text("SELECT status, count(*) FROM sms_outbound GROUP BY status")).all()
        )
        recent = s.execute(
            text(
                "SELECT id, phone, kind, status, attempts, created_at FROM sms_outbound"
                " ORDER BY id DESC LIMIT 20"
            )
        ).all()
    except Exception:  # no gateway tables (an older database): nothing to show
        s.rollback()
        return {"counts": {}, "recent": []}
    return {
        "counts": counts,
        # Phone numbers are personal: the last three digits are enough to tell them apart.
        "recent": [
            {
                "id": r[0],
                "phone": "…" + str(r[1])[-3:],
                "kind": r[2],
                "status": r[3],
                "attempts": r[4],
                "created_at": r[5],
            }
            for r in recent
        ],
    }


def read_other(runtime: Runtime, actor: Actor, lang: i18n.Lang) -> dict[str, Any]:
    with Session(runtime.engine) as s:
        return {"me": _name(s, actor.organisation)}


READERS: dict[Role, Callable[[Runtime, Actor, i18n.Lang], dict[str, Any]]] = {
    Role.COOPERATIVE: read_cooperative,
    Role.EXPORTER: read_exporter,
    Role.FINANCIER: read_financier,
    Role.LOGISTICS: read_carrier,
    Role.OPERATOR: read_operator,
    Role.INSPECTOR: read_other,
    Role.ARBITER: read_other,
}


# ---------------------------------------------------------------------- pending transactions


def _tx_ids(value: str | None) -> list[int]:
    out = []
    for part in (value or "").split(","):
        if part.strip().isascii() and part.strip().isdigit() and len(part.strip()) < 19:
            out.append(int(part.strip()))
    return out[:20]


@dataclass
class Pending:
    rows: list[OutboxTx]
    final: bool
    ids: str


def _tx_rows(request: Request, actor: Actor, ids: list[int]) -> Pending:
    runtime = runtime_of(request)
    rows = [
        r
        for r in writes.load(runtime, ids)
        # Only the organisation's own transactions (the operator sees all).
        if actor.role is Role.OPERATOR or r.sender.lower() == actor.organisation.lower()
    ]
    mirror = bool(getattr(request.app.state, "mirror_running", False))
    done = all(TxStatus(r.status).final for r in rows) and (
        any(r.status == TxStatus.FAILED for r in rows)
        or writes.final(runtime, rows, mirror_running=mirror)
    )
    return Pending(rows, done, ",".join(str(r.id) for r in rows))


@router.get("/app/tx/status", response_class=HTMLResponse)
async def tx_status(request: Request) -> Response:
    """The pending panel alone (htmx polls it); a full reload once all are final."""
    runtime = runtime_of(request)
    signed = await run_in_threadpool(auth.current, runtime, request)
    if signed is None:
        return Response(status_code=401)
    pending = await run_in_threadpool(
        _tx_rows, request, signed[0], _tx_ids(request.query_params.get("tx"))
    )
    response = render(request, "_pending.html", pending=pending)
    if pending.final and request.headers.get("hx-request"):
        response.headers["HX-Refresh"] = "true"  # the lists now show what was mined
    return response


# ---------------------------------------------------------------------- actions


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _int(form: FormData, name: str) -> int:
    value = _text(form, name)
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise InvalidInput(f"{name} must be a whole number", field=name)
    return int(value)


#: A number as people type it on a form: digits, and a decimal point or comma. Not what
#: Python's Decimal also reads (``1e999999``, ``NaN``, ``1_000``, other scripts' digits).
_NUMBER = re.compile(r"[0-9]{1,30}(?:\.[0-9]{1,30})?")
#: Thousands separators people put in (French and Kreyòl write ``1 250,5``).
_SPACES = str.maketrans("", "", " \u00a0\u202f")


def _decimal(form: FormData, name: str, places: int) -> int:
    """``"12.5"`` or ``"1 250,5"`` with ``places`` decimals as an exact integer (USD ->
    minor units, kg -> g)."""
    value = _text(form, name).translate(_SPACES).replace(",", ".")
    if not _NUMBER.fullmatch(value):
        raise InvalidInput(f"{name} must be a number like 12.5", field=name)
    whole, _, fraction = value.partition(".")
    if len(fraction.rstrip("0")) > places:
        raise InvalidInput(f"{name} has more than {places} decimals", field=name)
    scale: int = 10**places
    return int(whole) * scale + int(fraction.ljust(places, "0")[:places] or "0")


def _phone(runtime: Runtime, form: FormData, name: str) -> str | None:
    """A phone as a person types it (``3700 1234``, ``+509 3700-1234``), as E.164."""
    value = _text(form, name)
    if not value:
        return None
    try:
        return phones.normalise(value, runtime.settings.sms_default_region)
    except phones.BadPhone:
        raise InvalidInput(
            f"{name} must be a phone number, e.g. +509 3700 1234", field=name
        ) from None


def _hash_of(form: FormData, name: str) -> str:
    """A reason typed by a person, kept off chain: the chain gets its keccak256."""
    value = _text(form, name)
    if not value:
        raise InvalidInput(f"{name} is required", field=name)
    return "0x" + keccak(text=value).hex()


def _chain_now(runtime: Runtime) -> int:
    return int(runtime.rpc.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


Action = Callable[[Runtime, Actor, FormData, str], "Outcome | dict[str, Any]"]
ACTIONS: dict[str, tuple[Role, Action]] = {}


def action(name: str, role: Role) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = (role, fn)
        return fn

    return register


# cooperative
@action("enrol-farmer", Role.COOPERATIVE)
def _enrol(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    farmer = farmers.FarmerInput(name=_text(form, "name"), phone=_phone(runtime, form, "phone"))
    return farmers.enrol_farmer(runtime, actor, farmer, idempotency_key=key)


@action("accept-order", Role.COOPERATIVE)
def _accept(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return orders.accept(runtime, actor, _int(form, "order_id"), idempotency_key=key)


@action("request-advance", Role.COOPERATIVE)
def _request_advance(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return finance.request_advance(
        runtime, actor, _int(form, "order_id"), _decimal(form, "amount", 6), idempotency_key=key
    )


@action("accept-offer", Role.COOPERATIVE)
def _accept_offer(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return finance.accept_offer(runtime, actor, _int(form, "offer_id"), idempotency_key=key)


@action("award-bid", Role.COOPERATIVE)
def _award(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return logistics.award(
        runtime, actor, _int(form, "job_id"), _int(form, "bid_id"), idempotency_key=key
    )


# exporter
@action("fund-order", Role.EXPORTER)
def _fund(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return orders.fund(runtime, actor, _int(form, "order_id"), idempotency_key=key)


@action("confirm-shipment", Role.EXPORTER)
def _confirm(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    rejected = []
    for value in form.getlist("rejected_lots"):
        if (
            not isinstance(value, str)
            or not (value.isascii() and value.isdigit())
            or len(value) > 19
        ):
            raise InvalidInput("rejected lots are lot ids", field="rejected_lots")
        rejected.append(int(value))
    return orders.confirm_delivery(
        runtime,
        actor,
        _int(form, "order_id"),
        _decimal(form, "accepted_kg", 3),
        rejected,
        idempotency_key=key,
    )


@action("dispute", Role.EXPORTER)
def _dispute(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return orders.dispute(
        runtime, actor, _int(form, "order_id"), _hash_of(form, "reason"), idempotency_key=key
    )


# financier
@action("make-offer", Role.FINANCIER)
def _offer(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    days = _int(form, "days")
    if not 1 <= days <= 365:
        raise InvalidInput("the offer stands 1 to 365 days", field="days")
    return finance.make_offer(
        runtime,
        actor,
        _int(form, "advance_id"),
        _decimal(form, "amount", 6),
        _decimal(form, "fee", 6),
        _chain_now(runtime) + days * DAY,
        idempotency_key=key,
    )


@action("release", Role.FINANCIER)
def _release(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return release.release(
        runtime,
        actor,
        _int(form, "order_id"),
        _text(form, "documents_hash"),
        _text(form, "waive") == "yes",
        idempotency_key=key,
    )


@action("refuse", Role.FINANCIER)
def _refuse(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return release.refuse(
        runtime, actor, _int(form, "order_id"), _hash_of(form, "reason"), idempotency_key=key
    )


# carrier
@action("bid", Role.LOGISTICS)
def _bid(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    days = _int(form, "days")
    if not 0 <= days <= 365:
        raise InvalidInput("delivery in 0 to 365 days", field="days")
    return logistics.place_bid(
        runtime,
        actor,
        _int(form, "job_id"),
        _decimal(form, "fee", 6),
        _chain_now(runtime) + days * DAY,
        idempotency_key=key,
    )


def _step(runtime: Runtime, form: FormData) -> custody.CustodyStep:
    return custody.CustodyStep(at=_chain_now(runtime), geohash=_text(form, "area"))


@action("receive", Role.LOGISTICS)
def _receive(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return custody.confirm_receipt(
        runtime, actor, _int(form, "consignment_id"), _step(runtime, form), idempotency_key=key
    )


@action("pickup", Role.LOGISTICS)
def _pickup(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return logistics.pickup(runtime, actor, _int(form, "job_id"), idempotency_key=key)


@action("hand-over", Role.LOGISTICS)
def _hand_over(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return custody.hand_over(
        runtime,
        actor,
        _int(form, "consignment_id"),
        _text(form, "to"),
        _step(runtime, form),
        idempotency_key=key,
    )


@action("delivery", Role.LOGISTICS)
def _delivery(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    return logistics.delivery(runtime, actor, _int(form, "job_id"), idempotency_key=key)


# operator
@action("create-organisation", Role.OPERATOR)
def _create_org(runtime: Runtime, actor: Actor, form: FormData, key: str) -> Outcome:
    role = _text(form, "role")
    if role not in {r.value for r in MARKET_ROLES}:
        raise InvalidInput("choose a role", field="role")
    body = organisations.OrganisationInput(name=_text(form, "name"), role=Role(role))
    return organisations.create_organisation(runtime, actor, body, idempotency_key=key)


@action("issue-key", Role.OPERATOR)
def _issue_key(runtime: Runtime, actor: Actor, form: FormData, key: str) -> dict[str, Any]:
    issued = organisations.issue_key(
        runtime, actor, _text(form, "address"), _text(form, "label") or None, idempotency_key=key
    )
    return {"key": issued.secret, "key_prefix": issued.prefix, "key_org": issued.organisation}


@action("add-user", Role.OPERATOR)
def _add_user(runtime: Runtime, actor: Actor, form: FormData, key: str) -> dict[str, Any]:
    org = organisations.organisation(runtime, _text(form, "address"))
    role = Role(org.kind) if org.kind in {r.value for r in Role} else None
    if role is None:
        raise InvalidInput("this organisation has no role", field="address")
    user = auth.create_user(
        runtime, actor, org.address, role, _text(form, "username"), _text(form, "password")
    )
    return {"user": user.username, "user_org": org.display_name}


@router.post("/app/do/{name}", response_class=HTMLResponse)
async def do(name: str, request: Request) -> Response:
    runtime = runtime_of(request)
    signed = await run_in_threadpool(auth.current, runtime, request)
    if signed is None:
        return RedirectResponse("/login", status_code=303)
    actor, session_row = signed
    form = await request.form()
    if not auth.csrf_ok(session_row.csrf_token, _text(form, "csrf")):
        return await _dashboard(
            request, actor, session_row.csrf_token, error=FormError("err_csrf"), status_code=403
        )
    entry = ACTIONS.get(name)
    if entry is None or entry[0] is not actor.role:
        return await _dashboard(
            request,
            actor,
            session_row.csrf_token,
            error=FormError("err_forbidden"),
            status_code=403,
        )
    idem = _text(form, "idem")[:64] or None
    key = f"web:{idem}" if idem else secrets.token_urlsafe(12)
    try:
        result = await run_in_threadpool(entry[1], runtime, actor, form, key)
    except ServiceError as exc:
        return await _dashboard(
            request, actor, session_row.csrf_token, error=FormError.of(exc), status_code=exc.status
        )
    if isinstance(result, dict):
        return await _dashboard(request, actor, session_row.csrf_token, shown=result)
    await _settle(request, actor, [r.id for r in result.transactions if r.id is not None])
    ids = ",".join(str(r.id) for r in result.transactions)
    return RedirectResponse(f"/app/{PAGES[actor.role]}?tx={ids}", status_code=303)


#: A form's transactions are usually mined and mirrored within tens of milliseconds (the
#: write nudges the outbox): waiting this long first, the page it leads to shows them done
#: instead of a pending panel that reloads the page a second later.
SETTLE_SECONDS = 1.5


async def _settle(request: Request, actor: Actor, ids: list[int]) -> None:
    if not ids:
        return
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        if (await run_in_threadpool(_tx_rows, request, actor, ids)).final:
            return
        await asyncio.sleep(0.03)


# ---------------------------------------------------------------------- label sheets


def _sheet(runtime: Runtime, settings: Settings, actor: Actor, ids: list[int]) -> bytes:
    gtins = digital_link.parse_gtins(settings.gtins)
    base = settings.effective_public_base_url
    labels = []
    with Session(runtime.engine) as s:
        coop = _name(s, actor.organisation)
        for lot_id in ids:
            lot = s.get(Lot, lot_id)
            if lot is None or lot.cooperative.lower() != actor.organisation.lower():
                raise InvalidInput(f"lot {lot_id} is not this cooperative's", field="ids")
            labels.append(
                pdf.Label(
                    uri=digital_link.label_uri(base, gtins, "lot", lot.lot_id, lot.crop),
                    title=f"Lot {lot.lot_id}",
                    lines=[
                        f"{i18n.kilograms(int(lot.grams), 'en')} {i18n.crop(lot.crop, 'en')}",
                        f"Grade {lot.grade}",
                        i18n.day(lot.harvest_time, "en"),
                        coop,
                    ],
                )
            )
    return pdf.label_sheet(labels)


@router.get("/app/cooperative/labels.pdf")
async def label_sheet(request: Request) -> Response:
    """The cooperative prints the labels of the lots it ticked (an A4 sheet, PDF)."""
    runtime = runtime_of(request)
    signed = await run_in_threadpool(auth.current, runtime, request)
    if signed is None:
        return RedirectResponse("/login", status_code=303)
    actor, session_row = signed
    if actor.role is not Role.COOPERATIVE:
        return Response(status_code=403)
    ids = [
        int(v)
        for v in request.query_params.getlist("lot")
        if v.isascii() and v.isdigit() and len(v) < 19
    ]
    if not 1 <= len(ids) <= 210:
        return await _dashboard(
            request,
            actor,
            session_row.csrf_token,
            error=FormError("err_labels_count"),
            status_code=422,
        )
    settings: Settings = request.app.state.settings
    try:
        body = await run_in_threadpool(_sheet, runtime, settings, actor, ids)
    except ServiceError as exc:
        return await _dashboard(
            request, actor, session_row.csrf_token, error=FormError.of(exc), status_code=exc.status
        )
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": 'inline; filename="konbit-labels.pdf"'},
    )
