"""A cooperative's agents over HTTP (its API key): register, list, reset a PIN, deactivate.

The rules are the service's (:mod:`konbit.services.agents`); these routes sit with the SMS
channel because only it uses agents' phones. (They may move under ``/cooperative`` with
the API's other routes.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from konbit.runtime import Runtime
from konbit.services import agents
from konbit.services.agents import AgentInput
from konbit.sms.resolver import Cooperative

router = APIRouter(prefix="/sms/agents", tags=["sms and ussd"])
Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")]
PhonePath = Annotated[str, Path(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")]
Pin = Annotated[str, Field(min_length=4, max_length=8, description="4 to 8 digits")]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown API key"},
    403: {"description": "Not a cooperative's key"},
    422: {"description": "Invalid input (each field named)"},
}


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    name: str = Field(min_length=1, max_length=200)
    pin: Pin
    language: Literal["ht", "fr", "en"] = "ht"


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: Pin


class AgentOut(BaseModel):
    id: int
    cooperative: str
    phone: str
    name: str
    language: str
    active: bool
    locked: bool


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.post("", status_code=201, response_model=AgentOut, responses={**AUTH_RESPONSES, 409: {}})
async def register_agent(body: AgentIn, actor: Cooperative, request: Request) -> dict[str, Any]:
    """Register a phone as one of the cooperative's agents, with its PIN."""
    return await run_in_threadpool(
        agents.register_agent, _runtime(request), actor, AgentInput(**body.model_dump())
    )


@router.get("", response_model=list[AgentOut], responses=AUTH_RESPONSES)
async def list_agents(actor: Cooperative, request: Request) -> list[dict[str, Any]]:
    """The cooperative's agents (never their PINs)."""
    return await run_in_threadpool(agents.list_agents, _runtime(request), actor)


@router.post("/{phone}/pin", response_model=AgentOut, responses={**AUTH_RESPONSES, 404: {}})
async def reset_pin(
    phone: PhonePath, body: PinIn, actor: Cooperative, request: Request
) -> dict[str, Any]:
    """A new PIN for an agent: unlocks a locked agent and reactivates it."""
    return await run_in_threadpool(agents.reset_pin, _runtime(request), actor, phone, body.pin)


@router.delete("/{phone}", response_model=AgentOut, responses={**AUTH_RESPONSES, 404: {}})
async def deactivate_agent(
    phone: PhonePath, actor: Cooperative, request: Request
) -> dict[str, Any]:
    """The phone no longer acts for the cooperative (a PIN reset reactivates it)."""
    return await run_in_threadpool(agents.deactivate_agent, _runtime(request), actor, phone)
