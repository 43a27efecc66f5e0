"""Outbound SMS providers: one interface, an adapter per provider, chosen by the settings.

``store`` (the default) keeps messages in ``sms_outbound`` only (``konbit sms outbox``
shows them; the operator's pages later); ``console`` prints them; ``twilio`` and
``africastalking`` send them for real with the credentials in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from konbit.settings import Settings


@dataclass(frozen=True)
class SendResult:
    """What the provider said: its message id and the status to record."""

    provider_id: str | None
    status: str  # sent, stored, delivered, queued


class SendError(Exception):
    """The provider did not take the message; ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Provider(Protocol):
    name: str

    def send(self, to: str, body: str) -> SendResult: ...


def from_settings(settings: Settings) -> Provider:
    """The outbound provider ``KONBIT_SMS_PROVIDER`` names."""
    name = settings.sms_provider
    if name == "console":
        from konbit.sms.providers.console import ConsoleProvider

        return ConsoleProvider()
    if name == "twilio":
        from konbit.sms.providers.twilio import TwilioProvider

        return TwilioProvider.from_settings(settings)
    if name == "africastalking":
        from konbit.sms.providers.africastalking import AfricasTalkingProvider

        return AfricasTalkingProvider.from_settings(settings)
    from konbit.sms.providers.store import StoreProvider

    return StoreProvider()
