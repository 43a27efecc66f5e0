"""What every domain service shares: the role check and the one-call write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services.errors import Forbidden
from konbit.services.writes import Call, Outcome, Write, perform


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"this needs the role {allowed}; the actor's role is {actor.role.value}")


def record(
    runtime: Runtime,
    actor: Actor,
    operation: str,
    payload: Mapping[str, Any],
    calls: Sequence[Call],
    idempotency_key: str | None,
) -> Outcome:
    """Perform a write that is only contract calls from the actor's own account."""
    return perform(
        runtime, actor, Write(operation, payload, calls), idempotency_key=idempotency_key
    )
