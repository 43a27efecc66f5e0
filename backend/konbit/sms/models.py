"""The gateway's tables: messages in and out, USSD sessions, notices sent, pending writes.

Private off-chain data (principle 1): phone numbers and what was said never go on chain.
Agents (with their PIN hashes) and farmer codes live in :mod:`konbit.profiles`, below the
channels, since the API and the pages use them too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from konbit.profiles.models import utcnow


class InStatus:
    ANSWERED = "answered"  # the reply went back in the webhook's answer (TwiML, console)
    QUEUED_REPLY = "queued_reply"  # the reply is in sms_outbound (Africa's Talking)


class OutStatus:
    QUEUED = "queued"
    SENDING = "sending"
    RETRY = "retry"
    STORED = "stored"  # the store provider: kept in this table, not sent anywhere
    SENT = "sent"  # accepted by the provider
    DELIVERED = "delivered"  # the handset has it (delivery report)
    UNDELIVERED = "undelivered"  # final: the network could not deliver it
    FAILED = "failed"  # final: the provider refused it, or attempts ran out

    FINAL = frozenset({STORED, DELIVERED, UNDELIVERED, FAILED})


class SmsInbound(SQLModel, table=True):
    """An SMS a phone sent us, once per provider message id (a retried webhook is a replay)."""

    __tablename__ = "sms_inbound"
    __table_args__ = (UniqueConstraint("provider", "provider_id", name="uq_sms_inbound_provider"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    provider_id: str = Field(max_length=100, description="MessageSid, Africa's Talking id, ...")
    phone: str = Field(max_length=40, index=True, description="sender, E.164 when it parses")
    recipient: str | None = Field(default=None, max_length=40, description="our number")
    body: str = Field(sa_type=Text)
    language: str | None = Field(default=None, max_length=2, description="of the reply")
    reply: str | None = Field(default=None, sa_type=Text)
    reply_key: str | None = Field(default=None, max_length=40, description="catalogue key")
    status: str = Field(default=InStatus.ANSWERED, max_length=16)
    received_at: datetime = Field(default_factory=utcnow)


class SmsOutbound(SQLModel, table=True):
    """An SMS to send (notice, receipt, reply); the sender sends it with retries."""

    __tablename__ = "sms_outbound"
    __table_args__ = (Index("ix_sms_outbound_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=16, index=True, description="E.164")
    body: str = Field(sa_type=Text)
    language: str = Field(max_length=2)
    kind: str = Field(max_length=24, description="reply, notice_lot, receipt, ...")
    encoding: str = Field(max_length=4, description="gsm7 or ucs2")
    parts: int
    status: str = Field(default=OutStatus.QUEUED, max_length=12)
    provider: str | None = Field(default=None, max_length=20)
    provider_id: str | None = Field(default=None, max_length=100, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=300)
    notice_key: str | None = Field(default=None, max_length=120)
    inbound_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    delivered_at: datetime | None = None


class SmsNotice(SQLModel, table=True):
    """A notice sent for one event to one phone: its key makes it exactly once."""

    __tablename__ = "sms_notice"

    key: str = Field(primary_key=True, max_length=120, description="e.g. lot:12, receipt:3:0xab..")
    phone: str = Field(max_length=16)
    outbound_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)


class SmsCursor(SQLModel, table=True):
    """How far the notifier read ``chain_event`` (block, log index, block hash)."""

    __tablename__ = "sms_cursor"

    name: str = Field(primary_key=True, max_length=32)
    block_number: int = Field(sa_type=BigInteger)
    log_index: int
    block_hash: str | None = Field(default=None, max_length=66)
    updated_at: datetime = Field(default_factory=utcnow)


class SmsPendingLot(SQLModel, table=True):
    """A lot an agent recorded that was not mined before the reply: its number follows."""

    __tablename__ = "sms_pending_lot"

    outbox_tx_id: int = Field(primary_key=True, sa_type=BigInteger)
    phone: str = Field(max_length=16)
    language: str = Field(max_length=2)
    farmer_code: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=utcnow)


class UssdSessionRow(SQLModel, table=True):
    """A USSD session's menu state, kept between the network's requests."""

    __tablename__ = "ussd_session"
    __table_args__ = (Index("ix_ussd_session_phone", "phone", "updated_epoch"),)

    session_id: str = Field(primary_key=True, max_length=100)
    provider: str = Field(max_length=20)
    phone: str = Field(max_length=40)
    state: str = Field(sa_type=Text, description="JSON")
    consumed: int = 0
    last_text: str | None = Field(default=None, sa_type=Text)
    last_reply: str | None = Field(default=None, sa_type=Text)
    ended: bool = False
    updated_epoch: float = Field(description="unix time of the last request")
    created_at: datetime = Field(default_factory=utcnow)


SMS_MODELS: tuple[type[SQLModel], ...] = (
    SmsInbound,
    SmsOutbound,
    SmsNotice,
    SmsCursor,
    SmsPendingLot,
    UssdSessionRow,
)
