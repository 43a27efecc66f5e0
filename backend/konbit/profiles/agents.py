"""A cooperative's agents: the phones that may record lots by SMS or USSD.

Private off-chain data, like the farmers' profiles. The PIN an agent confirms writes with
is kept only as an Argon2id hash (memory-hard); after repeated wrong PINs the agent is
locked until the cooperative resets the PIN (:mod:`konbit.services.agents`).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from konbit.profiles.models import Language, utcnow


class AgentProfile(SQLModel, table=True):
    """A phone that acts for one cooperative at its collection centre."""

    __tablename__ = "cooperative_agent"

    id: int | None = Field(default=None, primary_key=True)
    cooperative: str = Field(max_length=42, index=True, description="the cooperative's address")
    phone: str = Field(max_length=16, unique=True, description="E.164")
    name: str = Field(max_length=200)
    language: str = Field(default=Language.HAITIAN_CREOLE.value, max_length=2)
    pin_hash: str = Field(max_length=200, description="Argon2id hash of the PIN")
    failed_pins: int = Field(default=0, description="wrong PINs since the last right one")
    locked_at: datetime | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
