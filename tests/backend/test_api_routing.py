"""The API's routers (konbit.api.routing): a plain ``def`` endpoint runs in a thread and its
answer is checked on the event loop (one thread trip, not FastAPI's two), with the same
parameters, validation and OpenAPI document as with FastAPI's own router; one marked
``on_loop`` runs on the event loop where the app allows it."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Annotated, Any

import fastapi.routing
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator
from starlette.routing import Match

from konbit.api.routing import ApiRouter, PrefixRouter, on_loop, warm
from konbit.server import create_app
from konbit.settings import Settings

seen: dict[str, str] = {}


class Answer(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def note_thread(cls, value: int) -> int:
        seen["checked"] = threading.current_thread().name
        return value


def make_app(router: APIRouter) -> FastAPI:
    @router.get("/double", response_model=Answer)
    def double(n: Annotated[int, Query(ge=0, le=100)]) -> dict[str, int]:
        seen["endpoint"] = threading.current_thread().name
        return {"n": 2 * n}

    app = FastAPI()
    app.include_router(router)

    @app.get("/loop")
    async def loop() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    return app


def test_the_answer_is_checked_on_the_event_loop_and_the_endpoint_runs_in_a_thread() -> None:
    seen.clear()
    with TestClient(make_app(ApiRouter())) as client:
        loop_thread = client.get("/loop").json()["thread"]
        reply = client.get("/double", params={"n": 21})
    assert reply.status_code == 200
    assert reply.json() == {"n": 42}
    assert seen["checked"] == loop_thread
    assert seen["endpoint"] != loop_thread


def test_fastapi_s_own_router_checks_it_in_a_second_thread_trip() -> None:
    """What ApiRouter is for: without it the check runs away from the loop."""
    seen.clear()
    with TestClient(make_app(APIRouter())) as client:
        loop_thread = client.get("/loop").json()["thread"]
        assert client.get("/double", params={"n": 1}).status_code == 200
    assert seen["checked"] != loop_thread


def test_parameters_validation_and_openapi_are_fastapi_s() -> None:
    plain, ours = make_app(APIRouter()), make_app(PrefixRouter(prefix="/x"))
    with TestClient(ours) as client:
        bad = client.get("/x/double", params={"n": 101})
        missing = client.get("/x/double")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "n"]
    assert missing.status_code == 422
    plain_op = plain.openapi()["paths"]["/double"]["get"]
    our_op = ours.openapi()["paths"]["/x/double"]["get"]
    for op in (plain_op, our_op):
        op.pop("operationId")
    assert our_op == plain_op


def loop_app(*, reads_on_loop: bool | None) -> FastAPI:
    router = ApiRouter()

    @router.get("/marked")
    @on_loop
    def marked() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    @router.get("/plain")
    def plain() -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    app = make_app(router)
    if reads_on_loop is not None:
        app.state.reads_on_loop = reads_on_loop
    return app


@pytest.mark.parametrize("allowed", [True, False, None])
def test_a_read_marked_on_loop_runs_on_the_loop_only_where_the_app_allows_it(
    allowed: bool | None,
) -> None:
    with TestClient(loop_app(reads_on_loop=allowed)) as client:
        loop_thread = client.get("/loop").json()["thread"]
        marked = client.get("/marked").json()["thread"]
        plain = client.get("/plain").json()["thread"]
    assert (marked == loop_thread) is bool(allowed)
    assert plain != loop_thread  # unmarked: always in a thread


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, inside the routers it includes too."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def test_only_reads_of_the_api_are_marked_on_loop(tmp_path: Path) -> None:
    """On the loop, a write or a call to the node would hold up every request of the
    worker: only GET endpoints are marked, and the ones that ask the node are not."""
    app = create_app(Settings.load(env_file=None, environ={}, data_dir=tmp_path), background=False)
    marked = {
        (route.path, method)
        for route in api_routes(app.routes)
        for method in route.methods
        if getattr(inspect.unwrap(route.endpoint), "_konbit_on_loop", False)
    }
    assert {method for _, method in marked} == {"GET"}
    paths = {path for path, _ in marked}
    assert {"/cooperative/lots", "/cooperative/farmers", "/trace/lots/{lot_id}"} <= paths
    assert not paths & {"/healthz", "/meta", "/operator/status"}  # they ask the node


def dependants_built_by_first_requests(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The routes whose parameters FastAPI works out while matching a few first requests."""
    built: list[str] = []
    real = fastapi.routing.get_dependant

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(str(kwargs.get("path")))
        return real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "get_dependant", counting)
    for path in ("/cooperative/lots", "/trace/lots/1", "/financier/orders", "/no-such-path"):
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "app": app}
        scope |= {"headers": [], "query_string": b""}
        for route in app.router.routes:
            if route.matches(scope)[0] == Match.FULL:
                break
    monkeypatch.undo()
    return built


def test_warm_builds_the_routes_before_the_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.load(env_file=None, environ={}, data_dir=tmp_path)
    cold = create_app(settings, background=False)
    if not dependants_built_by_first_requests(cold, monkeypatch):
        pytest.skip("this FastAPI builds an included router's routes when it is included")
    warmed = create_app(settings, background=False)
    warm(warmed)
    assert dependants_built_by_first_requests(warmed, monkeypatch) == []
