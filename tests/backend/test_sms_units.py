"""The gateway's parts alone: phones, encodings, the catalogue, the grammar, farmer codes,
receipt codes, agents' PINs, the outbound sender and the providers' adapters."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.access.keys import Actor
from konbit.chain.local import free_port
from konbit.db.migrate import upgrade
from konbit.mirror.models import ChainEvent
from konbit.outbox.models import OutboxTx
from konbit.profiles import codes, phones
from konbit.profiles.models import FarmerProfile
from konbit.roles import Role
from konbit.services import agents
from konbit.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from konbit.services.receipts import parse_code
from konbit.sms import encoding, grammar, outbound
from konbit.sms.messages import CATALOGUE, LANGUAGES, money, placeholders
from konbit.sms.models import OutStatus, SmsNotice, SmsOutbound, SmsPendingLot
from konbit.sms.notices import Notifier
from konbit.sms.providers import SendError, SendResult
from konbit.sms.providers.africastalking import AfricasTalkingProvider, report_of
from konbit.sms.providers.twilio import TwilioProvider, status_of, twiml, valid_signature

# ------------------------------------------------------------------ phones, encoding, texts


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+50937001234", "+50937001234"),
        ("50937001234", "+50937001234"),
        ("3700 1234", "+50937001234"),
        ("+509 3700-1234", "+50937001234"),
        ("+12025550123", "+12025550123"),
    ],
)
def test_phones_normalise_to_e164(raw: str, e164: str) -> None:
    assert phones.normalise(raw) == e164


@pytest.mark.parametrize("raw", ["", "12", "hello", "+" + "9" * 30, "0" * 50])
def test_not_phones(raw: str) -> None:
    assert phones.try_normalise(raw) is None


def test_gsm7_and_ucs2_segments() -> None:
    assert encoding.segment("a" * 160).count == 1
    assert [len(p) for p in encoding.segment("a" * 161).parts] == [153, 8]
    kreyol = "Lo ou yo: 250 kg mango, klas 2, pase enspeksyon. Kòd kiltivatè: 10019. è ò à"
    assert encoding.choose(kreyol) is encoding.Encoding.GSM7
    assert encoding.choose("reçu") is encoding.Encoding.UCS2  # ç is not in GSM 03.38
    assert encoding.segment("ê" * 70).count == 1
    assert [len(p) for p in encoding.segment("ê" * 71).parts] == [67, 4]
    # An extension character costs two septets and is never split from its escape.
    split = encoding.segment("a" * 152 + "€" + "b" * 10)
    assert split.parts[0] == "a" * 152 and split.parts[1].startswith("€")
    # A surrogate pair (emoji) stays whole in UCS-2.
    split = encoding.segment("x" * 66 + "😀" + "y" * 10)
    assert split.parts[0] == "x" * 66 and split.parts[1].startswith("😀")


def test_catalogue_is_complete_in_three_languages() -> None:
    for key, texts in CATALOGUE.items():
        assert set(texts) == set(LANGUAGES), key
        names = {frozenset(placeholders(texts[lang])) for lang in LANGUAGES}
        assert len(names) == 1, key


def test_money_is_exact_and_readable() -> None:
    assert money(12_500_000, "en") == "$12.50"
    assert money(1_234_500_000, "fr") == "1 234,50 $US"
    assert money(102_645_000, "ht") == "US$ 102,645"
    for lang in LANGUAGES:
        assert encoding.is_gsm7(money(1_234_567_891, lang))


def test_grammar_reads_keywords_in_any_case_and_accent() -> None:
    assert grammar.parse("Rekòt 10019 250,5 2 2468").harvest == grammar.Harvest(
        "10019", 250_500, 2, None, "2468"
    )
    assert grammar.parse("RÉCOLTE 10019 12kg 3 avocat 2468").harvest == grammar.Harvest(
        "10019", 12_000, 3, 2, "2468"
    )
    assert grammar.parse("harvest 10019 250 2").problem == "need_pin"
    assert grammar.parse("harvest 10019 0 2 2468").problem == "bad_kg"
    assert grammar.parse("harvest 10019 1.0001 2 2468").problem == "bad_kg"
    assert grammar.parse("harvest 10019 1 100 2468").problem == "bad_grade"
    assert grammar.parse("lo12").lot_id == 12
    assert grammar.parse("LOT #7").lot_id == 7
    assert grammar.parse("mes lots").kind == "lots"
    assert grammar.parse("lang fr").language == "fr"
    assert grammar.parse("Kreyòl").language == "ht"
    assert grammar.parse("resi 7-482913").receipt == "7-482913"
    assert grammar.parse("  ").kind == "empty"
    assert grammar.parse("LO").langs == ("ht",) and grammar.parse("LOTS").langs == ("fr", "en")


def test_farmer_code_check_digit_catches_typos() -> None:
    code = codes.code_of(1)
    assert code == "10019" and codes.id_of(code) == 1
    for i in range(len(code)):
        for d in "0123456789":
            typo = code[:i] + d + code[i + 1 :]
            if typo != code:
                assert codes.id_of(typo) is None, typo
    swapped = code[1] + code[0] + code[2:]
    assert swapped == code or codes.id_of(swapped) is None


def test_receipt_codes_parse_with_or_without_separators() -> None:
    assert parse_code("7-482913") == (7, "482913")
    assert parse_code("7482913") == (7, "482913")
    assert parse_code("12*345678") == (12, "345678")
    for bad in ("", "482913", "abc-123456", "0-123456", "1" * 40):
        assert parse_code(bad) is None


# ------------------------------------------------------------------ database parts


@pytest.fixture
def db(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def test_farmer_codes_are_given_once(db: Engine) -> None:
    with Session(db) as session:
        first = codes.code_for(session, "0x" + "11" * 20)
        assert codes.code_for(session, "0x" + "11" * 20) == first
        second = codes.code_for(session, "0x" + "22" * 20, commit=False)
        session.commit()
        assert first != second
        assert codes.address_for(session, second) == "0x" + "22" * 20
        assert codes.address_for(session, "10018") is None


def test_agent_pins_lock_after_failures_and_reset(db: Engine) -> None:
    runtime: Any = SimpleNamespace(engine=db)
    coop = Actor(organisation="0x" + "C0" * 20, role=Role.COOPERATIVE)
    other = Actor(organisation="0x" + "0C" * 20, role=Role.COOPERATIVE)
    made = agents.register_agent(runtime, coop, agents.AgentInput("+50937002222", "Pòl", "2468"))
    with pytest.raises(Conflict):
        agents.register_agent(runtime, coop, agents.AgentInput("+50937002222", "X", "1357"))
    with pytest.raises(InvalidInput):
        agents.register_agent(runtime, coop, agents.AgentInput("+50937002223", "X", "12a4"))
    with pytest.raises(Forbidden):
        agents.register_agent(
            runtime,
            Actor(organisation=coop.organisation, role=Role.EXPORTER),
            agents.AgentInput("+50937002224", "X", "1357"),
        )
    assert agents.check_pin(runtime, made["id"], "2468").ok
    for left in range(agents.MAX_PIN_FAILURES - 1, -1, -1):
        check = agents.check_pin(runtime, made["id"], "0000")
        assert not check.ok and check.tries_left == left
    assert check.locked
    assert not agents.check_pin(runtime, made["id"], "2468").ok  # locked: even the right PIN
    with pytest.raises(NotFound):
        agents.reset_pin(runtime, other, "+50937002222", "1357")
    agents.reset_pin(runtime, coop, "+50937002222", "1357")
    assert agents.check_pin(runtime, made["id"], "1357").ok
    agents.deactivate_agent(runtime, coop, "+50937002222")
    assert not agents.check_pin(runtime, made["id"], "1357").ok
    assert [a["active"] for a in agents.list_agents(runtime, coop)] == [False]


class FlakyProvider:
    name = "flaky"

    def __init__(self, failures: list[SendError | None]) -> None:
        self.failures = failures
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, body: str) -> SendResult:
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        self.sent.append((to, body))
        return SendResult(provider_id=f"id-{len(self.sent)}", status=OutStatus.SENT)


def _queue(db: Engine, body: str = "Konbit: lo #1 anrejistre pou ou.") -> int:
    with Session(db) as session:
        (row_id,) = outbound.enqueue_many(
            session, [outbound.Message("+50937001111", body, "ht", "notice_lot")]
        )
        session.commit()
        return row_id


def _change(db: Engine, row_id: int, **values: Any) -> None:
    """Set columns of a queued message, as another part of the system would."""
    with Session(db) as session:
        row = session.get(SmsOutbound, row_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def _row(db: Engine, row_id: int) -> SmsOutbound:
    with Session(db) as session:
        row = session.get(SmsOutbound, row_id)
        assert row is not None
        return row


def test_sender_retries_with_backoff_then_gives_up(db: Engine) -> None:
    provider = FlakyProvider([SendError("timeout"), None])
    row_id = _queue(db, "é" * 100)
    assert _row(db, row_id).encoding == "gsm7" and _row(db, row_id).parts == 1
    outbound.send_due(db, provider, max_attempts=3)
    row = _row(db, row_id)
    assert row.status == OutStatus.RETRY and row.attempts == 1 and row.last_error == "timeout"
    assert outbound.send_due(db, provider, max_attempts=3) == 0  # not due yet (30 s backoff)
    _change(db, row_id, next_attempt_at=_row(db, row_id).created_at)
    assert outbound.send_due(db, provider, max_attempts=3) == 1
    row = _row(db, row_id)
    assert row.status == OutStatus.SENT and row.provider_id == "id-1" and row.attempts == 2
    assert outbound.record_status(db, "flaky", "id-1", OutStatus.DELIVERED)
    assert _row(db, row_id).status == OutStatus.DELIVERED
    assert not outbound.record_status(db, "flaky", "nope", OutStatus.DELIVERED)
    # Permanent refusals are final at once; transient ones stop at max_attempts.
    permanent = _queue(db)
    outbound.send_due(db, FlakyProvider([SendError("bad number", permanent=True)]), max_attempts=3)
    assert _row(db, permanent).status == OutStatus.FAILED
    transient = _queue(db)
    outbound.send_due(db, FlakyProvider([SendError("down")]), max_attempts=1)
    assert _row(db, transient).status == OutStatus.FAILED
    assert [outbound.backoff(n) for n in (1, 2, 3, 20)] == [30.0, 60.0, 120.0, 3600.0]


def _commits(db: Engine) -> list[int]:
    """A list that grows by one at each COMMIT on ``db`` (each ends one hold of the
    database's writer lock)."""
    seen: list[int] = []
    event.listen(db, "commit", lambda _conn: seen.append(1))
    return seen


@pytest.mark.parametrize("record_every", [60.0, 0.0])
def test_sender_claims_a_batch_at_once_and_records_a_few_at_a_time(
    db: Engine, monkeypatch: pytest.MonkeyPatch, record_every: float
) -> None:
    ids = [_queue(db, f"Konbit: lo #{n}") for n in range(10)]
    monkeypatch.setattr(outbound, "RECORD_EVERY", record_every)
    commits = _commits(db)
    provider = FlakyProvider([None] * 4 + [SendError("timeout")] + [None] * 5)
    assert outbound.send_due(db, provider, max_attempts=3) == 9
    # One transaction claims all ten; what the provider said is recorded together when
    # it may wait, and at once when it may not.
    assert len(commits) == (2 if record_every else 11)
    rows = [_row(db, i) for i in ids]
    assert [r.status for r in rows] == [OutStatus.SENT] * 4 + [OutStatus.RETRY] + [
        OutStatus.SENT
    ] * 5
    assert [b for _, b in provider.sent] == [f"Konbit: lo #{n}" for n in range(10) if n != 4]
    assert all(r.attempts == 1 and r.lease_until is None for r in rows)


def test_a_delivery_report_that_came_first_stands(db: Engine) -> None:
    """The provider's report can beat the send's own answer: recording the send then
    counts the attempt and keeps the id, and leaves the status the report gave."""
    first, second = _queue(db, "Konbit: premye"), _queue(db, "Konbit: dezyem")
    _change(db, first, status=OutStatus.DELIVERED)
    said = [
        outbound._Sent(first, "+50937001111", OutStatus.SENT, provider_id="id-a"),
        outbound._Sent(second, "+50937001111", OutStatus.SENT, provider_id="id-b"),
    ]
    outbound._record(db, "flaky", said, max_attempts=3)
    rows = [_row(db, first), _row(db, second)]
    assert [r.status for r in rows] == [OutStatus.DELIVERED, OutStatus.SENT]
    assert [r.provider_id for r in rows] == ["id-a", "id-b"]
    assert all(r.attempts == 1 and r.provider == "flaky" and r.sent_at for r in rows)


def test_concurrent_senders_send_each_message_once(db: Engine) -> None:
    ids = {_queue(db, f"Konbit: mesaj {n}") for n in range(60)}
    provider = FlakyProvider([])
    threads = [
        threading.Thread(
            target=outbound.send_due, args=(db, provider), kwargs={"max_attempts": 3, "limit": 20}
        )
        for _ in range(4)
    ]
    for _ in range(3):  # three rounds of four senders racing over the same due rows
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        threads = [
            threading.Thread(
                target=outbound.send_due,
                args=(db, provider),
                kwargs={"max_attempts": 3, "limit": 20},
            )
            for _ in range(4)
        ]
    bodies = [b for _, b in provider.sent]
    assert sorted(bodies) == sorted(f"Konbit: mesaj {n}" for n in range(60))
    assert {_row(db, i).status for i in ids} == {OutStatus.SENT}


def _five_lots_recorded(db: Engine) -> None:
    """A farmer with a phone, and five LotRecorded events of theirs mirrored."""
    farmer = "0x" + "12" * 20
    with Session(db) as session:
        session.add(FarmerProfile(address=farmer, name="Anite", phone="+50937001234"))
        for n in range(1, 6):
            args = {"lotId": n, "farmer": farmer, "grams": 25_000 * n, "crop": 0, "grade": 1}
            session.add(
                ChainEvent(
                    chain_id=31337,
                    block_number=10 + n,
                    block_hash="0x" + f"{n:064x}",
                    block_time=1_780_000_000 + n,
                    tx_hash="0x" + f"{100 + n:064x}",
                    tx_index=0,
                    log_index=0,
                    address="0x" + "34" * 20,
                    contract="LotRegistry",
                    event="LotRecorded",
                    args=json.dumps({**args, "harvestTime": 1_780_000_000}),
                )
            )
        session.commit()


def test_notifier_reads_before_it_writes(db: Engine) -> None:
    """The writer lock is held from a batch's first write to its commit: every read of the
    batch comes before that first write."""
    _five_lots_recorded(db)
    statements: list[str] = []
    event.listen(
        db,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: statements.append(sql.lstrip().split()[0].upper()),
    )
    event.listen(db, "commit", lambda _conn: statements.append("COMMIT"))
    notifier = Notifier(cast(Any, SimpleNamespace(engine=db)))
    assert notifier.run_once() == 5
    writing = False
    for statement in statements:
        assert not (writing and statement == "SELECT"), statements
        writing = statement in ("INSERT", "UPDATE") or (writing and statement != "COMMIT")
    with Session(db) as session:
        texts = session.exec(select(SmsOutbound.body).order_by(col(SmsOutbound.id))).all()
    assert len(texts) == 5 and all("+50937001234" not in t for t in texts)
    assert notifier.run_once() == 0  # the cursor moved past all five


def test_the_agent_told_pending_gets_the_lot_number_once_it_is_mined(db: Engine) -> None:
    """An agent whose reply said "pending" is found by the lot's transaction: lots 2 and 4
    of the batch were recorded by SMS, the others through the API."""
    _five_lots_recorded(db)
    with Session(db) as session:
        for n, phone in ((2, "+50937002222"), (4, "+50937004444")):
            row = OutboxTx(
                idempotency_key=f"sms:{n}",
                request_hash="0x" + "00" * 32,
                sender="0x" + "56" * 20,
                tx_hash="0x" + f"{100 + n:064x}",
                status="mined",
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            session.add(
                SmsPendingLot(outbox_tx_id=row.id, phone=phone, language="fr", farmer_code="K7")
            )
        session.commit()
    assert Notifier(cast(Any, SimpleNamespace(engine=db))).run_once() == 5
    with Session(db) as session:
        sent = session.exec(
            select(SmsOutbound.notice_key, SmsOutbound.phone, SmsOutbound.language)
            .where(col(SmsOutbound.notice_key).startswith("agent-lot:"))
            .order_by(col(SmsOutbound.notice_key))
        ).all()
    assert [tuple(r) for r in sent] == [
        ("agent-lot:2", "+50937002222", "fr"),
        ("agent-lot:4", "+50937004444", "fr"),
    ]


def test_a_notice_another_backend_queued_meanwhile_is_not_sent_twice(db: Engine) -> None:
    """The batch's notices go in one flush; when another backend took one of their keys
    after this one read them, each of the others is still queued once, that one not."""
    _five_lots_recorded(db)
    notifier = Notifier(cast(Any, SimpleNamespace(engine=db)))
    send_all = notifier._send_all

    def raced(session: Session, notices: list[Any]) -> None:
        with Session(db) as other:  # the other backend, between our read and our write
            theirs = outbound.Message("+50937001234", "theirs", "ht", "lot", notice_key="lot:3")
            (row_id,) = outbound.enqueue_many(other, [theirs])
            other.add(SmsNotice(key="lot:3", phone="+50937001234", outbound_id=row_id))
            other.commit()
        send_all(session, notices)

    notifier._send_all = raced  # type: ignore[method-assign]
    assert notifier.run_once() == 5
    with Session(db) as session:
        keys = session.exec(select(SmsOutbound.notice_key).order_by(col(SmsOutbound.id))).all()
        bodies = session.exec(select(SmsOutbound.body)).all()
    assert sorted(k for k in keys if k) == ["lot:1", "lot:2", "lot:3", "lot:4", "lot:5"]
    assert bodies.count("theirs") == 1


# ------------------------------------------------------------------ providers' adapters


def test_twilio_signatures_and_twiml() -> None:
    from twilio.request_validator import RequestValidator

    url, form = "https://konbit.example/sms/twilio", {"From": "+50937001111", "Body": "LO"}
    signature = RequestValidator("token").compute_signature(url, form)
    assert valid_signature("token", url, form, signature)
    assert not valid_signature("other", url, form, signature)
    assert not valid_signature("token", url + "?x=1", form, signature)
    assert not valid_signature("token", url, form, None)
    assert twiml("a < b & c") == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>a &lt; b &amp; c'
        "</Message></Response>"
    )
    assert status_of({"MessageSid": "SM1", "MessageStatus": "delivered"}) == (
        "SM1",
        OutStatus.DELIVERED,
        None,
    )


def test_twilio_provider_sends_through_the_rest_client() -> None:
    from twilio.http import HttpClient
    from twilio.http.response import Response

    class Recorder(HttpClient):  # type: ignore[misc]
        def __init__(self, status: int, body: dict[str, Any]) -> None:
            import logging

            super().__init__(logging.getLogger("twilio-test"), False)
            self.status, self.body, self.requests = status, body, []

        def request(self, method: str, url: str, **kwargs: Any) -> Response:
            self.requests.append((method, url, kwargs.get("data")))
            return Response(self.status, json.dumps(self.body))

    ok = Recorder(201, {"sid": "SM123", "status": "queued"})
    provider = TwilioProvider("AC" + "0" * 32, "token", "+15005550006", "https://x/s", ok)
    assert provider.send("+50937001111", "Bonjou") == SendResult("SM123", OutStatus.SENT)
    method, url, data = ok.requests[0]
    assert method == "POST" and url.endswith("/Messages.json")
    assert data["To"] == "+50937001111" and data["Body"] == "Bonjou" and data["StatusCallback"]
    refused = Recorder(400, {"code": 21211, "message": "invalid To", "status": 400})
    provider = TwilioProvider("AC" + "0" * 32, "token", "+15005550006", None, refused)
    with pytest.raises(SendError) as raised:
        provider.send("+1", "x")
    assert raised.value.permanent


class _AtHandler(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = parse_qs(self.rfile.read(length).decode())
        self.seen.append({"form": form, "key": self.headers.get("apiKey")})
        status, body = self.answers.pop(0)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_africastalking_provider_against_a_local_api() -> None:
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _AtHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    recipient = {"statusCode": 101, "status": "Success", "messageId": "ATXid_1", "number": "+509"}
    _AtHandler.answers = [
        (201, {"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [recipient]}}),
        (201, {"SMSMessageData": {"Recipients": [{"statusCode": 403, "status": "InvalidPhone"}]}}),
        (500, {}),
    ]
    try:
        provider = AfricasTalkingProvider("sandbox", "key-1", f"http://127.0.0.1:{port}/", "KONBIT")
        assert provider.send("+50937001111", "Bonjou") == SendResult("ATXid_1", OutStatus.SENT)
        seen = _AtHandler.seen[0]
        assert seen["key"] == "key-1"
        assert seen["form"]["username"] == ["sandbox"] and seen["form"]["from"] == ["KONBIT"]
        with pytest.raises(SendError) as raised:
            provider.send("+1", "x")
        assert raised.value.permanent
        with pytest.raises(SendError) as raised:
            provider.send("+50937001111", "x")
        assert not raised.value.permanent
    finally:
        server.shutdown()
    assert report_of({"id": "ATXid_1", "status": "Success"}) == ("ATXid_1", "delivered", None)
    assert report_of({"id": "ATXid_1", "status": "Failed", "failureReason": "UserIsInactive"}) == (
        "ATXid_1",
        "undelivered",
        "UserIsInactive",
    )
