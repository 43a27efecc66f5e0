"""One SMS in, one reply out: who is speaking, what they asked, what to answer.

:func:`respond` is pure given a :class:`Backend` (the real one reads the mirror and calls
the services, :mod:`konbit.sms.gateway`; tests use a fake). It never raises for anything
a sender can type: every path ends in a catalogue text in the reader's language, and a
text that cannot be understood gets one that says exactly what to type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from konbit.services.agents import PinCheck
from konbit.sms import encoding
from konbit.sms.grammar import Command, parse
from konbit.sms.messages import (
    DEFAULT_LANGUAGE,
    Lang,
    Reply,
    crop_name,
    day,
    kilograms,
    money,
    t,
)

#: An SMS reply never takes more than this many parts.
MAX_REPLY_PARTS = 3
DEFAULT_CROP = 1
HARVEST_KEYWORD: dict[Lang, str] = {"ht": "REKOT", "fr": "RECOLTE", "en": "HARVEST"}


@dataclass(frozen=True)
class FarmerRef:
    address: str
    cooperative: str | None
    name: str
    language: Lang


@dataclass(frozen=True)
class AgentRef:
    id: int
    cooperative: str
    name: str
    language: Lang


@dataclass(frozen=True)
class Party:
    """Who is on the phone: a farmer, an agent, both, or nobody Konbit knows."""

    phone: str
    farmer: FarmerRef | None = None
    agent: AgentRef | None = None

    @property
    def known(self) -> bool:
        return self.farmer is not None or self.agent is not None

    @property
    def language(self) -> Lang | None:
        if self.farmer is not None:
            return self.farmer.language
        if self.agent is not None:
            return self.agent.language
        return None

    @property
    def cooperative(self) -> str | None:
        if self.agent is not None:
            return self.agent.cooperative
        return self.farmer.cooperative if self.farmer is not None else None


@dataclass(frozen=True)
class LotView:
    lot_id: int
    crop: int
    grams: int
    grade: int
    harvest_time: int
    status: int  # LotStatus: 1 active, 2 split, 3 rejected
    inspection: int  # 0 none, 1 passed, 2 failed
    consignment_id: int | None = None
    paid_amount: int = 0


@dataclass(frozen=True)
class PaymentView:
    order_id: int
    net: int
    code: str


@dataclass(frozen=True)
class OrderView:
    order_id: int
    crop: int
    price_per_kg: int
    grams: int


@dataclass(frozen=True)
class ReceiptView:
    code: str
    order_id: int
    net: int
    on_chain: bool


@dataclass(frozen=True)
class FarmerLookup:
    """``ok`` (with the farmer), ``bad_code`` (no such code) or ``not_member``."""

    status: str
    farmer: FarmerRef | None = None


@dataclass(frozen=True)
class RecordOutcome:
    """``recorded`` (with the lot id), ``pending`` (recorded, not mined yet), ``refused``,
    ``unavailable``."""

    status: str
    lot_id: int | None = None
    reason: str = ""


@dataclass
class LotRequest:
    agent: AgentRef
    farmer: FarmerRef
    farmer_code: str
    grams: int
    grade: int
    crop: int
    idempotency_key: str


class Backend(Protocol):
    """What a conversation reads and does; :class:`konbit.sms.gateway.Gateway` is the real one."""

    def lots(self, farmer: str, limit: int) -> tuple[list[LotView], int]: ...

    def lot(self, farmer: str, lot_id: int) -> LotView | None: ...

    def payments(self, farmer: str) -> list[PaymentView]: ...

    def orders(self, cooperative: str | None) -> list[OrderView]: ...

    def receipt(self, code: str) -> ReceiptView | None: ...

    def farmer_code(self, address: str) -> str: ...

    def set_language(self, party: Party, lang: Lang) -> None: ...

    def find_farmer(self, cooperative: str, code: str) -> FarmerLookup: ...

    def check_pin(self, agent: AgentRef, pin: str) -> PinCheck: ...

    def record_lot(self, request: LotRequest) -> RecordOutcome: ...


def reply_language(party: Party, command: Command) -> Lang:
    """The profile's language; else the keyword's, when it has only one; else Kreyòl."""
    if party.language is not None:
        return party.language
    if len(command.langs) == 1:
        return command.langs[0]
    return DEFAULT_LANGUAGE


def fits(text: str, parts: int = MAX_REPLY_PARTS) -> bool:
    return encoding.segment(text).count <= parts


def join_fitting(
    head: str,
    lines: list[str],
    tail: Callable[[int], str] | str = "",
    parts: int = MAX_REPLY_PARTS,
) -> str:
    """``head``, as many ``lines`` as fit in ``parts`` SMS, then the tail for that many lines
    (``tail(shown)``, or a fixed text that is dropped if it does not fit)."""
    shown = len(lines)
    while True:
        end = tail(shown) if callable(tail) else tail
        text = "\n".join([head, *lines[:shown], *([end] if end else [])])
        if fits(text, parts):
            return text
        if shown == 0:
            return head if callable(tail) or not end else join_fitting(head, [], "", parts)
        shown -= 1


def lot_status_word(lot: LotView, lang: Lang) -> str:
    if lot.status == 3:
        return t("status_rejected", lang)
    if lot.status == 2:
        return t("status_split", lang)
    if lot.paid_amount:
        return t("status_paid", lang)
    if lot.inspection == 1:
        return t("status_passed", lang)
    if lot.inspection == 2:
        return t("status_failed", lang)
    return t("status_active", lang)


def lot_detail(lot: LotView, lang: Lang) -> str:
    if lot.status == 3:
        status = t("detail_rejected", lang)
    elif lot.status == 2:
        status = t("detail_split", lang)
    elif lot.inspection == 1:
        status = t("detail_passed", lang)
    elif lot.inspection == 2:
        status = t("detail_failed", lang)
    else:
        status = t("detail_waiting", lang)
    if lot.consignment_id:
        status += ". " + t("detail_consignment", lang, consignment=lot.consignment_id)
    if lot.paid_amount:
        status += ". " + t("detail_paid", lang, amount=money(lot.paid_amount, lang))
    return t(
        "lot_detail",
        lang,
        lot=lot.lot_id,
        kg=kilograms(lot.grams, lang),
        crop=crop_name(lot.crop, lang),
        grade=lot.grade,
        date=day(lot.harvest_time, lang),
        status=status,
    )


def lot_line(lot: LotView, lang: Lang) -> str:
    return t(
        "lots_line",
        lang,
        lot=lot.lot_id,
        kg=kilograms(lot.grams, lang),
        crop=crop_name(lot.crop, lang),
        grade=lot.grade,
        status=lot_status_word(lot, lang),
    ).rstrip()


def order_line(order: OrderView, lang: Lang) -> str:
    return t(
        "orders_line",
        lang,
        order=order.order_id,
        crop=crop_name(order.crop, lang),
        price=money(order.price_per_kg, lang),
        kg=kilograms(order.grams, lang),
    )


def payment_line(payment: PaymentView, lang: Lang) -> str:
    return t(
        "payments_line",
        lang,
        order=payment.order_id,
        net=money(payment.net, lang),
        code=payment.code,
    )


def respond(text: str, party: Party, backend: Backend, *, key: str) -> Reply:
    """The reply to ``text`` from ``party``; ``key`` makes a write idempotent (the
    provider's message id: a retried webhook records one lot)."""
    command = parse(text)
    lang = reply_language(party, command)

    def say(key: str, **values: object) -> Reply:
        return Reply(t(key, lang, **values), lang, key)

    kind = command.kind
    if kind == "receipt":  # anyone may check a receipt, even an unknown number
        return _receipt(command, lang, backend)
    if not party.known:
        return say("unknown_number")
    if kind == "help":
        return say("help_agent" if party.agent is not None else "help_farmer")
    if kind == "language":
        if command.language is None:
            return say("language_which")
        backend.set_language(party, command.language)
        return Reply(t("language_set", command.language), command.language, "language_set")
    if kind == "orders":
        orders = backend.orders(party.cooperative)
        if not orders:
            return say("orders_none")
        lines = [order_line(o, lang) for o in orders]
        return Reply(join_fitting(t("orders_head", lang), lines), lang, "orders_head")
    if kind == "harvest":
        if party.agent is None:
            return say("agents_only")
        return _harvest(command, party.agent, lang, backend, key)
    if kind in ("lots", "lot", "payments", "code"):
        if party.farmer is None:
            return say("farmers_only")
        return _farmer_query(command, party.farmer, lang, backend)
    return say("not_understood_agent" if party.agent is not None else "not_understood")


def _farmer_query(command: Command, farmer: FarmerRef, lang: Lang, backend: Backend) -> Reply:
    if command.kind == "code":
        return Reply(t("code", lang, code=backend.farmer_code(farmer.address)), lang, "code")
    if command.kind == "lot":
        assert command.lot_id is not None
        lot = backend.lot(farmer.address, command.lot_id)
        if lot is None:
            return Reply(t("lot_not_yours", lang, lot=command.lot_id), lang, "lot_not_yours")
        return Reply(lot_detail(lot, lang), lang, "lot_detail")
    if command.kind == "lots":
        lots, total = backend.lots(farmer.address, 8)
        if not lots:
            return Reply(t("lots_none", lang), lang, "lots_none")

        def more(shown: int) -> str:
            return t("lots_more", lang, count=total - shown) if shown < total else ""

        lines = [lot_line(lot, lang) for lot in lots]
        return Reply(join_fitting(t("lots_head", lang), lines, more), lang, "lots_head")
    payments = backend.payments(farmer.address)
    if not payments:
        return Reply(t("payments_none", lang), lang, "payments_none")
    lines = [payment_line(p, lang) for p in payments]
    return Reply(join_fitting(t("payments_head", lang), lines), lang, "payments_head")


def _receipt(command: Command, lang: Lang, backend: Backend) -> Reply:
    if not command.receipt:
        return Reply(t("receipt_which", lang), lang, "receipt_which")
    found = backend.receipt(command.receipt)
    if found is None:
        return Reply(t("receipt_unknown", lang), lang, "receipt_unknown")
    key = "receipt_ok" if found.on_chain else "receipt_bad"
    return Reply(
        t(key, lang, code=found.code, order=found.order_id, net=money(found.net, lang)), lang, key
    )


def harvest_example(lang: Lang, typed: tuple[str, ...]) -> str:
    values = list(typed[:3]) + ["10019", "250", "2"][len(typed[:3]) :]
    return f"{HARVEST_KEYWORD[lang]} {' '.join(values)} <PIN>"


def _harvest(command: Command, agent: AgentRef, lang: Lang, backend: Backend, key: str) -> Reply:
    example = harvest_example(lang, command.typed)
    problem = command.problem
    if problem == "need_pin":
        return Reply(t("harvest_need_pin", lang, example=example), lang, "harvest_need_pin")
    if problem == "bad_kg":
        return Reply(t("harvest_bad_kg", lang, example=example), lang, "harvest_bad_kg")
    if problem == "bad_grade":
        return Reply(t("harvest_bad_grade", lang, example=example), lang, "harvest_bad_grade")
    harvest = command.harvest
    if problem is not None or harvest is None or harvest.pin is None:
        return Reply(t("harvest_usage", lang), lang, "harvest_usage")
    found = backend.find_farmer(agent.cooperative, harvest.farmer_code)
    if found.status == "not_member":
        return Reply(
            t("harvest_not_member", lang, code=harvest.farmer_code), lang, "harvest_not_member"
        )
    if found.status != "ok" or found.farmer is None:
        return Reply(
            t("harvest_bad_code", lang, code=harvest.farmer_code[:12], example=example),
            lang,
            "harvest_bad_code",
        )
    pin = pin_reply(backend.check_pin(agent, harvest.pin), lang)
    if pin is not None:
        return pin
    request = LotRequest(
        agent=agent,
        farmer=found.farmer,
        farmer_code=harvest.farmer_code,
        grams=harvest.grams,
        grade=harvest.grade,
        crop=harvest.crop or DEFAULT_CROP,
        idempotency_key=key,
    )
    return record_reply(backend.record_lot(request), request, lang)


def pin_reply(check: PinCheck, lang: Lang) -> Reply | None:
    """None when the PIN is right; else what to tell the agent."""
    if check.ok:
        return None
    if check.locked or check.tries_left <= 0:
        return Reply(t("pin_locked", lang), lang, "pin_locked")
    return Reply(t("pin_wrong", lang, left=check.tries_left), lang, "pin_wrong")


def record_reply(outcome: RecordOutcome, request: LotRequest, lang: Lang) -> Reply:
    values = {
        "kg": kilograms(request.grams, lang),
        "crop": crop_name(request.crop, lang),
        "grade": request.grade,
        "code": request.farmer_code,
    }
    if outcome.status == "recorded":
        return Reply(
            t("lot_recorded_agent", lang, lot=outcome.lot_id, **values), lang, "lot_recorded_agent"
        )
    if outcome.status == "pending":
        return Reply(t("lot_pending_agent", lang, **values), lang, "lot_pending_agent")
    if outcome.status == "refused":
        return Reply(t("lot_refused", lang, reason=outcome.reason[:60]), lang, "lot_refused")
    return Reply(t("unavailable", lang), lang, "unavailable")
