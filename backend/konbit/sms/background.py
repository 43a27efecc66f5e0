"""The gateway's background work in a served app: notices from the mirror, and the sender."""

from __future__ import annotations

import logging
import threading

from fastapi import APIRouter

from konbit.runtime import Runtime
from konbit.settings import Settings, SettingsError
from konbit.sms.notices import Notifier
from konbit.sms.outbound import run_sender
from konbit.sms.providers import from_settings
from konbit.standards.digital_link import GtinError, parse_gtins

log = logging.getLogger(__name__)


def start(runtime: Runtime, stop: threading.Event) -> list[threading.Thread]:
    """Start the notifier (when ``KONBIT_SMS_NOTICES``) and the outbound sender."""
    settings = runtime.settings
    threads = []
    if settings.sms_notices:
        notifier = Notifier(runtime)
        threads.append(
            threading.Thread(target=notifier.run, args=(stop,), name="sms-notices", daemon=True)
        )
    try:
        provider = from_settings(settings)
    except ValueError as exc:
        log.error("SMS sender not started: %s", exc)
    else:
        threads.append(
            threading.Thread(
                target=run_sender,
                args=(runtime.engine, provider, stop),
                kwargs={"max_attempts": settings.sms_max_attempts},
                name="sms-sender",
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()
    return threads


def webhook_router() -> APIRouter:
    """The providers' inbound webhooks (SMS, USSD, delivery reports)."""
    from konbit.sms import webhooks

    return webhooks.router


def routers(settings: Settings) -> list[APIRouter]:
    """The other routers :mod:`konbit.server` mounts: agents, labels and receipts.

    Checks ``KONBIT_GTINS`` first (a wrong check digit stops the server from starting).
    """
    from konbit.sms import admin, resolver

    try:
        parse_gtins(settings.gtins)
    except GtinError as exc:
        raise SettingsError(f"invalid settings: KONBIT_GTINS: {exc}") from None
    return [admin.router, resolver.router]
