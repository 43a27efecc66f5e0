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


class ChainNamespace(SQLModel, table=True):
    """A chain instance this database has state for, known by its genesis block hash.

    The one marked ``active`` is the chain the database followed last: rows recorded
    without a chain (``outbox_tx.chain_genesis`` None) are its. See konbit.services.chains.
    """

    __tablename__ = "chain_namespace"

    genesis_hash: str = Field(primary_key=True, max_length=66)
    chain_id: int = Field(sa_type=BigInteger)
    active: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    bound_at: datetime = Field(default_factory=utcnow)
