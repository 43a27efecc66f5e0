"""API keys: issued once as a secret, kept as a SHA-256, looked up per request.

A key is ``kb_`` + 43 random URL-safe characters. The database keeps its SHA-256 (the
secret has 256 bits of entropy, so a slow hash adds nothing) and a short prefix to list it
by; the key itself is shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from konbit.access.models import ApiKey
from konbit.db.models import utcnow
from konbit.roles import Role

KEY_PREFIX = "kb_"
#: ``last_used_at`` is written at most this often per key (not on every request).
TOUCH_SECONDS = 60.0


@dataclass(frozen=True)
class Actor:
    """Who is acting: an organisation, by address, in one role (and through which key)."""

    organisation: str
    role: Role
    key_id: int | None = None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(
    session: Session, organisation: str, role: Role, label: str | None = None
) -> tuple[ApiKey, str]:
    """Add a key to ``session`` (the caller commits); returns the row and the secret."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        secret_hash=digest(secret),
        prefix=secret[:10],
        organisation=organisation,
        role=role.value,
        label=label,
    )
    session.add(row)
    session.flush()
    return row, secret


def issue_key(
    engine: Engine, organisation: str, role: Role, label: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key in its own transaction; returns the row and the secret (shown once)."""
    with Session(engine, expire_on_commit=False) as session:
        row, secret = new_key(session, organisation, role, label)
        session.commit()
    return row, secret


_touched: dict[int, float] = {}
_touched_lock = threading.Lock()


def authenticate(engine: Engine, secret: str) -> Actor | None:
    """The actor of an unrevoked key, or None. Revocation takes effect on the next request."""
    with Session(engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.secret_hash == digest(secret))).first()
        if row is None or row.revoked_at is not None or row.id is None:
            return None
        actor = Actor(organisation=row.organisation, role=Role(row.role), key_id=row.id)
        now = time.monotonic()
        with _touched_lock:
            due = now - _touched.get(row.id, -TOUCH_SECONDS) >= TOUCH_SECONDS
            if due:
                _touched[row.id] = now
        if due:
            row.last_used_at = utcnow()
            session.add(row)
            session.commit()
        return actor
