"""Access tables: keys that let an organisation act through the HTTP API."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from konbit.db.models import utcnow


class ApiKey(SQLModel, table=True):
    """A bearer key of one organisation. Only a hash of the secret is stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    secret_hash: str = Field(max_length=64, unique=True, description="sha256 hex of the key")
    prefix: str = Field(max_length=16, description="the key's first characters, to tell keys apart")
    organisation: str = Field(max_length=42, index=True, description="the organisation's address")
    role: str = Field(max_length=16)
    label: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
