"""The default provider: a message stays in ``sms_outbound``, marked ``stored``."""

from __future__ import annotations

from konbit.sms.models import OutStatus
from konbit.sms.providers import SendResult


class StoreProvider:
    name = "store"

    def send(self, to: str, body: str) -> SendResult:
        return SendResult(provider_id=None, status=OutStatus.STORED)
