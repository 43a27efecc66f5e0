"""API keys as Bearer tokens, and the dependencies that check role and ownership.

A key is ``kb_`` + 43 random URL-safe characters. The database keeps its SHA-256 (the
secret has 256 bits of entropy, so a slow hash adds nothing) and a short prefix to list it
by; the key itself is shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from konbit.api.models import ApiKey, Role
from konbit.api.problems import Problem
from konbit.db.models import utcnow

KEY_PREFIX = "kb_"


@dataclass(frozen=True)
class Actor:
    """Who is calling: an organisation, by address, acting in one role."""

    key_id: int
    organisation: str
    role: Role


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    engine: Engine, organisation: str, role: Role, label: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret (shown to the caller once)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        secret_hash=_digest(secret),
        prefix=secret[:10],
        organisation=organisation,
        role=role.value,
        label=label,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    return row, secret


def authenticate(engine: Engine, secret: str) -> Actor | None:
    with Session(engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.secret_hash == _digest(secret))).first()
        if row is None or row.revoked_at is not None or row.id is None:
            return None
        row.last_used_at = utcnow()
        session.add(row)
        session.commit()
        return Actor(key_id=row.id, organisation=row.organisation, role=Role(row.role))


def current_actor(request: Request) -> Actor:
    """401 without a valid, unrevoked key."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Problem(401, "send an API key as `Authorization: Bearer kb_...`")
    actor = authenticate(request.app.state.engine, secret.strip())
    if actor is None:
        raise Problem(401, "the API key is unknown or revoked")
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


def require(*roles: Role) -> Callable[[Actor], Actor]:
    """A dependency that lets only ``roles`` through (403 for any other role)."""
    allowed = ", ".join(r.value for r in roles)

    def check(actor: ActorDep) -> Actor:
        if actor.role not in roles:
            raise Problem(
                403, f"this needs the role {allowed}; the key's role is {actor.role.value}"
            )
        return actor

    return check


def owner_or_403(actor: Actor, owner: str | None, what: str) -> None:
    """Ownership: an organisation acts only on its own orders, lots, jobs, offers."""
    if owner is None or owner.lower() != actor.organisation.lower():
        raise Problem(403, f"{what} belongs to another organisation")
