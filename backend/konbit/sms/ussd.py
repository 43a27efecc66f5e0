"""The USSD menu, in the Africa's Talking session protocol.

The network sends every input of a session so far joined by ``*`` (``""`` on the first
request, then ``"1"``, ``"1*10019"``, ...); the reply starts with ``CON `` (show and wait
for input) or ``END `` (show and close) and must fit one screen: at most 182 characters
in all, in the GSM alphabet (a UCS-2 screen holds far fewer), so accented letters outside
it are folded (``ç`` -> ``c``) on USSD only.

The state of each session is kept server side (:class:`SessionStore`): the machine applies
only the inputs it has not seen, and a retried request (same text) gets the same screen.
When the network drops a session in the middle of a task, the next dial from the same
phone within ``resume_seconds`` offers to continue where it stopped.

Menus: my lots, my payments (farmers), record a lot step by step with a confirmation
screen and the agent's PIN (agents), open orders and prices, check a receipt, language.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from konbit.sms import encoding
from konbit.sms.conversation import (
    DEFAULT_CROP,
    Backend,
    FarmerRef,
    LotRequest,
    Party,
    lot_detail,
    lot_line,
    order_line,
    payment_line,
    pin_reply,
    record_reply,
)
from konbit.sms.grammar import MAX_GRADE, kilograms_to_grams
from konbit.sms.messages import (
    CROPS,
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    LANGUAGES,
    Lang,
    crop_name,
    kilograms,
    lang_of,
    money,
    t,
)

#: One USSD screen, prefix included.
SCREEN_MAX = 182
PREFIX_LEN = 4
MAX_INPUT = 200
RESUMABLE = frozenset(
    {"lots", "lot", "payments", "orders", "receipt", "language", "rec_kg", "rec_grade",
     "rec_crop", "rec_confirm"}
)  # fmt: skip


@dataclass
class UssdSession:
    session_id: str
    phone: str
    state: dict[str, Any]
    consumed: int = 0
    last_text: str | None = None
    last_reply: str | None = None
    ended: bool = False
    updated: float = field(default_factory=time.time)


class SessionStore(Protocol):
    def load(self, session_id: str) -> UssdSession | None: ...

    def save(self, session: UssdSession) -> None: ...

    def resumable(self, phone: str, since: float, exclude: str) -> UssdSession | None: ...


class MemoryStore:
    """Sessions in a dict (tests, ``konbit ussd``)."""

    def __init__(self) -> None:
        self.sessions: dict[str, UssdSession] = {}

    def load(self, session_id: str) -> UssdSession | None:
        return self.sessions.get(session_id)

    def save(self, session: UssdSession) -> None:
        self.sessions[session.session_id] = session

    def resumable(self, phone: str, since: float, exclude: str) -> UssdSession | None:
        found = [
            s
            for s in self.sessions.values()
            if s.phone == phone and s.session_id != exclude and not s.ended and s.updated >= since
        ]
        return max(found, key=lambda s: s.updated) if found else None


# ------------------------------------------------------------------------------- text


def gsm_fold(text: str) -> str:
    """Characters outside the GSM alphabet as their base letter (``ç`` -> ``c``), else ``?``."""
    out = []
    for char in text:
        if encoding.gsm_septets(char) is not None:
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and encoding.is_gsm7(base) else "?")
    return "".join(out)


def screen(kind: str, lines: list[str], keep: int = 0) -> str:
    """``CON``/``END`` + lines, folded to GSM; list lines dropped from the end until it fits.

    ``keep`` is how many lines at the end always stay (``0 Menu``).
    """
    body = [gsm_fold(line) for line in lines if line]
    head, tail = (
        body[: len(body) - keep] if keep else body,
        body[len(body) - keep :] if keep else [],
    )
    while True:
        text = f"{kind} " + "\n".join(head + tail)
        if len(text) <= SCREEN_MAX or len(head) <= 1:
            break
        head = head[:-1]
    if len(text) > SCREEN_MAX:
        text = text[: SCREEN_MAX - 3] + "..."
    return text


def valid_screen(reply: str) -> bool:
    return (
        reply.startswith(("CON ", "END ")) and len(reply) <= SCREEN_MAX and encoding.is_gsm7(reply)
    )


# ------------------------------------------------------------------------------- machine


def _number(value: str) -> bool:
    """Digits a keypad types: ASCII only ("¹" and "٣" are digits to ``str.isdigit``)."""
    return value.isascii() and value.isdigit()


@dataclass
class Step:
    """The state after an input, and the END text when the session closes."""

    state: dict[str, Any]
    end: str | None = None


class UssdMachine:
    def __init__(
        self, backend: Backend, store: SessionStore, *, resume_seconds: float = 300.0
    ) -> None:
        self.backend = backend
        self.store = store
        self.resume_seconds = resume_seconds

    def handle(
        self, session_id: str, phone: str, text: str, party: Party, now: float | None = None
    ) -> str:
        """The reply (``CON ...`` or ``END ...``) to one request of a session."""
        now = time.time() if now is None else now
        text = (text or "")[:MAX_INPUT]
        session = self.store.load(session_id)
        if session is not None and session.last_text == text and session.last_reply:
            return session.last_reply  # the network retried the same request
        if not party.known:
            reply = screen("END", [t("unknown_number", DEFAULT_LANGUAGE)])
            self.store.save(
                UssdSession(session_id, phone, {"node": "main"}, 0, text, reply, True, now)
            )
            return reply
        if session is None or session.ended:
            session = UssdSession(session_id, phone, {"node": "main"}, updated=now)
            previous = self.store.resumable(phone, now - self.resume_seconds, session_id)
            if previous is not None:
                previous.ended = True
                self.store.save(previous)
                if previous.state.get("node") in RESUMABLE:
                    session.state = {"node": "resume", "previous": previous.state}
        segments = text.split("*") if text else []
        if len(segments) < session.consumed:  # the network restarted the input: start over
            session.state, session.consumed = {"node": "main"}, 0
        end: str | None = None
        for value in segments[session.consumed :]:
            step = self.apply(session, party, value.strip())
            session.state = step.state
            if step.end is not None:
                end = step.end
                break
        reply = end if end is not None else self.render(session.state, party)
        session.consumed = len(segments)
        session.last_text, session.last_reply = text, reply
        session.ended = end is not None
        session.updated = now
        self.store.save(session)
        return reply

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def lang(state: dict[str, Any], party: Party) -> Lang:
        return lang_of(state.get("lang") or party.language or DEFAULT_LANGUAGE)

    @staticmethod
    def menu(party: Party) -> list[str]:
        items = []
        if party.farmer is not None:
            items += ["lots", "payments"]
        if party.agent is not None:
            items.append("rec_farmer")
        items += ["orders", "receipt", "language"]
        return items

    MENU_LABELS: ClassVar[dict[str, str]] = {
        "lots": "ussd_my_lots",
        "payments": "ussd_my_payments",
        "rec_farmer": "ussd_record_lot",
        "orders": "ussd_orders",
        "receipt": "ussd_check_receipt",
        "language": "ussd_language",
    }

    @staticmethod
    def _with(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
        keep = {k: state[k] for k in ("lang",) if k in state}
        return {**keep, **changes}

    def _again(self, state: dict[str, Any], flash: str | None = None) -> Step:
        return Step({**state, "flash": flash or "ussd_try_again"})

    # ---------------------------------------------------------------- input

    def apply(self, session: UssdSession, party: Party, value: str) -> Step:
        state = {k: v for k, v in session.state.items() if k not in ("flash", "flash_text")}
        node = state.get("node", "main")
        lang = self.lang(state, party)
        if node == "resume":
            if value == "1" and isinstance(state.get("previous"), dict):
                return Step(dict(state["previous"]))
            if value == "2":
                return Step(self._with(state, node="main"))
            return self._again(state)
        if node == "main":
            items = self.menu(party)
            if _number(value) and 1 <= int(value) <= len(items):
                target = items[int(value) - 1]
                return Step(self._with(state, node=target))
            return self._again(state)
        if value == "0" and node not in ("rec_confirm",):
            return Step(self._with(state, node="main"))
        if node == "lots":
            ids = state.get("ids") or []
            if _number(value) and 1 <= int(value) <= len(ids):
                return Step(self._with(state, node="lot", lot_id=ids[int(value) - 1]))
            return self._again(state)
        if node in ("lot", "payments", "orders", "receipt_result"):
            return self._again(state)
        if node == "receipt":
            found = self.backend.receipt(value)
            if found is None:
                message = t("receipt_unknown", lang)
            else:
                key = "receipt_ok" if found.on_chain else "receipt_bad"
                message = t(
                    key, lang, code=found.code, order=found.order_id, net=money(found.net, lang)
                )
            return Step(self._with(state, node="receipt_result", message=message))
        if node == "language":
            if _number(value) and 1 <= int(value) <= len(LANGUAGES):
                chosen = LANGUAGES[int(value) - 1]
                self.backend.set_language(party, chosen)
                return Step(self._with(state, node="main", lang=chosen),
                            end=screen("END", [t("language_set", chosen)]))  # fmt: skip
            return self._again(state)
        if node.startswith("rec_"):
            if party.agent is None:
                return Step(self._with(state, node="main"))
            return self._record(state, party, value, lang, session.session_id)
        return Step(self._with(state, node="main"))

    def _record(
        self, state: dict[str, Any], party: Party, value: str, lang: Lang, session_id: str
    ) -> Step:
        agent = party.agent
        assert agent is not None
        node = state["node"]
        if node == "rec_farmer":
            found = self.backend.find_farmer(agent.cooperative, value)
            if found.status == "not_member":
                return Step({**state, "flash_text": t("harvest_not_member", lang, code=value[:12])})
            if found.status != "ok" or found.farmer is None:
                return self._again(state)
            farmer = found.farmer
            return Step(
                {
                    **state,
                    "node": "rec_kg",
                    "farmer": {
                        "address": farmer.address,
                        "cooperative": farmer.cooperative,
                        "name": farmer.name,
                        "language": farmer.language,
                        "code": value,
                    },
                }
            )
        if node == "rec_kg":
            grams = kilograms_to_grams(value.upper())
            if grams is None:
                return self._again(state)
            return Step({**state, "node": "rec_grade", "grams": grams})
        if node == "rec_grade":
            if not (_number(value) and int(value) <= MAX_GRADE):
                return self._again(state)
            crops = sorted(CROPS)
            if len(crops) == 1:
                return Step({**state, "node": "rec_confirm", "grade": int(value), "crop": crops[0]})
            return Step({**state, "node": "rec_crop", "grade": int(value)})
        if node == "rec_crop":
            crops = sorted(CROPS)
            if _number(value) and 1 <= int(value) <= len(crops):
                return Step({**state, "node": "rec_confirm", "crop": crops[int(value) - 1]})
            return self._again(state)
        # rec_confirm: the PIN confirms, 0 cancels
        if value == "0":
            return Step(
                self._with(state, node="main"), end=screen("END", [t("ussd_cancelled", lang)])
            )
        pin = self.backend.check_pin(agent, value)
        refused = pin_reply(pin, lang)
        if refused is not None:
            if refused.key == "pin_locked":
                return Step(self._with(state, node="main"), end=screen("END", [refused.text]))
            return Step({**state, "flash_text": refused.text})
        farmer = state["farmer"]
        request = LotRequest(
            agent=agent,
            farmer=FarmerRef(
                address=farmer["address"],
                cooperative=farmer.get("cooperative"),
                name=farmer["name"],
                language=lang_of(farmer.get("language")),
            ),
            farmer_code=farmer["code"],
            grams=int(state["grams"]),
            grade=int(state["grade"]),
            crop=int(state.get("crop") or DEFAULT_CROP),
            idempotency_key=f"ussd:{session_id}"[:100],
        )
        outcome = self.backend.record_lot(request)
        reply = record_reply(outcome, request, lang)
        return Step(self._with(state, node="main"), end=screen("END", [reply.text]))

    # ---------------------------------------------------------------- screens

    def render(self, state: dict[str, Any], party: Party) -> str:
        lang = self.lang(state, party)
        node = state.get("node", "main")
        flash = state.get("flash_text") or (t(state["flash"], lang) if state.get("flash") else "")
        back = t("ussd_back", lang)
        if node == "resume":
            return screen("CON", [t("ussd_resume", lang)])
        if node == "lots":
            lots, _total = self.backend.lots(party.farmer.address, 6) if party.farmer else ([], 0)
            if not lots:
                return screen("CON", [flash, t("lots_none", lang), back], keep=1)
            state["ids"] = [lot.lot_id for lot in lots]
            lines = [f"{i} {lot_line(lot, lang)}" for i, lot in enumerate(lots, 1)]
            return screen("CON", [flash, t("lots_head", lang), *lines, back], keep=1)
        if node == "lot":
            lot = (
                self.backend.lot(party.farmer.address, int(state.get("lot_id") or 0))
                if party.farmer
                else None
            )
            text = (
                lot_detail(lot, lang) if lot else t("lot_not_yours", lang, lot=state.get("lot_id"))
            )
            return screen("CON", [flash, text, back], keep=1)
        if node == "payments":
            payments = self.backend.payments(party.farmer.address) if party.farmer else []
            if not payments:
                return screen("CON", [flash, t("payments_none", lang), back], keep=1)
            lines = [payment_line(p, lang) for p in payments]
            return screen("CON", [flash, t("payments_head", lang), *lines, back], keep=1)
        if node == "orders":
            orders = self.backend.orders(party.cooperative)
            if not orders:
                return screen("CON", [flash, t("orders_none", lang), back], keep=1)
            lines = [order_line(o, lang) for o in orders]
            return screen("CON", [flash, t("orders_head", lang), *lines, back], keep=1)
        if node == "receipt":
            return screen("CON", [flash, t("ussd_enter_receipt", lang), back], keep=1)
        if node == "receipt_result":
            return screen("CON", [flash, str(state.get("message", "")), back], keep=1)
        if node == "language":
            lines = [f"{i} {LANGUAGE_NAMES[code]}" for i, code in enumerate(LANGUAGES, 1)]
            return screen("CON", [flash, t("ussd_choose_language", lang), *lines])
        cancel = t("ussd_cancel", lang)
        if node == "rec_farmer":
            return screen("CON", [flash, t("ussd_enter_farmer", lang), cancel], keep=1)
        if node == "rec_kg":
            farmer = state.get("farmer") or {}
            prompt = t(
                "ussd_enter_kg",
                lang,
                name=str(farmer.get("name", ""))[:24],
                code=farmer.get("code", ""),
            )
            return screen("CON", [flash, prompt, cancel], keep=1)
        if node == "rec_grade":
            return screen("CON", [flash, t("ussd_enter_grade", lang), cancel], keep=1)
        if node == "rec_crop":
            lines = [f"{i} {crop_name(code, lang)}" for i, code in enumerate(sorted(CROPS), 1)]
            return screen("CON", [flash, t("ussd_choose_crop", lang), *lines, cancel], keep=1)
        if node == "rec_confirm":
            farmer = state.get("farmer") or {}
            text = t(
                "ussd_confirm",
                lang,
                name=str(farmer.get("name", ""))[:24],
                code=farmer.get("code", ""),
                kg=kilograms(int(state.get("grams") or 0), lang),
                crop=crop_name(int(state.get("crop") or DEFAULT_CROP), lang),
                grade=state.get("grade", ""),
            )
            return screen("CON", [flash, text, cancel], keep=1)
        items = self.menu(party)
        lines = [f"{i} {t(self.MENU_LABELS[item], lang)}" for i, item in enumerate(items, 1)]
        return screen("CON", [flash or t("ussd_title", lang), *lines])
