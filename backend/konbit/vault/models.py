"""The vault's table: one row per custodial account, its private key sealed (see crypto)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class CustodialAccount(SQLModel, table=True):
    """A secp256k1 key the backend holds and signs with for a farmer, cooperative or operator.

    No personal data here: ``label`` is an operator's handle, names live elsewhere.
    Sealed fields are left out of the repr (they are ciphertext, but noise in logs).
    """

    __tablename__ = "custodial_account"
    __table_args__ = (UniqueConstraint("address", name="uq_custodial_account_address"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=42, description="EIP-55 checksummed")
    kind: str = Field(max_length=32, description="farmer, cooperative, operator, ...")
    label: str | None = Field(default=None, max_length=64)
    key_version: int = Field(index=True, description="master key version wrapping data_key")
    key_nonce: bytes = Field(repr=False)
    key_ciphertext: bytes = Field(repr=False, description="private key under the data key")
    data_key_nonce: bytes = Field(repr=False)
    wrapped_data_key: bytes = Field(repr=False, description="data key under the master key")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
