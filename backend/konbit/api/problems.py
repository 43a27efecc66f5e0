"""Errors as RFC 9457 ``application/problem+json``; never a stack trace.

422 names each bad field, 409 carries a contract's custom error by name, and 401, 403
and 404 stay distinct.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from requests.exceptions import RequestException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from konbit.chain.rpc import RpcError
from konbit.outbox.service import IdempotencyConflict, OutboxError
from konbit.services import errors

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.extra = extra


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem document; ``headers`` go with it (``Allow`` on a 405, for instance)."""
    if status == 422 and "field" in extra and "errors" not in extra:
        extra["errors"] = [{"field": extra["field"], "message": detail}]  # one shape for all 422s
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    sent = dict(headers or {})
    if status == 401:
        sent.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=sent or None)


def from_service_error(exc: errors.ServiceError) -> JSONResponse:
    """A service's refusal as problem+json: the status its class stands for, the field named."""
    extra: dict[str, Any] = {"code": exc.code}
    if exc.field is not None:
        extra["field"] = exc.field
    if isinstance(exc, errors.ContractRefused):
        return problem(409, exc.message, title="Contract revert", error=exc.error, args=exc.args_)
    title = "Idempotency key reused" if isinstance(exc, errors.IdempotencyConflict) else None
    headers = None
    if "retry_after" in exc.details:
        extra["retry_after"] = exc.details["retry_after"]
        headers = {"Retry-After": str(exc.details["retry_after"])}
    return problem(exc.status, exc.message, title=title, headers=headers, **extra)


def _field(loc: tuple[Any, ...], kind: str | None = None) -> str:
    if kind == "json_invalid":  # a body that is not JSON reports a byte offset as location
        return "body"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "body")


def _allowed(request: Request) -> str:
    """Every method some route offers on the path (Starlette names only the first route's)."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and compile_path(route.path)[0].match(path):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                # A body that is not JSON at all reports a byte offset as its location.
                "field": "body"
                if e.get("type") == "json_invalid"
                else _field(tuple(e.get("loc", ()))),
                "message": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        named = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem(422, f"invalid input: {named}", errors=errors)

    @app.exception_handler(Problem)
    async def problem_raised(_: Request, exc: Problem) -> JSONResponse:
        return problem(exc.status, exc.detail, title=exc.title, **exc.extra)

    @app.exception_handler(errors.ServiceError)
    async def refused(_: Request, exc: errors.ServiceError) -> JSONResponse:
        return from_service_error(exc)

    @app.exception_handler(RpcError)
    async def node_refused(request: Request, exc: RpcError) -> JSONResponse:
        log.warning("chain node error on %s %s: %s", request.method, request.url.path, exc)
        return problem(503, "the chain node refused the request; try again", code="chain_error")

    @app.exception_handler(RequestException)
    async def node_unreachable(request: Request, exc: RequestException) -> JSONResponse:
        log.warning("chain node unreachable on %s %s", request.method, request.url.path)
        return problem(503, "the chain node cannot be reached; try again", code="chain_down")

    @app.exception_handler(IdempotencyConflict)
    async def idempotency(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return problem(409, str(exc), title="Idempotency key reused")

    @app.exception_handler(OutboxError)
    async def outbox(_: Request, exc: OutboxError) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's 400 for a JSON body that is not UTF-8: like unparseable JSON, a 422
            # that names the body.
            return problem(
                422,
                "invalid input: body",
                errors=[{"field": "body", "message": "the body is not JSON in UTF-8"}],
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        return problem(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "an internal error occurred; it has been logged")


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "422: one entry per bad field",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "code": {"type": "string", "description": "a stable name of the refusal"},
        "field": {"type": "string", "description": "the input at fault"},
        "error": {"type": "string", "description": "409: the contract's custom error"},
        "args": {"type": "object", "description": "409: the custom error's arguments"},
    },
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe every 4xx/5xx answer as what it is: ``application/problem+json``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    problem_content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            # Every request with a body may be too large; every keyed one may be rate-limited.
            if "requestBody" in operation:
                responses.setdefault("413", {"description": "The body is over the size limit"})
            if operation.get("security"):
                responses.setdefault(
                    "429",
                    {
                        "description": "Too many requests with this key (Retry-After says when"
                        " to retry), or the organisation's daily gas budget is spent"
                    },
                )
            for code, answer in responses.items():
                if code[:1] in ("4", "5"):
                    answer["content"] = problem_content
                    answer.setdefault("description", HTTPStatus(int(code)).phrase)
    return schema
