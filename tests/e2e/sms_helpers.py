"""Serving the app with the SMS gateway configured, and talking to it as the providers do."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from served_api import deployed
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select
from twilio.request_validator import RequestValidator

from konbit.chain.local import LocalChain, free_port
from konbit.db.engine import make_engine
from konbit.runtime import Runtime
from konbit.settings import Settings
from konbit.sms.models import SmsOutbound

TWILIO_TOKEN = "test-twilio-auth-token-" + "x" * 10
AT_SECRET = "at-path-secret-" + uuid.uuid4().hex
W = {"wait": "true"}


@dataclass
class SmsServer:
    url: str
    runtime: Runtime
    settings: Settings
    operator_key: str
    keys: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def onboard(self, role: str, name: str) -> str:
        with self.client(self.operator_key) as op:
            reply = op.post("/operator/organisations", params=W, json={"name": name, "role": role})
            assert reply.status_code == 200, reply.text
            address = reply.json()["organisation"]["address"]
            reply = op.post(f"/operator/organisations/{address}/keys", json={"label": "sms"})
            assert reply.status_code == 201, reply.text
        self.keys[role], self.addresses[role] = reply.json()["key"], address
        return address

    # ---------------------------------------------------------------- providers

    def twilio(
        self,
        sender: str,
        body: str,
        *,
        sid: str | None = None,
        signature: str | None = "sign",
        path: str = "/sms/twilio",
    ) -> httpx.Response:
        form = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": "+15005550006",
            "Body": body,
            "NumMedia": "0",
        }
        headers = {}
        if signature == "sign":
            headers["X-Twilio-Signature"] = twilio_signature(self.url + path, form)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return httpx.post(self.url + path, data=form, headers=headers, timeout=120)

    def ussd(
        self, session_id: str, phone: str, text: str, *, secret: str = AT_SECRET
    ) -> httpx.Response:
        form = {
            "sessionId": session_id,
            "serviceCode": "*384*2121#",
            "phoneNumber": phone,
            "networkCode": "37201",
            "text": text,
        }
        return httpx.post(f"{self.url}/ussd/africastalking/{secret}", data=form, timeout=120)

    def at_sms(self, sender: str, text: str, *, secret: str = AT_SECRET) -> httpx.Response:
        form = {
            "from": sender,
            "to": "21212",
            "text": text,
            "date": "2026-11-30 10:00:00",
            "id": "ATXid_" + uuid.uuid4().hex,
            "linkId": "SampleLinkId123",
            "networkCode": "37201",
        }
        return httpx.post(f"{self.url}/sms/africastalking/{secret}", data=form, timeout=120)

    # ---------------------------------------------------------------- outbox

    def outbox(self, **where: Any) -> list[SmsOutbound]:
        with Session(self.runtime.engine) as session:
            query = select(SmsOutbound).order_by(col(SmsOutbound.id))
            for name, value in where.items():
                query = query.where(getattr(SmsOutbound, name) == value)
            return list(session.exec(query).all())

    def wait_for(
        self, found: Callable[[], Any], timeout: float = 60.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


def fresh_postgres_database(server_url: str) -> str:
    name = f"konbit_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def twilio_signature(url: str, form: dict[str, str]) -> str:
    """What Twilio sends: the official validator's signature of the URL and the form."""
    return str(RequestValidator(TWILIO_TOKEN).compute_signature(url, form))


def gateway_settings(anvil: LocalChain, database_url: str, data_dir: Path, port: int) -> Settings:
    return Settings.load(
        env_file=None,
        environ={},
        data_dir=data_dir,
        rpc_url=anvil.url,
        database_url=database_url,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        twilio_auth_token=TWILIO_TOKEN,
        at_webhook_secret=AT_SECRET,
        gtins="1:09506000134352",
        sms_write_wait_seconds=30,
    )


@contextmanager
def serve_gateway(
    anvil: LocalChain, database_url: str, data_dir: Path, live_server: Any
) -> Iterator[tuple[SmsServer, Callable[[], Any]]]:
    """Deploy, migrate, serve; yields the server and a ``restart`` that serves it anew."""
    port = free_port()
    settings = gateway_settings(anvil, database_url, data_dir, port)
    runtime = Runtime(settings)
    key = deployed(runtime)
    server = SmsServer(f"http://127.0.0.1:{port}", runtime, settings, key)
    current: list[Any] = [live_server(settings).__enter__()]

    def restart() -> None:
        current[0].__exit__(None, None, None)
        current[0] = live_server(settings).__enter__()

    try:
        yield server, restart
    finally:
        current[0].__exit__(None, None, None)
        runtime.close()
