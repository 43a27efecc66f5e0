"""Who is acting, and whether the chain still lets them: keys follow on-chain roles.

An API key (or an agent's phone) names an organisation and a role; it works only while the
organisation holds that role on chain, as the mirror last saw it. A role revoked on chain
(the operator deactivated the organisation) stops its keys within one mirror poll. A role
the mirror has not seen yet (an organisation onboarded a moment ago) does not block.
"""

from __future__ import annotations

from sqlmodel import Session

from konbit.access.keys import Actor, authenticate
from konbit.mirror.models import RoleGrant
from konbit.runtime import Runtime
from konbit.services.errors import Forbidden


def holds_role(runtime: Runtime, actor: Actor) -> bool:
    """False only when the mirror saw the organisation's role revoked."""
    with Session(runtime.engine) as session:
        grant = session.get(RoleGrant, (actor.role.role_id, actor.organisation))
    return grant is None or grant.active


def actor_for_key(runtime: Runtime, secret: str) -> Actor | None:
    """The actor of a live key (None when unknown or revoked); Forbidden when the chain
    no longer gives its organisation the role."""
    actor = authenticate(runtime.engine, secret)
    if actor is None:
        return None
    if not holds_role(runtime, actor):
        raise Forbidden(
            f"organisation {actor.organisation} no longer holds the {actor.role.value} role on"
            " chain (deactivated by the operator)"
        )
    return actor
