"""Outbound SMS: queued in ``sms_outbound``, sent by a background sender with retries.

A message is queued in the same database transaction as whatever caused it (a notice's
key, an inbound message), so it is neither lost nor duplicated by a crash. The sender
claims due rows one by one (a conditional update: several backend instances on one
PostgreSQL never send a message twice), hands each to the provider, and records what the
provider said. A failure is retried with exponential backoff (30 s, 1 min, 2 min, ... at
most an hour) up to ``KONBIT_SMS_MAX_ATTEMPTS``; a permanent refusal is final at once.
Delivery reports move a sent message to delivered or undelivered.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.profiles.models import utcnow
from konbit.sms import encoding
from konbit.sms.models import OutStatus, SmsOutbound
from konbit.sms.phones import masked
from konbit.sms.providers import Provider, SendError

log = logging.getLogger(__name__)

BACKOFF_BASE = 30.0
BACKOFF_MAX = 3600.0
LEASE = timedelta(minutes=2)
BATCH = 50


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``."""
    return float(min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX))


def enqueue(
    session: Session,
    phone: str,
    body: str,
    language: str,
    kind: str,
    *,
    notice_key: str | None = None,
    inbound_id: int | None = None,
) -> SmsOutbound:
    """Add a message to send to ``session`` (the caller commits)."""
    split = encoding.segment(body)
    row = SmsOutbound(
        phone=phone,
        body=body,
        language=language,
        kind=kind,
        encoding=split.encoding.value,
        parts=split.count,
        notice_key=notice_key,
        inbound_id=inbound_id,
    )
    session.add(row)
    return row


def _claim(engine: Engine, row_id: int, now: datetime) -> bool:
    table = SmsOutbound.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        claimed = conn.execute(
            update(table)
            .where(
                table.c.id == row_id,
                or_(
                    table.c.status.in_([OutStatus.QUEUED, OutStatus.RETRY]),
                    (table.c.status == OutStatus.SENDING) & (table.c.lease_until < now),
                ),
            )
            .values(status=OutStatus.SENDING, lease_until=now + LEASE, updated_at=now)
        )
    return bool(claimed.rowcount == 1)


def due(engine: Engine, now: datetime, limit: int = BATCH) -> list[int]:
    with Session(engine) as session:
        ids = session.exec(
            select(SmsOutbound.id)
            .where(
                or_(
                    col(SmsOutbound.status).in_([OutStatus.QUEUED, OutStatus.RETRY])
                    & (col(SmsOutbound.next_attempt_at) <= now),
                    (col(SmsOutbound.status) == OutStatus.SENDING)
                    & (col(SmsOutbound.lease_until) < now),
                )
            )
            .order_by(col(SmsOutbound.id))
            .limit(limit)
        ).all()
    return [i for i in ids if i is not None]


def send_due(engine: Engine, provider: Provider, *, max_attempts: int, limit: int = BATCH) -> int:
    """Send what is due now; returns how many messages were handed to the provider."""
    sent = 0
    for row_id in due(engine, utcnow(), limit):
        now = utcnow()
        if not _claim(engine, row_id, now):
            continue
        with Session(engine) as session:
            row = session.get(SmsOutbound, row_id)
            if row is None:
                continue
            phone, body = row.phone, row.body
        status: str
        error: str | None = None
        provider_id: str | None = None
        try:
            result = provider.send(phone, body)
            status, provider_id = result.status, result.provider_id
            sent += 1
        except SendError as exc:
            error = str(exc)[:300]
            status = OutStatus.FAILED if exc.permanent else OutStatus.RETRY
        except Exception as exc:  # a provider bug must not stop the sender
            log.exception("SMS provider %s failed on message %s", provider.name, row_id)
            error = f"{type(exc).__name__}"[:300]
            status = OutStatus.RETRY
        with Session(engine) as session:
            row = session.get(SmsOutbound, row_id)
            if row is None:
                continue
            row.attempts += 1
            row.provider = provider.name
            row.updated_at = utcnow()
            row.lease_until = None
            if error is not None:
                row.last_error = error
                if status == OutStatus.RETRY and row.attempts >= max_attempts:
                    status = OutStatus.FAILED
                if status == OutStatus.RETRY:
                    row.next_attempt_at = utcnow() + timedelta(seconds=backoff(row.attempts))
                log.warning("SMS %s to %s: %s (%s)", row_id, masked(phone), status, error)
            else:
                row.provider_id = provider_id
                row.sent_at = utcnow()
            # A delivery report may have arrived before the send returned.
            if row.status not in (OutStatus.DELIVERED, OutStatus.UNDELIVERED):
                row.status = status
            session.add(row)
            session.commit()
    return sent


def record_status(
    engine: Engine, provider: str, provider_id: str, status: str, error: str | None = None
) -> bool:
    """A delivery report: move the message to ``status``; False when no message matches."""
    with Session(engine) as session:
        row = session.exec(
            select(SmsOutbound).where(
                SmsOutbound.provider == provider, SmsOutbound.provider_id == provider_id
            )
        ).first()
        if row is None:
            return False
        if row.status in (OutStatus.DELIVERED, OutStatus.UNDELIVERED, OutStatus.FAILED):
            return True  # final; a late "sent" report changes nothing
        row.status = status
        row.updated_at = utcnow()
        if status == OutStatus.DELIVERED:
            row.delivered_at = utcnow()
        if error:
            row.last_error = error[:300]
        session.add(row)
        session.commit()
    return True


def run_sender(
    engine: Engine,
    provider: Provider,
    stop: threading.Event,
    *,
    max_attempts: int,
    poll_seconds: float = 0.5,
) -> None:
    """Send due messages until ``stop`` is set."""
    while not stop.is_set():
        try:
            busy = send_due(engine, provider, max_attempts=max_attempts)
        except Exception:
            log.exception("SMS sender round failed")
            busy = 0
        if not busy:
            stop.wait(poll_seconds)
