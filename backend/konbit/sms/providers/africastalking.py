"""Africa's Talking: sending SMS over its REST API, reading its delivery reports.

Its callbacks (incoming SMS, USSD, delivery reports) carry no signature: the webhooks put a
secret in the path (``KONBIT_AT_WEBHOOK_SECRET``) and may check the source address
(``KONBIT_AT_ALLOWED_SOURCES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from konbit.settings import Settings
from konbit.sms.models import OutStatus
from konbit.sms.providers import SendError, SendResult

TIMEOUT = 15
#: Recipient status codes of the send API: 100 processed, 101 sent, 102 queued.
ACCEPTED = {100, 101, 102}
#: Codes not worth retrying: invalid sender id, invalid number, unsupported number type,
#: user in blacklist.
PERMANENT = {402, 403, 404, 406}
#: Delivery report statuses -> ours.
STATUSES = {
    "sent": OutStatus.SENT,
    "submitted": OutStatus.SENT,
    "buffered": OutStatus.SENT,
    "success": OutStatus.DELIVERED,
    "rejected": OutStatus.UNDELIVERED,
    "failed": OutStatus.UNDELIVERED,
}


class AfricasTalkingProvider:
    name = "africastalking"

    def __init__(self, username: str, api_key: str, url: str, sender: str | None = None) -> None:
        self.username = username
        self.api_key = api_key
        self.url = url
        self.sender = sender
        self.http = requests.Session()

    @classmethod
    def from_settings(cls, settings: Settings) -> AfricasTalkingProvider:
        if not (settings.at_username and settings.at_api_key):
            raise ValueError(
                "KONBIT_SMS_PROVIDER=africastalking needs KONBIT_AT_USERNAME and KONBIT_AT_API_KEY"
            )
        return cls(
            settings.at_username,
            settings.at_api_key.get_secret_value(),
            settings.at_api_url,
            settings.at_sender_id,
        )

    def send(self, to: str, body: str) -> SendResult:
        data = {"username": self.username, "to": to, "message": body}
        if self.sender:
            data["from"] = self.sender
        try:
            reply = self.http.post(
                self.url,
                data=data,
                headers={"apiKey": self.api_key, "Accept": "application/json"},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise SendError(f"africastalking unreachable: {type(exc).__name__}") from None
        if reply.status_code >= 500 or reply.status_code == 429:
            raise SendError(f"africastalking HTTP {reply.status_code}")
        if reply.status_code >= 400:
            raise SendError(f"africastalking HTTP {reply.status_code}", permanent=True)
        try:
            recipients = reply.json()["SMSMessageData"]["Recipients"]
            recipient = recipients[0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise SendError("africastalking: no recipient in the answer") from None
        code = int(recipient.get("statusCode") or 0)
        if code not in ACCEPTED:
            raise SendError(
                f"africastalking {code} {recipient.get('status')}", permanent=code in PERMANENT
            )
        return SendResult(
            provider_id=str(recipient.get("messageId") or "") or None, status=OutStatus.SENT
        )


def report_of(form: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(message id, our status, failure reason) of a delivery report."""
    message_id = form.get("id")
    status = STATUSES.get(str(form.get("status") or "").lower())
    reason = form.get("failureReason")
    return (str(message_id) if message_id else None, status, str(reason) if reason else None)
