"""The pages' own tables: people who sign in to a dashboard, and their sessions."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from konbit.db.models import utcnow


class WebUser(SQLModel, table=True):
    """A person of one organisation who signs in with a password (Argon2id hash only)."""

    __tablename__ = "web_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    organisation: str = Field(max_length=42, index=True, description="the organisation's address")
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    disabled_at: datetime | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept."""

    __tablename__ = "web_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    organisation: str = Field(max_length=42)
    role: str = Field(max_length=16)
    user_id: int | None = Field(default=None, description="signed in with a password")
    api_key_id: int | None = Field(default=None, description="signed in with an API key")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
