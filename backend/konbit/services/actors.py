"""Who is acting, and whether the chain still lets them: keys follow on-chain roles.

An API key (or an agent's phone) names an organisation and a role; it works only while the
organisation holds that role on chain, as the mirror last saw it. A role revoked on chain
(the operator deactivated the organisation) stops its keys within one mirror poll. A role
the mirror has not seen yet (an organisation onboarded a moment ago) does not block.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session

from konbit.access.keys import KEY_COLUMNS, Actor, digest, live_actor, note_use
from konbit.access.models import ApiKey
from konbit.db.raw_query import RawQuery
from konbit.mirror.models import RoleGrant
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services.errors import Forbidden

_keys = ApiKey.__table__  # type: ignore[attr-defined]
_grants = RoleGrant.__table__  # type: ignore[attr-defined]
# Every authenticated request: the key and its organisation's role grant in one query,
# built once. The grant's id is the role's on-chain id, from the key's role name.
_KEY_AND_GRANT = (
    sa.select(*KEY_COLUMNS, _grants.c.active)
    .select_from(
        _keys.outerjoin(
            _grants,
            sa.and_(
                _grants.c.account == _keys.c.organisation,
                _grants.c.role
                == sa.case({r.value: r.role_id for r in Role}, value=_keys.c.role, else_=None),
            ),
        )
    )
    .where(_keys.c.secret_hash == sa.bindparam("secret_hash"))
)


class _KeyRow(NamedTuple):
    """A row of :data:`_KEY_AND_GRANT` (:data:`KEY_COLUMNS`, then the grant's ``active``)."""

    id: int | None
    organisation: str
    role: str
    revoked_at: Any
    active: Any  # None: the mirror has not seen the grant


#: Every authenticated request runs it: compiled once, run as plain DBAPI.
_KEY_QUERY = RawQuery(_KEY_AND_GRANT)


def holds_role(runtime: Runtime, actor: Actor) -> bool:
    """False only when the mirror saw the organisation's role revoked."""
    with Session(runtime.engine) as session:
        grant = session.get(RoleGrant, (actor.role.role_id, actor.organisation))
    return grant is None or grant.active


def actor_of_key(runtime: Runtime, secret: str) -> Actor | None:
    """The actor of a live key (None when unknown or revoked); Forbidden when the chain
    no longer gives its organisation the role. One indexed read, no write."""
    found = _KEY_QUERY.first(runtime.engine, {"secret_hash": digest(secret)})
    row = None if found is None else _KeyRow(*found)
    actor = live_actor(row)
    if actor is None:
        return None
    if row is not None and row.active is not None and not row.active:
        raise Forbidden(
            f"organisation {actor.organisation} no longer holds the {actor.role.value} role on"
            " chain (deactivated by the operator)"
        )
    return actor


def actor_for_key(runtime: Runtime, secret: str) -> Actor | None:
    """:func:`actor_of_key`, and the key's use noted (``last_used_at``)."""
    actor = actor_of_key(runtime, secret)
    if actor is not None:
        note_use(runtime.engine, actor.key_id)
    return actor
