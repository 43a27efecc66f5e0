"""The API's routers: one thread trip per request, and no look at other prefixes' paths.

* FastAPI runs a plain ``def`` endpoint in a thread, and then, for a plain ``def``
  endpoint only, checks and serialises its answer in a *second* trip to a thread. Each
  trip queues for a thread and for the interpreter lock behind every other request, so a
  busy server's reads waited twice. :class:`ApiRouter` gives FastAPI
  each such endpoint as a coroutine that runs it in a thread, so the answer is checked on
  the event loop, where it costs microseconds.
* FastAPI tries every route of every included router in turn until one matches, at a few
  microseconds each: with some two hundred routes that was a tenth of a cheap request's
  time. A :class:`PrefixRouter`, whose paths all start with its prefix, says "not mine"
  from the prefix alone.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The path routes match against: without the app's mount point (``root_path``)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a plain function) as a coroutine running it in the request threads.

    FastAPI reads the parameters and their annotations through ``__wrapped__``."""

    @functools.wraps(endpoint)
    async def run(**kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, **kwargs)

    return run


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
