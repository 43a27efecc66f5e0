"""Outbound SMS: queued in ``sms_outbound``, sent by a background sender with retries.

A message is queued in the same database transaction as whatever caused it (a notice's
key, an inbound message), so it is neither lost nor duplicated by a crash. The sender
claims the due rows in one conditional update (several backend instances on one
PostgreSQL never send a message twice), hands each to the provider, and records what the
provider said. A failure is retried with exponential backoff (30 s, 1 min, 2 min, ... at
most an hour) up to ``KONBIT_SMS_MAX_ATTEMPTS``; a permanent refusal is final at once.
Delivery reports move a sent message to delivered or undelivered.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, insert, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.profiles.models import utcnow
from konbit.profiles.phones import masked
from konbit.sms import encoding
from konbit.sms.models import OutStatus, SmsOutbound
from konbit.sms.providers import Provider, SendError

log = logging.getLogger(__name__)

BACKOFF_BASE = 30.0
BACKOFF_MAX = 3600.0
LEASE = timedelta(minutes=2)
BATCH = 50
#: Seconds the sender may hold what the provider said before recording it.
RECORD_EVERY = 0.05


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``."""
    return float(min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_MAX))


@dataclass(frozen=True)
class Message:
    """A message to queue: to whom, what, in which language, why (``kind``), and the key
    of the notice it is, if it is one."""

    phone: str
    body: str
    language: str
    kind: str
    notice_key: str | None = None
    #: The inbound message this replies to.
    inbound_id: int | None = None


def enqueue_many(session: Session, messages: list[Message]) -> list[int]:
    """Add ``messages`` to ``session``'s transaction (the caller commits) in one statement;
    returns their ids, in order.

    A Core insert, not a row object each: a block of lots is a notice each, and building
    the objects cost more than the rest of the notifier's work for them."""
    if not messages:
        return []
    now = utcnow()
    table = SmsOutbound.__table__  # type: ignore[attr-defined]
    values = []
    for message in messages:
        split = encoding.segment(message.body)
        values.append(
            {
                "phone": message.phone,
                "body": message.body,
                "language": message.language,
                "kind": message.kind,
                "encoding": split.encoding.value,
                "parts": split.count,
                "status": OutStatus.QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "notice_key": message.notice_key,
                "inbound_id": message.inbound_id,
                "created_at": now,
                "updated_at": now,
            }
        )
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(row[0]) for row in session.execute(statement, values)]


def _claim(engine: Engine, ids: list[int], now: datetime) -> list[tuple[int, str, str]]:
    """Claim the rows of ``ids`` still due, in one conditional update; returns the
    ``(id, phone, body)`` of those this call claimed, oldest first."""
    table = SmsOutbound.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        claimed = conn.execute(
            update(table)
            .where(
                table.c.id.in_(ids),
                or_(
                    table.c.status.in_([OutStatus.QUEUED, OutStatus.RETRY]),
                    (table.c.status == OutStatus.SENDING) & (table.c.lease_until < now),
                ),
            )
            .values(status=OutStatus.SENDING, lease_until=now + LEASE, updated_at=now)
            .returning(table.c.id, table.c.phone, table.c.body)
        ).all()
    return sorted((int(row.id), str(row.phone), str(row.body)) for row in claimed)


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


@dataclass(frozen=True)
class _Sent:
    """What the provider said of one message."""

    row_id: int
    phone: str
    status: str
    error: str | None = None
    provider_id: str | None = None


def send_due(engine: Engine, provider: Provider, *, max_attempts: int, limit: int = BATCH) -> int:
    """Send what is due now; returns how many messages were handed to the provider.

    The due messages are claimed in one transaction, and what the provider said is
    recorded a few at a time (at most :data:`RECORD_EVERY` seconds late): each
    transaction holds the database's one writer lock, which every channel's writes share.
    A crash between a send and its record sends the message again once its lease ends.
    """
    ids = due(engine, utcnow(), limit)
    if not ids:
        return 0
    sent = 0
    unrecorded: list[_Sent] = []
    since = time.monotonic()
    for row_id, phone, body in _claim(engine, ids, utcnow()):
        try:
            result = provider.send(phone, body)
            unrecorded.append(_Sent(row_id, phone, result.status, provider_id=result.provider_id))
            sent += 1
        except SendError as exc:
            status = OutStatus.FAILED if exc.permanent else OutStatus.RETRY
            unrecorded.append(_Sent(row_id, phone, status, error=str(exc)[:300]))
        except Exception as exc:  # a provider bug must not stop the sender
            log.exception("SMS provider %s failed on message %s", provider.name, row_id)
            unrecorded.append(_Sent(row_id, phone, OutStatus.RETRY, error=type(exc).__name__))
        if time.monotonic() - since >= RECORD_EVERY:
            _record(engine, provider.name, unrecorded, max_attempts)
            unrecorded, since = [], time.monotonic()
    _record(engine, provider.name, unrecorded, max_attempts)
    return sent


def _record(engine: Engine, provider: str, results: list[_Sent], max_attempts: int) -> None:
    if not results:
        return
    sent = [r for r in results if r.error is None]
    refused = [r for r in results if r.error is not None]
    now = utcnow()
    with Session(engine) as session:
        # Every row is read before the first change: the writer lock is taken by the
        # first write (an autoflush before a later read would take it early).
        rows = (
            {
                row.id: row
                for row in session.exec(
                    select(SmsOutbound).where(col(SmsOutbound.id).in_([r.row_id for r in refused]))
                ).all()
            }
            if refused
            else {}
        )
        if sent:
            # The common case in one statement, not a row object each: what a batch of
            # notices costs the background is mostly this bookkeeping.
            session.execute(
                _SENT,
                [
                    {
                        "row_id": r.row_id,
                        "pid": r.provider_id,
                        "said": r.status,
                        "provider": provider,
                        "now": now,
                    }
                    for r in sent
                ],
            )
        for result in refused:
            row = rows.get(result.row_id)
            if row is None:
                continue
            status = result.status
            row.attempts += 1
            row.provider = provider
            row.updated_at = now
            row.lease_until = None
            row.last_error = result.error
            if status == OutStatus.RETRY and row.attempts >= max_attempts:
                status = OutStatus.FAILED
            if status == OutStatus.RETRY:
                row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts))
            log.warning("SMS %s to %s: %s (%s)", row.id, masked(result.phone), status, result.error)
            # A delivery report may have arrived before the send returned.
            if row.status not in _REPORTED:
                row.status = status
            session.add(row)
        session.commit()


_REPORTED = (OutStatus.DELIVERED, OutStatus.UNDELIVERED)
_outbound = SmsOutbound.__table__  # type: ignore[attr-defined]
#: A message the provider took: its id and status; kept as it is when a delivery report
#: arrived before the send returned.
_SENT = (
    update(_outbound)
    .where(_outbound.c.id == bindparam("row_id"))
    .values(
        attempts=_outbound.c.attempts + 1,
        provider=bindparam("provider"),
        provider_id=bindparam("pid"),
        updated_at=bindparam("now"),
        sent_at=bindparam("now"),
        lease_until=None,
        # Not IN (...): an expanding parameter cannot be used with executemany.
        status=case(
            (or_(*(_outbound.c.status == s for s in _REPORTED)), _outbound.c.status),
            else_=bindparam("said"),
        ),
    )
)


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
