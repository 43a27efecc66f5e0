"""Bearer API keys on HTTP, and the dependency that lets only some roles through.

Ownership (an organisation acts only on its own orders, lots, jobs) is the services'
business: :mod:`konbit.services.parties`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from konbit.access.keys import Actor, note_use, use_due
from konbit.api.problems import Problem
from konbit.roles import Role
from konbit.services.actors import actor_of_key

__all__ = ["Actor", "ActorDep", "current_actor", "require"]

#: The OpenAPI security scheme (the Authorize button in /docs); errors are ours, not its.
bearer = HTTPBearer(auto_error=False, description="an API key: `kb_...`")


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """401 without a valid, unrevoked key; 403 when the chain took the role away; 429 past
    the key's rate limit."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "send an API key as `Authorization: Bearer kb_...`")
    runtime = request.app.state.runtime
    # On the event loop, not in the thread pool: one indexed read costs less than the hop
    # to a thread and back (every authenticated request asks it).
    actor = actor_of_key(runtime, credentials.credentials.strip())
    if actor is None:
        raise Problem(401, "the API key is unknown or revoked")
    if use_due(actor.key_id):  # a write, once a minute per key: in a thread
        await run_in_threadpool(note_use, runtime.engine, actor.key_id)
    limit = getattr(request.app.state, "rate_limit", None)
    if limit is not None:
        limit.hit(actor.key_id)
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


def require(*roles: Role) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency that lets only ``roles`` through (403 for any other role)."""
    allowed = ", ".join(r.value for r in roles)

    async def check(actor: ActorDep) -> Actor:  # async: no trip to the thread pool
        if actor.role not in roles:
            raise Problem(
                403, f"this needs the role {allowed}; the key's role is {actor.role.value}"
            )
        return actor

    return check
