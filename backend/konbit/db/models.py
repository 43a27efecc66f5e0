"""SQLModel tables. Schema changes go through Alembic (konbit/db/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Deployment(SQLModel, table=True):
    """The address book: where each Konbit contract lives on each chain."""

    __tablename__ = "deployment"
    __table_args__ = (
        UniqueConstraint("chain_id", "contract", name="uq_deployment_chain_contract"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(index=True, sa_type=BigInteger)
    contract: str = Field(max_length=64)
    address: str = Field(max_length=42)
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    code_hash: str = Field(max_length=66, description="keccak256 of the deployed runtime code")
    created_at: datetime = Field(default_factory=utcnow)
