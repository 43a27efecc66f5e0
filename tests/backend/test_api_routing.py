"""The API's routers (konbit.api.routing): a plain ``def`` endpoint runs in a thread and its
answer is checked on the event loop (one thread trip, not FastAPI's two), with the same
parameters, validation and OpenAPI document as with FastAPI's own router."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator

from konbit.api.routing import ApiRouter, PrefixRouter

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
