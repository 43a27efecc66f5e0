"""Development: messages printed on standard output (``konbit sms send`` and ``konbit ussd``
drive the same code paths as the webhooks)."""

from __future__ import annotations

import sys
import uuid
from typing import TextIO

from konbit.sms.models import OutStatus
from konbit.sms.providers import SendResult


class ConsoleProvider:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, to: str, body: str) -> SendResult:
        out = self.stream or sys.stdout
        print(f"--- SMS to {to} ---\n{body}\n", file=out, flush=True)
        return SendResult(provider_id=f"console-{uuid.uuid4().hex[:12]}", status=OutStatus.SENT)
