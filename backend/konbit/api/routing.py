"""Routers that step aside at once for paths outside their prefix.

FastAPI tries every route of every included router in turn until one matches, at a few
microseconds each: with some two hundred routes that was a tenth of a cheap request's time.
A router whose paths all start with its prefix can say "not mine" from the prefix alone.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import Match
from starlette.types import Scope


def route_path(scope: Scope) -> str:
    """The path routes match against: without the app's mount point (``root_path``)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class PrefixRouter(APIRouter):
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
