"""Cooperative agents: the phones that record lots for the cooperative by SMS or USSD.

A cooperative registers each agent's phone with a PIN; the agent confirms every write with
it. The PIN is kept only as an Argon2id hash. After ``MAX_PIN_FAILURES`` wrong PINs in a row
the agent is locked until the cooperative resets the PIN. Everything here is off chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from konbit.access.keys import Actor
from konbit.profiles.agents import AgentProfile
from konbit.profiles.models import Language, utcnow
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import validate
from konbit.services.common import require_role
from konbit.services.errors import Conflict, InvalidInput, NotFound

MAX_PIN_FAILURES = 5
PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")

#: Argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes).
_hasher = PasswordHasher()


@dataclass(frozen=True)
class AgentInput:
    phone: str
    name: str
    pin: str
    language: str = Language.HAITIAN_CREOLE.value


@dataclass(frozen=True)
class PinCheck:
    """The outcome of a PIN: right, wrong (with the tries left), or the agent is locked."""

    ok: bool
    locked: bool
    tries_left: int


def check_pin_format(pin: str, field: str = "pin") -> str:
    if not isinstance(pin, str) or not PIN_PATTERN.fullmatch(pin):
        raise InvalidInput("the PIN must be 4 to 8 digits", field=field)
    return pin


def _view(agent: AgentProfile) -> dict[str, Any]:
    return {
        "id": agent.id,
        "cooperative": agent.cooperative,
        "phone": agent.phone,
        "name": agent.name,
        "language": agent.language,
        "active": agent.active,
        "locked": agent.locked_at is not None,
    }


def register_agent(runtime: Runtime, actor: Actor, agent: AgentInput) -> dict[str, Any]:
    """Register a phone as one of the acting cooperative's agents."""
    require_role(actor, Role.COOPERATIVE)
    phone = validate.phone("phone", agent.phone)
    name = validate.text("name", agent.name, max_length=200)
    if agent.language not in {lang.value for lang in Language}:
        raise InvalidInput("language must be ht, fr or en", field="language")
    pin_hash = _hasher.hash(check_pin_format(agent.pin))
    row = AgentProfile(
        cooperative=actor.organisation,
        phone=phone,
        name=name,
        language=agent.language,
        pin_hash=pin_hash,
    )
    with Session(runtime.engine, expire_on_commit=False) as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict(f"phone {phone} is already an agent's", field="phone") from None
    return _view(row)


def _own(session: Session, actor: Actor, phone: str) -> AgentProfile:
    row = session.exec(select(AgentProfile).where(AgentProfile.phone == phone)).first()
    if row is None or row.cooperative.lower() != actor.organisation.lower():
        raise NotFound(f"no agent with phone {phone} in this cooperative", field="phone")
    return row


def reset_pin(runtime: Runtime, actor: Actor, phone: str, pin: str) -> dict[str, Any]:
    """Give an agent a new PIN; unlocks and reactivates the agent."""
    require_role(actor, Role.COOPERATIVE)
    phone = validate.phone("phone", phone)
    pin_hash = _hasher.hash(check_pin_format(pin))
    with Session(runtime.engine, expire_on_commit=False) as session:
        row = _own(session, actor, phone)
        row.pin_hash = pin_hash
        row.failed_pins = 0
        row.locked_at = None
        row.active = True
        row.updated_at = utcnow()
        session.add(row)
        session.commit()
    return _view(row)


def deactivate_agent(runtime: Runtime, actor: Actor, phone: str) -> dict[str, Any]:
    """The phone may no longer act for the cooperative (a PIN reset reactivates it)."""
    require_role(actor, Role.COOPERATIVE)
    phone = validate.phone("phone", phone)
    with Session(runtime.engine, expire_on_commit=False) as session:
        row = _own(session, actor, phone)
        row.active = False
        row.updated_at = utcnow()
        session.add(row)
        session.commit()
    return _view(row)


def list_agents(runtime: Runtime, actor: Actor) -> list[dict[str, Any]]:
    require_role(actor, Role.COOPERATIVE)
    with Session(runtime.engine) as session:
        rows = session.exec(
            select(AgentProfile)
            .where(AgentProfile.cooperative == actor.organisation)
            .order_by(col(AgentProfile.id))
        ).all()
    return [_view(r) for r in rows]


def check_pin(runtime: Runtime, agent_id: int, pin: str) -> PinCheck:
    """Verify an agent's PIN, counting failures; the agent is locked at the limit."""
    with Session(runtime.engine) as session:
        row = session.get(AgentProfile, agent_id)
        if row is None or not row.active:
            return PinCheck(ok=False, locked=True, tries_left=0)
        if row.locked_at is not None:
            return PinCheck(ok=False, locked=True, tries_left=0)
        stored = row.pin_hash
    ok: bool
    try:
        ok = bool(_hasher.verify(stored, pin))
    except (VerificationError, InvalidHashError):
        ok = False
    with Session(runtime.engine) as session:
        table = AgentProfile.__table__  # type: ignore[attr-defined]
        if ok:
            session.execute(
                update(table)
                .where(table.c.id == agent_id, table.c.locked_at.is_(None))
                .values(failed_pins=0)
            )
            session.commit()
            return PinCheck(ok=True, locked=False, tries_left=MAX_PIN_FAILURES)
        session.execute(
            update(table)
            .where(table.c.id == agent_id)
            .values(failed_pins=table.c.failed_pins + 1, updated_at=utcnow())
        )
        failed = session.execute(
            select(table.c.failed_pins).where(table.c.id == agent_id)
        ).scalar_one()
        locked = failed >= MAX_PIN_FAILURES
        if locked:
            session.execute(
                update(table)
                .where(table.c.id == agent_id, table.c.locked_at.is_(None))
                .values(locked_at=utcnow())
            )
        session.commit()
    return PinCheck(ok=False, locked=locked, tries_left=max(0, MAX_PIN_FAILURES - failed))
