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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

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


_keys = ApiKey.__table__.c  # type: ignore[attr-defined]
# Asked on every request: built once (building a statement costs more than running it).
KEY_COLUMNS = (_keys.id, _keys.organisation, _keys.role, _keys.revoked_at)
_KEY_BY_HASH = sa.select(*KEY_COLUMNS).where(_keys.secret_hash == sa.bindparam("secret_hash"))
_TOUCH = (
    sa.update(ApiKey.__table__)  # type: ignore[attr-defined]
    .where(_keys.id == sa.bindparam("key_id"))
    .values(last_used_at=sa.bindparam("now"))
)


def authenticate(engine: Engine, secret: str) -> Actor | None:
    """The actor of an unrevoked key, or None. Revocation takes effect on the next request."""
    with engine.connect() as connection:
        row = connection.execute(_KEY_BY_HASH, {"secret_hash": digest(secret)}).first()
    actor = live_actor(row)
    if actor is not None:
        note_use(engine, actor.key_id)
    return actor


def live_actor(row: Any) -> Actor | None:
    """The actor of a row of :data:`KEY_COLUMNS`; None for no key, or a revoked one."""
    if row is None or row.revoked_at is not None or row.id is None:
        return None
    return Actor(organisation=row.organisation, role=Role(row.role), key_id=row.id)


def use_due(key_id: int | None) -> bool:
    """Whether :func:`note_use` would write (a read of memory: no database)."""
    if key_id is None:
        return False
    return time.monotonic() - _touched.get(key_id, -TOUCH_SECONDS) >= TOUCH_SECONDS


def note_use(engine: Engine, key_id: int | None) -> None:
    """Record when the key was last used, at most once a minute per key: a write on every
    request would make every reader wait for the database's write lock."""
    if key_id is None:
        return
    with _touched_lock:
        due = use_due(key_id)
        if due:
            _touched[key_id] = time.monotonic()
    if due:
        with engine.begin() as connection:
            connection.execute(_TOUCH, {"key_id": key_id, "now": utcnow()})
