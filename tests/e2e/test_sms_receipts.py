"""Payout receipts after a whole season (the demo's: advance, transport, cooperative fee, a
failed inspection): each paid farmer gets one receipt SMS in their language with the sale
value, each deduction and the net, and a code the USSD menu and ``GET /receipts/{code}``
check against the chain."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sms_helpers import SmsServer, serve_gateway
from sqlmodel import Session, delete

from konbit.chain.local import LocalChain
from konbit.demo import run_season
from konbit.mirror.models import SaleOrder
from konbit.sms.models import SmsCursor
from konbit.sms.ussd import valid_screen

pytestmark = pytest.mark.filterwarnings("ignore::brownie.exceptions.BrownieTestWarning")

RECEIPT = re.compile(
    r"^Konbit resi (?P<code>\d+-\d{6}): kòmand (?P<order>\d+), lo (?P<lots>[#\d, ]+), "
    r"(?P<kg>[\d ,]+) kg\. Vant: US\$ (?P<sale>[\d ,]+)\. Avans: -US\$ (?P<advance>[\d ,]+)\. "
    r"Transpò: -US\$ (?P<transport>[\d ,]+)\. Kowoperativ: -US\$ (?P<fee>[\d ,]+)\. "
    r"Ou resevwa: US\$ (?P<net>[\d ,]+)\.$"
)


def minor(text: str) -> int:
    """``1 234,567`` (Kreyòl: space thousands, comma decimals) in 6-decimal minor units."""
    return int(Decimal(text.replace(" ", "").replace(",", ".")) * 10**6)


@pytest.fixture(scope="module")
def season(
    anvil: LocalChain, tmp_path_factory: pytest.TempPathFactory, live_server: Any
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("receipts")
    with serve_gateway(anvil, f"sqlite:///{folder / 'konbit.db'}", folder, live_server) as (
        server,
        _restart,
    ):
        result = run_season(server.url, server.runtime, say=lambda _: None)
        yield {"server": server, **result}


def receipts_sent(server: SmsServer, count: int) -> list[Any]:
    return server.wait_for(
        lambda: (found := server.outbox(kind="receipt")) and len(found) >= count and found,
        timeout=90,
        what=f"{count} receipts",
    )


def test_each_paid_farmer_gets_one_receipt_that_adds_up(season: dict[str, Any]) -> None:
    server: SmsServer = season["server"]
    paid = season["settlement"]
    with Session(server.runtime.engine) as session:
        order = session.get(SaleOrder, season["order"])
        assert order is not None and order.status == 9
    farmers_paid = {p for p in season["farmers"]}
    messages = receipts_sent(server, 1)
    # Farmers with a lot accepted are paid; each of them gets one receipt.
    assert len({m.phone for m in messages}) == len(messages)
    total_net = 0
    for message in messages:
        assert message.language == "ht"
        found = RECEIPT.match(message.body)
        assert found, message.body
        values = {k: minor(found[k]) for k in ("sale", "advance", "transport", "fee", "net")}
        assert values["sale"] == sum(values[k] for k in ("advance", "transport", "fee", "net"))
        assert values["advance"] > 0 and values["transport"] > 0 and values["fee"] > 0
        reply = httpx.get(f"{server.url}/receipts/{found['code']}")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["on_chain"] is True and body["problems"] == []
        assert body["farmer"] in farmers_paid
        assert body["net"] == values["net"]
        total_net += body["net"]
    assert total_net == int(order.paid_to_farmers or 0)
    assert paid is not None


def test_receipt_code_checked_by_ussd_and_sms(season: dict[str, Any]) -> None:
    server: SmsServer = season["server"]
    message = receipts_sent(server, 1)[0]
    code = RECEIPT.match(message.body)["code"]  # type: ignore[index]
    # The farmer checks it in the USSD menu (digits only, as a keypad types them).
    session = "ATUid_receipt"
    screens = []
    for text in ("", "4", "4*" + code.replace("-", "")):
        reply = server.ussd(session, message.phone, text)
        assert valid_screen(reply.text), reply.text
        screens.append(reply.text)
    assert screens[1].startswith("CON Antre kòd resi a")
    assert screens[2].startswith(f"CON Resi {code} bon"), screens[2]
    # Anyone can check a receipt by SMS.
    reply = server.twilio("+50938880000", f"RECEIPT {code}")
    assert f"Receipt {code} is valid" in reply.text
    # A tampered code names no receipt.
    order, digits = code.split("-")
    wrong = f"{order}-{(int(digits) + 1) % 10**6:06d}"
    assert httpx.get(f"{server.url}/receipts/{wrong}").status_code == 404


def test_payments_and_notices_once_even_when_the_notifier_replays(season: dict[str, Any]) -> None:
    server: SmsServer = season["server"]
    receipts_sent(server, 1)
    phone = server.outbox(kind="receipt")[0].phone
    reply = server.twilio(phone, "PEMAN")
    assert "Peman ou yo:" in reply.text and f"kòmand {season['order']}:" in reply.text
    # Every farmer got a welcome and lot notices; an inspection failed in the demo.
    assert server.outbox(kind="welcome") and server.outbox(kind="notice_lot")
    assert server.outbox(kind="inspection")
    counts = {kind: len(server.outbox(kind=kind)) for kind in ("welcome", "notice_lot", "receipt")}
    # The cooperative registers an agent; the notifier reads everything again from block 0:
    # nothing already sent goes twice, and the agent gets the advance notice.
    with server.client(server.keys.get("cooperative") or _coop_key(server, season)) as coop:
        reply = coop.post(
            "/sms/agents", json={"phone": "+50937009999", "name": "Ajan", "pin": "1357"}
        )
        assert reply.status_code == 201, reply.text
    with Session(server.runtime.engine) as session:
        session.exec(delete(SmsCursor))  # type: ignore[call-overload]
        session.commit()
    advance = server.wait_for(
        lambda: server.outbox(kind="advance"), timeout=60, what="the advance notice"
    )
    assert advance[0].phone == "+50937009999"
    assert advance[0].body.startswith("Konbit: kowoperativ la resevwa yon avans US$ ")
    assert {kind: len(server.outbox(kind=kind)) for kind in counts} == counts


def _coop_key(server: SmsServer, season: dict[str, Any]) -> str:
    from konbit.access.keys import issue_key
    from konbit.mirror.models import SaleOrder
    from konbit.roles import Role

    with Session(server.runtime.engine) as session:
        order = session.get(SaleOrder, season["order"])
        assert order is not None
    _, key = issue_key(server.runtime.engine, order.cooperative, Role.COOPERATIVE, "agents")
    return key


def test_labels_over_http_decode_and_resolve_to_the_trace(season: dict[str, Any]) -> None:
    import io

    import pypdfium2
    import zxingcpp
    from PIL import Image

    server: SmsServer = season["server"]
    lot, consignment = season["lots"][0], season["consignment"]
    gtin = "09506000134352"
    reply = httpx.get(f"{server.url}/labels/lots/{lot}.png")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    uri = reply.headers["x-label-uri"]
    assert uri == f"{server.url}/01/{gtin}/10/{lot}"
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(reply.content)))] == [uri]
    # The Digital Link resolves to the lot's public trace.
    redirect = httpx.get(uri)
    assert redirect.status_code == 307 and redirect.headers["location"] == f"/trace/lots/{lot}"
    assert httpx.get(uri, follow_redirects=True).json()["lot_id"] == lot
    svg = httpx.get(f"{server.url}/labels/consignments/{consignment}.svg")
    assert svg.status_code == 200 and svg.headers["x-label-uri"].endswith(f"/10/C{consignment}")
    redirect = httpx.get(svg.headers["x-label-uri"])
    assert redirect.headers["location"] == f"/trace/consignments/{consignment}"
    assert httpx.get(f"{server.url}/labels/lots/999999.png").status_code == 404
    assert httpx.get(f"{server.url}/01/{gtin[:-1]}9/10/{lot}").status_code == 404
    # The printable sheet: every label on it decodes to its lot's URI.
    ids = season["lots"]
    sheet = httpx.get(f"{server.url}/labels/lots.pdf", params={"ids": ",".join(map(str, ids))})
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "application/pdf"
    found = [
        r.text
        for page in pypdfium2.PdfDocument(sheet.content)
        for r in zxingcpp.read_barcodes(page.render(scale=3).to_pil())
    ]
    assert sorted(found) == sorted(f"{server.url}/01/{gtin}/10/{i}" for i in ids)
    # A farmer's ID card, for the farmer's cooperative only.
    farmer = season["farmers"][0]
    key = _coop_key(server, season)
    card = httpx.get(
        f"{server.url}/labels/farmers/{farmer}/card.pdf", headers={"Authorization": f"Bearer {key}"}
    )
    assert card.status_code == 200, card.text
    page = pypdfium2.PdfDocument(card.content)[0].render(scale=5).to_pil()
    (code,) = [r.text for r in zxingcpp.read_barcodes(page)]
    assert code.isdigit() and len(code) == 5
    assert httpx.get(f"{server.url}/labels/farmers/{farmer}/card.pdf").status_code == 401
