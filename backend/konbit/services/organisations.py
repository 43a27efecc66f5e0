"""Onboarding: organisations with one role each, and their API keys (operator only)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from sqlmodel import Session, col, select

from konbit.access import keys
from konbit.access.keys import Actor
from konbit.access.models import ApiKey
from konbit.db.models import utcnow
from konbit.profiles.models import OrganisationProfile
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import validate
from konbit.services.common import require_role
from konbit.services.errors import Conflict, InvalidInput, NotFound
from konbit.services.writes import Call, Outcome, Write, earlier_answer, perform


@dataclass(frozen=True)
class OrganisationInput:
    name: str
    role: Role
    #: Its own wallet; None for a custodial account the backend holds.
    address: str | None = None
    contact: str | None = None


def metadata_hash(name: str, role: Role, salt: str) -> str:
    """The on-chain ``metadataHash``: keccak256(salt ++ its display data as JSON).

    Salted, so that nobody can confirm a guessed name against the chain; the salt stays
    in ``organisation_profile`` for whoever must prove the link.
    """
    body = json.dumps({"name": name, "role": role.value}, sort_keys=True).encode()
    return "0x" + keccak(bytes.fromhex(salt[2:]) + body).hex()


def create_organisation(
    runtime: Runtime, actor: Actor, body: OrganisationInput, *, idempotency_key: str | None = None
) -> Outcome:
    """Onboard an organisation with one role; without an address it gets a custodial account."""
    require_role(actor, Role.OPERATOR)
    name = validate.text("name", body.name, max_length=200)
    contact = (
        None if body.contact is None else validate.text("contact", body.contact, max_length=200)
    )
    if body.role == Role.OPERATOR:
        raise InvalidInput("role: organisations take one of the market roles", field="role")
    given = None if body.address is None else validate.address("address", body.address)
    payload = {"name": name, "role": body.role.value, "address": given, "contact": contact}
    first = earlier_answer(runtime, actor, "organisations.create", payload, idempotency_key)
    if first is not None:
        return first
    sealed = None
    if given is None:
        sealed = runtime.vault.seal_account(body.role.value, name[:64])
        address = sealed.address
    else:
        address = given
        with Session(runtime.engine) as session:
            known = session.get(OrganisationProfile, address)
        if known is not None:
            raise Conflict(f"{address} is already onboarded as {known.kind}", field="address")

    salt = "0x" + secrets.token_bytes(32).hex()

    def effects(session: Session) -> dict[str, Any]:
        if sealed is not None:
            session.add(sealed.row)
        session.add(
            OrganisationProfile(
                address=address,
                display_name=name,
                kind=body.role.value,
                contact=contact,
                metadata_salt=salt,
            )
        )
        return {}

    def committed() -> None:
        if sealed is not None:
            runtime.vault.account_committed(sealed.address, sealed.version)

    call = Call(
        "ClusterRegistry",
        "registerOrganisation",
        [address, body.role.role_id, metadata_hash(name, body.role, salt)],
    )
    organisation = {
        "address": address,
        "name": name,
        "role": body.role.value,
        "custodial": given is None,
    }
    write = Write(
        "organisations.create",
        payload,
        [call],
        effects=effects,
        created={"organisation": organisation},
        after_commit=committed,
        duplicate=f"{address} is already onboarded",
        duplicate_field="address",
    )
    return perform(runtime, actor, write, idempotency_key=idempotency_key)


def organisation(runtime: Runtime, address: str) -> OrganisationProfile:
    with Session(runtime.engine) as session:
        row = session.get(OrganisationProfile, validate.address("address", address))
    if row is None:
        raise NotFound(f"no organisation {address}")
    return row


@dataclass(frozen=True)
class IssuedKey:
    """A new key's record; ``secret`` only in the first answer, never stored or replayed."""

    id: int
    prefix: str
    organisation: str
    role: str
    label: str | None
    secret: str | None
    replayed: bool


def issue_key(
    runtime: Runtime,
    actor: Actor,
    address: str,
    label: str | None = None,
    *,
    idempotency_key: str | None = None,
) -> IssuedKey:
    """Issue an API key for an organisation; a replay answers the same key without its secret."""
    require_role(actor, Role.OPERATOR)
    if label is not None:
        label = validate.text("label", label, max_length=100)
    org = organisation(runtime, address)
    secret: list[str] = []

    def effects(session: Session) -> dict[str, Any]:
        row, plain = keys.new_key(session, org.address, Role(org.kind), label)
        secret.append(plain)
        return {
            "key": {
                "id": row.id,
                "prefix": row.prefix,
                "organisation": row.organisation,
                "role": row.role,
                "label": row.label,
            }
        }

    write = Write(
        "organisations.issue_key",
        {"address": org.address, "label": label},
        effects=effects,
    )
    outcome = perform(runtime, actor, write, idempotency_key=idempotency_key)
    info = outcome.created["key"]
    return IssuedKey(
        id=info["id"],
        prefix=info["prefix"],
        organisation=info["organisation"],
        role=info["role"],
        label=info["label"],
        secret=secret[0] if secret else None,
        replayed=outcome.replayed,
    )


def revoke_key(runtime: Runtime, actor: Actor, key_id: int) -> None:
    """Revoke an API key at once (never the operator's last one: nobody could issue keys)."""
    require_role(actor, Role.OPERATOR)
    with Session(runtime.engine) as session:
        row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            raise NotFound(f"no active key {key_id}")
        if row.role == Role.OPERATOR.value:
            others = session.exec(
                select(ApiKey.id)
                .where(ApiKey.role == Role.OPERATOR.value)
                .where(col(ApiKey.revoked_at).is_(None))
                .where(ApiKey.id != key_id)
            ).first()
            if others is None:
                raise Conflict(
                    f"key {key_id} is the operator's last key: issue another one first"
                    " (`konbit apikey`)"
                )
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()


def active_keys(runtime: Runtime) -> list[ApiKey]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None))).all())


def set_active(
    runtime: Runtime,
    actor: Actor,
    address: str,
    active: bool,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Deactivate an organisation (its role is revoked on chain, so its keys stop working)
    or reactivate it (the role is granted again)."""
    require_role(actor, Role.OPERATOR)
    org = organisation(runtime, address)
    role = Role(org.kind)
    function = "grantRole" if active else "revokeRole"
    call = Call("ClusterRegistry", function, [role.role_id, org.address])
    write = Write(
        "organisations.activate" if active else "organisations.deactivate",
        {"address": org.address},
        [call],
    )
    return perform(runtime, actor, write, idempotency_key=idempotency_key)


@dataclass(frozen=True)
class GasSpend:
    address: str
    name: str | None
    role: str | None
    spent_wei: int
    topups: int
    budget_wei: int
    remaining_wei: int | None


def gas_spend(runtime: Runtime, actor: Actor) -> list[GasSpend]:
    """Gas the operator sponsored per account in the last 24 hours, largest first."""
    require_role(actor, Role.OPERATOR)
    spends = runtime.gas_budget.spends()
    with Session(runtime.engine) as session:
        names = {
            p.address: p
            for p in session.exec(
                select(OrganisationProfile).where(col(OrganisationProfile.address).in_(spends))
            ).all()
        }
    out = [
        GasSpend(
            address=s.account,
            name=names[s.account].display_name if s.account in names else None,
            role=names[s.account].kind if s.account in names else None,
            spent_wei=s.spent_wei,
            topups=s.topups,
            budget_wei=s.budget_wei,
            remaining_wei=s.remaining_wei,
        )
        for s in spends.values()
    ]
    return sorted(out, key=lambda g: -g.spent_wei)
