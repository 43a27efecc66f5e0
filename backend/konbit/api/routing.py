"""The API's routers: at most one thread trip per request, and no look at other prefixes'
paths.

* FastAPI runs a plain ``def`` endpoint in a thread, and then, for a plain ``def``
  endpoint only, checks and serialises its answer in a *second* trip to a thread. Each
  trip queues for a thread and for the interpreter lock behind every other request, so a
  busy server's reads waited twice. :class:`ApiRouter` gives FastAPI
  each such endpoint as a coroutine that runs it in a thread, so the answer is checked on
  the event loop, where it costs microseconds. Those threads are the API's own
  (``read_threads``, :mod:`konbit.settings`), apart from the pool the SMS webhooks and
  the pages use.
* A read marked :func:`on_loop` (a page or a record of the database, by index: no chain,
  no waiting) takes no trip at all on SQLite: it runs on the event loop. Under load the
  trip to a thread and back cost more than such a read: queueing for the interpreter lock
  behind the other threads, twice (measured, 20 clients on one endpoint: a page of one lot
  2.2 -> 1.4 ms of the server's CPU a request, the farmers 2.5 -> 1.5 ms). A networked
  database (PostgreSQL) answers after a round trip, which the loop must not wait for:
  there such reads keep their thread (``reads_on_loop``, :mod:`konbit.settings`).
* FastAPI tries every route of every included router in turn until one matches, at a few
  microseconds each: with some two hundred routes that was a tenth of a cheap request's
  time. A :class:`PrefixRouter`, whose paths all start with its prefix, says "not mine"
  from the prefix alone.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The path routes match against: without the app's mount point (``root_path``)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


#: The parameter :func:`in_thread` adds to an endpoint's signature for its own use.
_REQUEST = "_konbit_thread_request"
#: The attribute :func:`on_loop` sets on an endpoint.
_ON_LOOP = "_konbit_on_loop"

E = TypeVar("E", bound=Callable[..., Any])


def on_loop(endpoint: E) -> E:
    """Mark a plain ``def`` endpoint as a short read of the database (by index, a page at
    most; no chain call, no wait, no write): where the app allows it
    (``app.state.reads_on_loop``), it runs on the event loop rather than in a thread.

    Put it under the route's decorator, which reads the mark."""
    setattr(endpoint, _ON_LOOP, True)
    return endpoint


def in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a plain function) as a coroutine running it in the API's threads
    (``app.state.read_threads``; anyio's default pool in an app without them), or on the
    loop when it is marked :func:`on_loop` and ``app.state.reads_on_loop`` is true.

    FastAPI reads the parameters and their annotations from ``__signature__``: the
    endpoint's, with the request added when the endpoint does not take it (FastAPI gives
    one parameter the request), for the coroutine to find the app's threads."""
    signature = inspect.signature(endpoint)
    own = next(
        (p.name for p in signature.parameters.values() if p.annotation in (Request, "Request")),
        None,
    )
    name = own or _REQUEST
    may_stay = getattr(endpoint, _ON_LOOP, False)

    @functools.wraps(endpoint)
    async def run(**kwargs: Any) -> Any:
        request = kwargs[name] if own else kwargs.pop(name)
        state = request.app.state
        if may_stay and getattr(state, "reads_on_loop", False):
            # Behind what is ready on the loop first: a read runs whole in one step, a
            # write takes several (its batch's answer, its reply), each of which waited
            # behind a round of reads (in the mix, writes 94/s with reads run at once,
            # 170/s after this).
            await asyncio.sleep(0)
            return endpoint(**kwargs)
        limiter = getattr(state, "read_threads", None)
        return await to_thread.run_sync(functools.partial(endpoint, **kwargs), limiter=limiter)

    if own is None:
        added = inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), added]
        )
    return run


def warm(app: FastAPI) -> None:
    """Have each router that ``app`` includes work out its routes now, not on the first
    request that reaches it.

    FastAPI (0.16x) builds an included router's routes (each one's parameters, body and
    answer models) the first time a request is matched against that router: 8-80 ms for
    one of this API's routers, in each web worker, paid by whichever request comes first
    after a start. A path that no route has, under each router's prefix, makes it build
    them; a worker does it before it serves (and before it freezes its start-up heap).
    """
    for route in app.router.routes:
        prefix = getattr(getattr(route, "original_router", None), "prefix", "")
        route.matches(
            {
                "type": "http",
                "method": "GET",
                "path": f"{prefix}/",
                "root_path": "",
                "headers": [],
                "query_string": b"",
                "app": app,
            }
        )


class ApiRouter(APIRouter):
    """An :class:`APIRouter` whose plain ``def`` endpoints take one thread trip, not two."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = in_thread(endpoint)
        super().add_api_route(path, endpoint, **kwargs)


class PrefixRouter(ApiRouter):
    """An :class:`APIRouter` (with a ``prefix``) that skips paths outside that prefix."""

    def __init__(self, *, prefix: str, **kwargs: object) -> None:
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"a prefix such as /cooperative, not {prefix!r}")
        super().__init__(prefix=prefix, **kwargs)  # type: ignore[arg-type]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = route_path(scope)
        if not path.startswith(self.prefix):
            return Match.NONE, {}
        return super().matches(scope)
