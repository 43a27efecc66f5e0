"""Templates, the reader's language and the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from konbit.mirror.models import (
    AdvanceStatus,
    ConsignmentStatus,
    JobStatus,
    OfferStatus,
    OrderStatus,
)
from konbit.runtime import Runtime
from konbit.web import i18n

HERE = Path(__file__).resolve().parent
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(
    O=OrderStatus,
    J=JobStatus,
    A=AdvanceStatus,
    OF=OfferStatus,
)
# Our own stylesheet, inlined (one request per page).
env.globals["STYLE"] = Markup(  # noqa: S704
    (HERE / "static" / "konbit.css").read_text(encoding="utf-8")
)

#: Pages load only what Konbit serves itself; inline styles for the one-request trace page.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def area(value: str | None) -> str:
    """The coarse area (at most 5 geohash characters) of a stored geohash, text or 0x-hex."""
    if not value:
        return ""
    if value.startswith("0x"):
        try:
            value = bytes.fromhex(value[2:]).rstrip(b"\0").decode("ascii")
        except (ValueError, UnicodeDecodeError):
            return ""
    return value[:5]


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def language(request: Request) -> i18n.Lang:
    return i18n.negotiate(
        request.query_params.get("lang"),
        request.cookies.get(i18n.COOKIE),
        request.headers.get("accept-language"),
    )


def short(value: str | None, size: int = 10) -> str:
    """A hash or an address as its first characters (the full value is in the link)."""
    if not value:
        return "—"
    return value if len(value) <= size + 2 else f"{value[: size + 2]}…"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = language(request)
    here = request.url.path
    switch = {code: f"{here}?{_with_lang(request, code)}" for code in i18n.LANGUAGES}

    def tr(key: str, **values: object) -> str:
        return i18n.t(lang, key, **values)

    html = env.get_template(template).render(
        request=request,
        lang=lang,
        t=tr,
        names=i18n.NAMES,
        switch=switch,
        money=lambda v: i18n.money(v, lang),
        kg=lambda v: i18n.kilograms(v, lang),
        day=lambda v: i18n.day(v, lang),
        moment=lambda v: i18n.moment(v, lang),
        crop=lambda v: i18n.crop(v, lang),
        order_status=lambda v: i18n.status(lang, OrderStatus(v).name),
        job_status=lambda v: i18n.status(lang, JobStatus(v).name, "job"),
        advance_status=lambda v: i18n.status(lang, AdvanceStatus(v).name),
        offer_status=lambda v: i18n.status(lang, OfferStatus(v).name),
        consignment_status=lambda v: i18n.status(lang, ConsignmentStatus(v).name),
        status_word=lambda name: i18n.status(lang, name),
        role_word=lambda name: i18n.role(lang, name),
        short=short,
        area=area,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "Accept, Accept-Language, Cookie"
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86_400, samesite="lax", httponly=True)
    return response


def _with_lang(request: Request, code: str) -> str:
    from urllib.parse import urlencode

    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", code))
    return urlencode(params)
