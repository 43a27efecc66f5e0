"""The farmers' gateway over real HTTP: Twilio and Africa's Talking requests in their own
formats, a real chain and mirror, SQLite and PostgreSQL.

An agent records a lot by SMS -> the lot is on chain and mirrored -> the farmer's notice is
in the outbox, in the farmer's language, once (also after the server restarts). USSD
sessions are walked to END, dropped and resumed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from sms_helpers import AT_SECRET, SmsServer, W, fresh_postgres_database, serve_gateway
from sqlalchemy import func
from sqlmodel import Session, select

from konbit.chain.local import LocalChain
from konbit.mirror.models import Lot
from konbit.profiles import codes
from konbit.sms.models import SmsInbound, SmsNotice, UssdSessionRow
from konbit.sms.ussd import valid_screen

pytestmark = pytest.mark.filterwarnings("ignore::brownie.exceptions.BrownieTestWarning")

FARMER_PHONE = "+50937001111"
AGENT_PHONE = "+50937002222"
PIN = "2468"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    anvil: LocalChain,
    tmp_path_factory: pytest.TempPathFactory,
    live_server: Any,
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sms")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'konbit.db'}"
    else:
        url = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    with serve_gateway(anvil, url, folder, live_server) as (server, restart):
        coop = server.onboard("cooperative", "Kowoperativ Gran Plèn")
        with server.client(server.keys["cooperative"]) as client:
            reply = client.post(
                "/cooperative/farmers",
                params=W,
                json={"name": "Mari Jozèf", "phone": FARMER_PHONE, "language": "fr"},
            )
            assert reply.status_code == 200, reply.text
            farmer = reply.json()["farmer"]["address"]
            reply = client.post(
                "/sms/agents",
                json={"phone": AGENT_PHONE, "name": "Ajan Pòl", "pin": PIN, "language": "ht"},
            )
            assert reply.status_code == 201, reply.text
        with Session(server.runtime.engine) as session:
            code = codes.code_for(session, farmer)
        yield {
            "server": server,
            "restart": restart,
            "farmer": farmer,
            "code": code,
            "cooperative": coop,
        }


def message_of(reply: httpx.Response) -> str:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/xml"), reply.headers
    message = ElementTree.fromstring(reply.content).find("Message")
    assert message is not None and message.text, reply.text
    return message.text


def inbound_count(server: SmsServer) -> int:
    with Session(server.runtime.engine) as session:
        return int(session.exec(select(func.count()).select_from(SmsInbound)).one())


def lot_count(server: SmsServer) -> int:
    with Session(server.runtime.engine) as session:
        return int(session.exec(select(func.count()).select_from(Lot)).one())


def test_twilio_signature_is_checked_and_a_bad_one_records_nothing(gateway: dict[str, Any]) -> None:
    server: SmsServer = gateway["server"]
    before = inbound_count(server)
    for signature in (None, "", "bm90IHR3aWxpbw==", "x" * 28):
        reply = server.twilio(FARMER_PHONE, "LOTS", signature=signature)
        assert reply.status_code == 403, reply.text
        assert reply.headers["content-type"].startswith("application/problem+json")
    # Signed for another URL (a proxy must give the public URL, not the inner one).
    form_reply = server.twilio(FARMER_PHONE, "LOTS", signature="sign", path="/sms/twilio")
    assert form_reply.status_code == 200
    assert inbound_count(server) == before + 1
    reply = httpx.post(
        server.url + "/sms/twilio",
        data={"MessageSid": "SMx", "From": FARMER_PHONE, "Body": "LOTS"},
        headers={"X-Twilio-Signature": "wrong"},
    )
    assert reply.status_code == 403
    assert inbound_count(server) == before + 1


def test_sms_conversation_agent_records_a_lot_and_the_farmer_is_told_once(
    gateway: dict[str, Any],
) -> None:
    server: SmsServer = gateway["server"]
    code, farmer = gateway["code"], gateway["farmer"]
    lots_before = lot_count(server)

    # A malformed command gets a reply that says exactly what to type.
    text = message_of(server.twilio(AGENT_PHONE, "rekot " + code))
    assert "REKOT <kòd kiltivatè> <kg> <klas> <PIN>" in text
    text = message_of(server.twilio(AGENT_PHONE, f"REKOT {code} 250 2"))
    assert f"REKOT {code} 250 2 <PIN>" in text
    # A wrong PIN is counted, and records nothing.
    text = message_of(server.twilio(AGENT_PHONE, f"REKOT {code} 250 2 9999"))
    assert "PIN lan pa bon" in text and "4" in text

    sid = "SM" + uuid.uuid4().hex
    text = message_of(server.twilio(AGENT_PHONE, f"Rekòt {code} 250,5 3 {PIN}", sid=sid))
    found = re.search(r"Lo #(\d+) anrejistre: 250,5 kg mango, klas 3", text)
    assert found, text
    lot_id = int(found.group(1))

    # On chain and mirrored: the public trace has it.
    trace = httpx.get(f"{server.url}/trace/lots/{lot_id}")
    assert trace.status_code == 200, trace.text
    assert trace.json()["farmer"].lower() == farmer.lower() if "farmer" in trace.json() else True
    with Session(server.runtime.engine) as session:
        lot = session.get(Lot, lot_id)
        assert lot is not None and lot.farmer.lower() == farmer.lower()
        assert int(lot.grams) == 250_500 and lot.grade == 3 and lot.crop == 1

    # The provider retries the webhook: the same reply, no second lot.
    assert message_of(server.twilio(AGENT_PHONE, f"Rekòt {code} 250,5 3 {PIN}", sid=sid)) == text
    assert lot_count(server) == lots_before + 1

    # The farmer's notice: in the outbox, in French (the farmer's language), once.
    def notices() -> list[Any]:
        return [
            m
            for m in server.outbox(phone=FARMER_PHONE, kind="notice_lot")
            if f"#{lot_id} " in m.body
        ]

    found_notices = server.wait_for(notices, what="the farmer's lot notice")
    assert len(found_notices) == 1, [m.body for m in found_notices]
    notice = found_notices[0]
    assert notice.language == "fr"
    assert notice.body.startswith(f"Konbit : lot #{lot_id} enregistré pour vous : 250,5 kg mangue")
    # The default provider keeps it in the table (the sender marks it stored).
    server.wait_for(lambda: server.outbox(id=notice.id)[0].status == "stored", what="the sender")

    # The farmer asks by SMS, in French.
    text = message_of(server.twilio(FARMER_PHONE, "mes lots"))
    assert text.startswith("Vos lots :") and f"#{lot_id} 250,5kg mangue" in text
    text = message_of(server.twilio(FARMER_PHONE, f"LOT {lot_id}"))
    assert f"Lot #{lot_id} : 250,5 kg mangue, qualité 3" in text

    # A restart of the server: the notifier resumes, nothing is sent twice.
    gateway["restart"]()
    text = message_of(server.twilio(FARMER_PHONE, "CODE"))
    assert code in text
    with Session(server.runtime.engine) as session:
        keys = session.exec(select(SmsNotice.key)).all()
    assert keys.count(f"lot:{lot_id}") == 1
    server.wait_for(lambda: len(server.outbox(phone=FARMER_PHONE, kind="welcome")) == 1)
    assert len(notices()) == 1


def test_unknown_number_gets_told_what_to_do(gateway: dict[str, Any]) -> None:
    server: SmsServer = gateway["server"]
    text = message_of(server.twilio("+50938889999", "HELP"))
    assert text == (
        "This number is not registered with Konbit. Ask your cooperative to register it, "
        "then send HELP to see what you can do."
    )
    text = message_of(server.twilio("+50938889999", "bonjou"))
    assert text.startswith("Nimewo sa a pa anrejistre nan Konbit")


def test_africastalking_sms_reply_is_queued_and_wrong_secret_is_404(
    gateway: dict[str, Any],
) -> None:
    server: SmsServer = gateway["server"]
    before = inbound_count(server)
    assert server.at_sms(FARMER_PHONE, "AIDE", secret="wrong").status_code == 404
    assert inbound_count(server) == before
    reply = server.at_sms(FARMER_PHONE.removeprefix("+"), "AIDE")
    assert reply.status_code == 200, reply.text
    assert inbound_count(server) == before + 1
    replies = server.outbox(phone=FARMER_PHONE, kind="reply")
    assert replies and replies[-1].body.startswith("Konbit : envoyez LOTS")


def ussd_walk(server: SmsServer, session_id: str, phone: str, inputs: list[str]) -> list[str]:
    screens, text = [], None
    for value in [None, *inputs]:
        text = "" if value is None else (value if not text else f"{text}*{value}")
        reply = server.ussd(session_id, phone, text)
        assert reply.status_code == 200, reply.text
        assert valid_screen(reply.text), reply.text
        screens.append(reply.text)
        if reply.text.startswith("END "):
            break
    return screens


def test_ussd_agent_records_a_lot_from_first_request_to_end(gateway: dict[str, Any]) -> None:
    server: SmsServer = gateway["server"]
    code = gateway["code"]
    screens = ussd_walk(
        server, "ATUid_" + uuid.uuid4().hex, AGENT_PHONE, ["1", code, "120", "2", "1", PIN]
    )
    assert screens[0].startswith("CON Konbit\n1 Anrejistre yon lo")
    assert screens[2].startswith("CON Kiltivat") and code in screens[2]
    assert "Konfime" in screens[5] and "120 kg mango, klas 2" in screens[5]
    found = re.match(r"END Lo #(\d+) anrejistre: 120 kg mango", screens[6])
    assert found, screens
    lot_id = int(found.group(1))
    server.wait_for(
        lambda: [m for m in server.outbox(phone=FARMER_PHONE) if f"#{lot_id} " in m.body],
        what="the USSD lot's notice",
    )
    # The farmer's menu: my lots shows it.
    screens = ussd_walk(server, "ATUid_" + uuid.uuid4().hex, FARMER_PHONE, ["1"])
    assert screens[0].startswith("CON Konbit\n1 Mes lots")
    assert f"#{lot_id} 120kg mangue" in screens[1]


def test_ussd_dropped_session_is_resumed(gateway: dict[str, Any]) -> None:
    server: SmsServer = gateway["server"]
    code = gateway["code"]
    dropped = "ATUid_" + uuid.uuid4().hex
    screens = ussd_walk(server, dropped, AGENT_PHONE, ["1", code, "75"])
    assert screens[-1].startswith("CON Antre klas la")
    # The network drops the session; the agent dials again.
    again = "ATUid_" + uuid.uuid4().hex
    first = server.ussd(again, AGENT_PHONE, "")
    assert first.text.startswith("CON Ou te kite nan mitan"), first.text
    resumed = server.ussd(again, AGENT_PHONE, "1")
    assert resumed.text.startswith("CON Antre klas la"), resumed.text
    assert server.ussd(again, AGENT_PHONE, "1*4").text.startswith("CON Ki kilti")
    confirm = server.ussd(again, AGENT_PHONE, "1*4*2")
    assert "75 kg zaboka, klas 4" in confirm.text, confirm.text
    done = server.ussd(again, AGENT_PHONE, f"1*4*2*{PIN}")
    assert re.match(r"END Lo #\d+ anrejistre: 75 kg zaboka, klas 4", done.text), done.text
    # A third dial starts afresh (nothing left to resume).
    fresh = server.ussd("ATUid_" + uuid.uuid4().hex, AGENT_PHONE, "")
    assert fresh.text.startswith("CON Konbit\n"), fresh.text


def test_ussd_wrong_secret_is_404_and_records_nothing(gateway: dict[str, Any]) -> None:
    server: SmsServer = gateway["server"]
    with Session(server.runtime.engine) as session:
        before = session.exec(select(func.count()).select_from(UssdSessionRow)).one()
    reply = server.ussd("ATUid_x", FARMER_PHONE, "", secret="nope")
    assert reply.status_code == 404
    reply = server.ussd("ATUid_x", FARMER_PHONE, "", secret=AT_SECRET[:-1])
    assert reply.status_code == 404
    with Session(server.runtime.engine) as session:
        assert session.exec(select(func.count()).select_from(UssdSessionRow)).one() == before


def test_agents_are_managed_by_their_cooperative(gateway: dict[str, Any]) -> None:
    server: SmsServer = gateway["server"]
    with server.client(server.keys["cooperative"]) as coop:
        listed = coop.get("/sms/agents")
        assert listed.status_code == 200 and listed.json()[0]["phone"] == AGENT_PHONE
        assert "pin" not in listed.json()[0] and "pin_hash" not in listed.json()[0]
        duplicate = coop.post(
            "/sms/agents", json={"phone": AGENT_PHONE, "name": "X", "pin": "1357"}
        )
        assert duplicate.status_code == 409
        short = coop.post("/sms/agents", json={"phone": "+50937003333", "name": "X", "pin": "123"})
        assert short.status_code == 422 and short.json()["errors"][0]["field"] == "pin"
    assert httpx.get(server.url + "/sms/agents").status_code == 401
