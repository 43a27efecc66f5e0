"""Twilio: webhook signatures (``X-Twilio-Signature``), TwiML replies, sending messages.

Signatures are checked with the official ``twilio`` package's ``RequestValidator`` over the
URL Twilio requested: behind a proxy that is the public URL (``KONBIT_PUBLIC_BASE_URL`` +
the path and query), not the one the server sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from konbit.settings import Settings
from konbit.sms.models import OutStatus
from konbit.sms.providers import SendError, SendResult

#: Twilio message statuses (status callbacks) -> ours.
STATUSES = {
    "accepted": OutStatus.SENT,
    "scheduled": OutStatus.SENT,
    "queued": OutStatus.SENT,
    "sending": OutStatus.SENT,
    "sent": OutStatus.SENT,
    "delivered": OutStatus.DELIVERED,
    "read": OutStatus.DELIVERED,
    "undelivered": OutStatus.UNDELIVERED,
    "failed": OutStatus.FAILED,
    "canceled": OutStatus.FAILED,
}


def valid_signature(
    token: str, url: str, params: Any, signature: str | None, settings_header: str | None = None
) -> bool:
    """True when ``signature`` is Twilio's for ``url`` and the form ``params``."""
    if not signature:
        return False
    validator = RequestValidator(token)
    algorithm = get_signature_algorithm(settings_header)
    return bool(validator.validate(url, params, signature, algorithm))


def twiml(message: str | None) -> str:
    """A TwiML answer: one message back to the sender, or none."""
    if not message:
        return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        f"{escape(message)}</Message></Response>"
    )


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        status_callback: str | None = None,
        http_client: Any = None,
    ) -> None:
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self.sender = sender
        self.status_callback = status_callback

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioProvider:
        if not (
            settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from
        ):
            raise ValueError(
                "KONBIT_SMS_PROVIDER=twilio needs KONBIT_TWILIO_ACCOUNT_SID, "
                "KONBIT_TWILIO_AUTH_TOKEN and KONBIT_TWILIO_FROM"
            )
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_from,
            status_callback=f"{settings.effective_public_base_url}/sms/twilio/status",
        )

    def send(self, to: str, body: str) -> SendResult:
        options: dict[str, Any] = {"to": to, "body": body}
        if self.sender.startswith("MG"):
            options["messaging_service_sid"] = self.sender
        else:
            options["from_"] = self.sender
        if self.status_callback:
            options["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**options)
        except TwilioRestException as exc:
            permanent = 400 <= exc.status < 500 and exc.status != 429
            raise SendError(
                f"twilio {exc.status} {exc.code}: {exc.msg}", permanent=permanent
            ) from None
        except Exception as exc:  # connection errors
            raise SendError(f"twilio unreachable: {type(exc).__name__}") from None
        return SendResult(
            provider_id=message.sid, status=STATUSES.get(message.status or "", OutStatus.SENT)
        )


def status_of(form: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(message sid, our status, error) of a Twilio status callback."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    raw = str(form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    error = form.get("ErrorCode")
    return (
        str(sid) if sid else None,
        STATUSES.get(raw),
        f"twilio error {error}" if error else None,
    )
