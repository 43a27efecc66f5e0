"""Outbox tables: one row per intended transaction, one row per sender (nonce, lease)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class TxStatus(StrEnum):
    QUEUED = "queued"  # recorded, not yet signed: no nonce
    SIGNED = "signed"  # nonce allocated, raw bytes stored: may or may not have been sent
    SENT = "sent"  # accepted by the node, waiting for a receipt
    MINED = "mined"  # receipt with status 1
    FAILED = "failed"  # reverted (receipt status 0 or gas estimate), error decoded

    @property
    def final(self) -> bool:
        return self in (TxStatus.MINED, TxStatus.FAILED)


IN_FLIGHT = (TxStatus.SIGNED.value, TxStatus.SENT.value)
PENDING = (TxStatus.QUEUED.value, *IN_FLIGHT)


class OutboxTx(SQLModel, table=True):
    """An intended transaction and everything that happened to it."""

    __tablename__ = "outbox_tx"
    __table_args__ = (
        Index("ix_outbox_tx_sender_status", "sender", "status"),
        # The same signed bytes may be sent to two instances of a chain (two fresh local
        # chains: same key, nonce, fees and chain id): one row each.
        UniqueConstraint("chain_genesis", "tx_hash", name="uq_outbox_tx_chain_tx_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    chain_genesis: str | None = Field(
        default=None,
        max_length=66,
        description="genesis hash of the chain the row is for (konbit.services.chains); "
        "None: not said, the chain the database follows now",
    )
    request_hash: str = Field(max_length=66, description="keccak of what was asked, per key")
    sender: str = Field(max_length=42)
    contract: str | None = Field(default=None, max_length=64, description="None: value transfer")
    function: str | None = Field(default=None, max_length=100)
    args_json: str = Field(default="[]", sa_type=Text)
    to_address: str | None = Field(default=None, max_length=42, description="None: creation")
    data: str = Field(default="0x", sa_type=Text, description="calldata or init code, 0x-hex")
    value_wei: str = Field(default="0", max_length=80, description="decimal string (wei > 2^63)")
    status: str = Field(default=TxStatus.QUEUED.value, max_length=16, index=True)
    nonce: int | None = Field(default=None, sa_type=BigInteger)
    gas_limit: int | None = Field(default=None, sa_type=BigInteger)
    max_fee_per_gas: int | None = Field(default=None, sa_type=BigInteger)
    max_priority_fee_per_gas: int | None = Field(default=None, sa_type=BigInteger)
    raw_tx: str | None = Field(default=None, sa_type=Text)
    tx_hash: str | None = Field(default=None, max_length=66, index=True)
    replaced_json: str | None = Field(
        default=None,
        sa_type=Text,
        description="[[tx_hash, raw_tx], ...] of earlier signatures of the same nonce "
        "(re-signed when the fee no longer fitted): any of them may be the one mined",
    )
    block_number: int | None = Field(default=None, sa_type=BigInteger, index=True)
    block_hash: str | None = Field(default=None, max_length=66)
    gas_used: int | None = Field(default=None, sa_type=BigInteger)
    contract_address: str | None = Field(default=None, max_length=42)
    error_name: str | None = Field(default=None, max_length=100)
    error_args_json: str | None = Field(default=None, sa_type=Text)
    last_error: str | None = Field(default=None, sa_type=Text, description="node's last refusal")
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    signed_at: datetime | None = None
    sent_at: datetime | None = None
    mined_at: datetime | None = None


class OutboxSender(SQLModel, table=True):
    """Per-sender state: the next nonce to allocate and which worker holds the sender."""

    __tablename__ = "outbox_sender"

    sender: str = Field(primary_key=True, max_length=42)
    next_nonce: int | None = Field(default=None, sa_type=BigInteger, description="None: resync")
    chain_genesis: str | None = Field(
        default=None, max_length=66, description="the chain next_nonce counts on; another: resync"
    )
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None


class OutboxRequest(SQLModel, table=True):
    """A write request claimed under its idempotency key, with its first answer.

    The claim is inserted in the same database transaction as everything the request
    creates (outbox rows, custodial account, profile, organisation, API key), so a
    request either exists whole with its claim or not at all; a replay finds the claim and
    returns the first answer.
    """

    __tablename__ = "outbox_request"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_outbox_request_scope_key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=42, description="the acting organisation's address")
    key: str = Field(max_length=100, description="the client's idempotency key")
    operation: str = Field(max_length=64)
    fingerprint: str = Field(max_length=66, description="keccak of the operation and its input")
    answer_json: str = Field(default="{}", sa_type=Text, description="what the write created")
    tx_ids_json: str = Field(default="[]", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)
