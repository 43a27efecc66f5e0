"""Inbound webhooks in the providers' own formats: Twilio SMS, Africa's Talking SMS and USSD.

* ``POST /sms/twilio``: form fields ``From``, ``To``, ``Body``, ``MessageSid``, ...;
  ``X-Twilio-Signature`` is checked with the ``twilio`` package's ``RequestValidator``
  against the public URL (``KONBIT_PUBLIC_BASE_URL`` + path + query: the URL Twilio saw,
  behind a proxy too). A wrong or missing signature is 403 and records nothing. The reply is
  TwiML. ``POST /sms/twilio/status``: Twilio's status callbacks (signed the same way).
* ``POST /sms/africastalking/{secret}`` (``from``, ``to``, ``text``, ``date``, ``id``,
  ``linkId``, ``networkCode``), ``POST /sms/africastalking/{secret}/delivery`` (delivery
  reports), ``POST /ussd/africastalking/{secret}`` (``sessionId``, ``serviceCode``,
  ``phoneNumber``, ``networkCode``, ``text``). Africa's Talking signs nothing: the path
  secret (``KONBIT_AT_WEBHOOK_SECRET``) and an optional source allow-list
  (``KONBIT_AT_ALLOWED_SOURCES``) are the check; anything else is 404 and records nothing.
  SMS replies go out through the send API (queued in ``sms_outbound``).

A message is handled once per provider message id: a retried webhook gets the first reply.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict

from konbit.profiles.models import utcnow
from konbit.profiles.phones import masked, try_normalise
from konbit.runtime import Runtime
from konbit.settings import Settings
from konbit.sms import outbound
from konbit.sms.conversation import Party, respond
from konbit.sms.gateway import Gateway, SqlSessionStore
from konbit.sms.messages import DEFAULT_LANGUAGE, Reply, t
from konbit.sms.models import InStatus, SmsInbound
from konbit.sms.providers import africastalking as at
from konbit.sms.providers import twilio as tw
from konbit.sms.ussd import UssdMachine, screen

log = logging.getLogger(__name__)

router = APIRouter(tags=["sms and ussd"])

MAX_BODY = 2000
_inbound = SmsInbound.__table__  # type: ignore[attr-defined]
_FIRST_REPLY = sa.select(_inbound.c.reply, _inbound.c.language).where(
    _inbound.c.provider == sa.bindparam("provider"),
    _inbound.c.provider_id == sa.bindparam("provider_id"),
)
_RECORD = sa.insert(_inbound).returning(_inbound.c.id)
XML = "application/xml"
FORM_BODY = {
    "content": {
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
    }
}


# ------------------------------------------------------------------------------ shared


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway | None = getattr(request.app.state, "sms_gateway", None)
    if gateway is None:
        gateway = Gateway(
            _runtime(request),
            mirror_running=bool(getattr(request.app.state, "mirror_running", False)),
        )
        request.app.state.sms_gateway = gateway
    return gateway


@dataclass(frozen=True)
class Handled:
    reply: str
    language: str
    replayed: bool


def handle_sms(
    gateway: Gateway,
    provider: str,
    message_id: str,
    sender: str,
    recipient: str | None,
    body: str,
    *,
    queue_reply: bool = False,
) -> Handled:
    """Answer one inbound SMS once; a repeat of ``(provider, message_id)`` gets the first reply.

    ``queue_reply``: the reply goes out through the provider's send API (Africa's Talking)
    rather than in the webhook's answer.
    """
    settings = gateway.runtime.settings
    message_id = message_id[:100]
    with gateway.engine.connect() as connection:
        first = connection.execute(
            _FIRST_REPLY, {"provider": provider, "provider_id": message_id}
        ).first()
    if first is not None:
        return Handled(first.reply or "", first.language or DEFAULT_LANGUAGE, True)
    phone = try_normalise(sender, settings.sms_default_region)
    party = gateway.identify(phone) if phone is not None else Party(phone="")
    try:
        reply = respond(body[:MAX_BODY], party, gateway, key=f"sms:{provider}:{message_id}")
    except Exception:  # never a 500 to the provider: it would retry, the phone gets nothing
        log.exception("SMS from %s could not be answered", masked(phone or sender))
        lang = party.language or DEFAULT_LANGUAGE
        reply = Reply(t("unavailable", lang), lang, "unavailable")
    row = {
        "provider": provider,
        "provider_id": message_id,
        "phone": (phone or sender)[:40],
        "recipient": (recipient or "")[:40] or None,
        "body": body[:MAX_BODY],
        "language": reply.lang,
        "reply": reply.text,
        "reply_key": reply.key[:40],
        "status": InStatus.QUEUED_REPLY if queue_reply and phone else InStatus.ANSWERED,
        "received_at": utcnow(),
    }
    # A Core insert: the ORM's unit of work cost more than the rest of a query SMS.
    with Session(gateway.engine) as session:
        try:
            inbound_id = session.execute(_RECORD, row).scalar_one()
            if queue_reply and phone:
                message = outbound.Message(
                    phone, reply.text, reply.lang, "reply", inbound_id=inbound_id
                )
                outbound.enqueue_many(session, [message])
            session.commit()
        except IntegrityError:  # the same message, handled concurrently: its reply stands
            session.rollback()
            return handle_sms(gateway, provider, message_id, sender, recipient, body)
    return Handled(reply.text, reply.lang, False)


def _public_url(settings: Settings, request: Request) -> str:
    url = settings.effective_public_base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def _read_form(request: Request) -> ImmutableMultiDict[str, Any]:
    """The posted form. Providers post ``application/x-www-form-urlencoded``: parsed here
    with the standard library (decoded as Starlette decodes it: percent-escapes as UTF-8),
    a tenth of python-multipart's time per SMS, which walks the body byte by byte."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        body = (await request.body()).decode("latin-1")
        return ImmutableMultiDict(
            parse_qsl(body, keep_blank_values=True, encoding="utf-8", errors="replace")
        )
    return await request.form()


async def _form(request: Request) -> dict[str, Any]:
    try:
        form = await _read_form(request)
    except Exception:
        raise HTTPException(400, "expected a form (application/x-www-form-urlencoded)") from None
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


def _field(form: dict[str, Any], name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


# ------------------------------------------------------------------------------ Twilio


async def _twilio_form(request: Request) -> dict[str, Any]:
    """The form, once its signature is Twilio's; 403 (recording nothing) otherwise."""
    settings: Settings = request.app.state.settings
    token = settings.twilio_auth_token
    if token is None:
        raise HTTPException(404, "Twilio is not configured on this server")
    try:
        form = await _read_form(request)
    except Exception:
        raise HTTPException(403, "the request is not signed by Twilio") from None
    signature = request.headers.get("X-Twilio-Signature")
    valid = tw.valid_signature(
        token.get_secret_value(),
        _public_url(settings, request),
        form,
        signature,
        request.headers.get("X-Twilio-Webhooks-Signature-Settings"),
    )
    if not valid:
        raise HTTPException(403, "the request is not signed by Twilio")
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


@router.post(
    "/sms/twilio",
    response_class=Response,
    openapi_extra={"requestBody": FORM_BODY},
    responses={
        200: {"description": "TwiML with the reply", "content": {XML: {}}},
        403: {"description": "The signature is missing or not Twilio's"},
        404: {"description": "Twilio is not configured"},
    },
)
async def twilio_sms(request: Request) -> Response:
    """An SMS through Twilio; answers TwiML with the reply."""
    form = await _twilio_form(request)
    gateway = gateway_of(request)
    message_id = _field(form, "MessageSid", 100) or _field(form, "SmsSid", 100)
    if not message_id:
        raise HTTPException(400, "MessageSid is missing")
    handled = await run_in_threadpool(
        handle_sms,
        gateway,
        "twilio",
        message_id,
        _field(form, "From", 40),
        _field(form, "To", 40),
        _field(form, "Body", MAX_BODY),
    )
    return Response(tw.twiml(handled.reply), media_type=XML)


@router.post(
    "/sms/twilio/status",
    status_code=204,
    openapi_extra={"requestBody": FORM_BODY},
    responses={
        403: {"description": "The signature is missing or not Twilio's"},
        404: {"description": "Twilio is not configured on this server"},
    },
)
async def twilio_status(request: Request) -> Response:
    """Twilio's delivery status of a message we sent."""
    form = await _twilio_form(request)
    sid, status, error = tw.status_of(form)
    if sid and status:
        await run_in_threadpool(
            outbound.record_status, _runtime(request).engine, "twilio", sid, status, error
        )
    return Response(status_code=204)


# ------------------------------------------------------------------------------ Africa's Talking


def _check_at(request: Request, secret: str) -> Settings:
    """404 unless the path secret is right (and the source allowed): nothing is recorded."""
    settings: Settings = request.app.state.settings
    expected = settings.at_webhook_secret
    if expected is None or not hmac.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(404, "Not Found")
    if settings.at_allowed_sources:
        host = request.client.host if request.client else ""
        if not _allowed(host, settings.at_allowed_sources):
            raise HTTPException(404, "Not Found")
    return settings


def _allowed(host: str, spec: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


@router.post(
    "/sms/africastalking/{secret}",
    response_class=PlainTextResponse,
    openapi_extra={"requestBody": FORM_BODY},
    responses={404: {"description": "Wrong path secret, or a source not allowed"}},
)
async def africastalking_sms(secret: str, request: Request) -> PlainTextResponse:
    """An SMS through Africa's Talking; the reply is sent through its API."""
    _check_at(request, secret)
    form = await _form(request)
    message_id = _field(form, "id", 100) or f"at-{uuid.uuid4().hex}"
    await run_in_threadpool(
        handle_sms,
        gateway_of(request),
        "africastalking",
        message_id,
        _field(form, "from", 40),
        _field(form, "to", 40),
        _field(form, "text", MAX_BODY),
        queue_reply=True,
    )
    return PlainTextResponse("OK")


@router.post(
    "/sms/africastalking/{secret}/delivery",
    status_code=204,
    openapi_extra={"requestBody": FORM_BODY},
    responses={404: {"description": "Wrong path secret, or a source not allowed"}},
)
async def africastalking_delivery(secret: str, request: Request) -> Response:
    """Africa's Talking's delivery report of a message we sent."""
    _check_at(request, secret)
    form = await _form(request)
    message_id, status, reason = at.report_of(form)
    if message_id and status:
        await run_in_threadpool(
            outbound.record_status,
            _runtime(request).engine,
            "africastalking",
            message_id,
            status,
            reason,
        )
    return Response(status_code=204)


@router.post(
    "/ussd/africastalking/{secret}",
    response_class=PlainTextResponse,
    openapi_extra={"requestBody": FORM_BODY},
    responses={
        200: {"description": "`CON ...` (wait for input) or `END ...` (close)"},
        404: {"description": "Wrong path secret, or a source not allowed"},
    },
)
async def africastalking_ussd(secret: str, request: Request) -> PlainTextResponse:
    """One step of a USSD session (Africa's Talking's protocol)."""
    settings = _check_at(request, secret)
    form = await _form(request)
    session_id = _field(form, "sessionId", 100)
    if not session_id:
        raise HTTPException(400, "sessionId is missing")
    reply = await run_in_threadpool(
        handle_ussd,
        gateway_of(request),
        "africastalking",
        session_id,
        _field(form, "phoneNumber", 40),
        _field(form, "text", 400),
        settings,
    )
    return PlainTextResponse(reply)


def handle_ussd(
    gateway: Gateway, provider: str, session_id: str, phone_raw: str, text: str, settings: Settings
) -> str:
    phone = try_normalise(phone_raw, settings.sms_default_region)
    party = gateway.identify(phone) if phone is not None else Party(phone="")
    machine = UssdMachine(
        gateway,
        SqlSessionStore(gateway.runtime, provider),
        resume_seconds=settings.ussd_resume_seconds,
    )
    try:
        return machine.handle(f"{provider}:{session_id}"[:100], phone or phone_raw, text, party)
    except Exception:
        log.exception("USSD session of %s failed", masked(phone or phone_raw))
        lang = party.language or DEFAULT_LANGUAGE
        return screen("END", [t("unavailable", lang)])
