"""The common-service operator: organisations, API keys, disputes, system status."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, Field, StrictInt, WithJsonSchema
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from konbit.access.models import ApiKey
from konbit.api.auth import Actor, require
from konbit.api.reads import LIST_RESPONSES, ROLE_RESPONSES, After, Limit, Page, read_page
from konbit.api.resources import (
    ChainHead,
    MirrorProgress,
    OperatorStatus,
    OrderOut,
    OrganisationOut,
    OutboxCounts,
)
from konbit.api.routing import PrefixRouter, on_loop
from konbit.api.schemas import Address, Body, Id, PositiveAmount, RowId, Whole, text
from konbit.api.writes import (
    ORGANISATION_RESPONSES,
    WRITE_RESPONSES,
    Accepted,
    IdempotencyKey,
    OrganisationAccepted,
    Writer,
    runtime_of,
)
from konbit.mirror.models import OrderStatus, SaleOrder
from konbit.outbox.models import OutboxTx
from konbit.profiles.service import organisation_rows
from konbit.roles import MARKET_ROLES, Role
from konbit.services import orders, organisations, stablecoin
from konbit.services.organisations import OrganisationInput
from konbit.services.writes import applied_block

router = PrefixRouter(prefix="/operator", tags=["operator"])
Operator = Annotated[Actor, Depends(require(Role.OPERATOR))]


def _market_role(role: Role) -> Role:
    if role is Role.OPERATOR:
        raise ValueError("organisations take one of the market roles")
    return role


#: Any role but the operator's own, and documented so.
MarketRole = Annotated[
    Role,
    AfterValidator(_market_role),
    WithJsonSchema({"type": "string", "enum": [r.value for r in MARKET_ROLES]}),
]


class OrganisationIn(Body):
    name: str = text(200)
    role: MarketRole
    address: Address | None = Field(
        default=None, description="its own wallet; omit for a custodial account"
    )
    contact: str | None = text(200, default=None, description="how to reach it (kept off chain)")


@router.post(
    "/organisations",
    status_code=202,
    response_model=OrganisationAccepted,
    responses=ORGANISATION_RESPONSES,
)
async def create_organisation(body: OrganisationIn, actor: Operator, write: Writer) -> JSONResponse:
    """Onboard an organisation with one role. Without an address it gets a custodial account."""
    return await write.run(
        organisations.create_organisation, actor, OrganisationInput(**body.model_dump())
    )


@router.get("/organisations", response_model=list[OrganisationOut], responses=ROLE_RESPONSES)
@on_loop
def list_organisations(request: Request, actor: Operator) -> list[OrganisationOut]:
    """Every onboarded organisation with its role and whether Konbit holds its key."""
    return [
        OrganisationOut.model_validate(o) for o in organisation_rows(runtime_of(request).engine)
    ]


class KeyIn(Body):
    label: str | None = text(100, default=None, description="what the key is for")


class KeyOut(BaseModel):
    id: int
    prefix: str
    organisation: str
    role: str
    label: str | None
    key: str | None = Field(
        default=None, description="the secret: in the first answer only, never in a replay"
    )
    replayed: bool = Field(default=False, description="true when this answers a retry")


@router.post(
    "/organisations/{address}/keys",
    status_code=201,
    response_model=KeyOut,
    responses={
        401: {"description": "No or unknown API key"},
        403: {"description": "Not the operator"},
        404: {"description": "No such organisation"},
        409: {"description": "The Idempotency-Key was used for another request"},
        422: {"description": "Invalid input (each field named)"},
    },
)
async def issue_api_key(
    address: Address,
    body: KeyIn,
    actor: Operator,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> KeyOut:
    """Issue an API key for an organisation (its secret is in this answer only)."""
    issued = await run_in_threadpool(
        organisations.issue_key,
        runtime_of(request),
        actor,
        address,
        body.label,
        idempotency_key=idempotency_key,
    )
    return KeyOut(
        id=issued.id,
        prefix=issued.prefix,
        organisation=issued.organisation,
        role=issued.role,
        label=issued.label,
        key=issued.secret,
        replayed=issued.replayed,
    )


@router.get("/keys", response_model=list[KeyOut], responses=ROLE_RESPONSES)
@on_loop
def list_keys(request: Request, actor: Operator) -> list[KeyOut]:
    """API keys that are not revoked (never their secrets)."""
    with Session(runtime_of(request).engine) as session:
        rows = session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None))).all()
    return [
        KeyOut(
            id=r.id or 0, prefix=r.prefix, organisation=r.organisation, role=r.role, label=r.label
        )
        for r in rows
    ]


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    responses={
        401: {"description": "No or unknown API key"},
        403: {"description": "Not the operator"},
        404: {"description": "No such active key"},
        409: {"description": "The operator's last key (issue another one first)"},
    },
)
async def revoke_key(key_id: RowId, request: Request, actor: Operator) -> Response:
    """Revoke an API key at once."""
    await run_in_threadpool(organisations.revoke_key, runtime_of(request), actor, key_id)
    return Response(status_code=204)


@router.post(
    "/organisations/{address}/deactivate",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def deactivate_organisation(address: Address, actor: Operator, write: Writer) -> JSONResponse:
    """Revoke the organisation's role on chain: its keys stop within one mirror poll."""
    return await write.run(organisations.set_active, actor, address, False)


@router.post(
    "/organisations/{address}/reactivate",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def reactivate_organisation(address: Address, actor: Operator, write: Writer) -> JSONResponse:
    """Grant the organisation's role on chain again."""
    return await write.run(organisations.set_active, actor, address, True)


class GasSpendOut(BaseModel):
    """Gas the operator sponsored for one account in the last 24 hours (wei)."""

    address: str
    name: str | None
    role: str | None
    spent_wei: int
    topups: int
    budget_wei: int = Field(description="per 24 hours; 0: no cap")
    remaining_wei: int | None


@router.get("/gas", response_model=list[GasSpendOut], responses=ROLE_RESPONSES)
async def gas_spend(request: Request, actor: Operator) -> list[GasSpendOut]:
    """Gas sponsorship spent per organisation over the last 24 hours, largest first."""
    spends = await run_in_threadpool(organisations.gas_spend, runtime_of(request), actor)
    return [GasSpendOut(**asdict(s)) for s in spends]


class FaucetIn(Body):
    address: Address
    amount: PositiveAmount


@router.post("/faucet", status_code=202, response_model=Accepted, responses=WRITE_RESPONSES)
async def faucet(body: FaucetIn, actor: Operator, write: Writer) -> JSONResponse:
    """Local chains only: mint test stablecoins to an organisation (demos, tests)."""
    return await write.run(stablecoin.faucet, actor, body.address, body.amount)


class SettleIn(Body):
    max_lots: Annotated[StrictInt, Whole] = Field(
        default=500, ge=1, le=orders.MAX_SETTLE_LOTS, description="lots paid in this call"
    )


@router.post(
    "/orders/{order_id}/settle",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def settle_order(
    order_id: Id, body: SettleIn, actor: Operator, write: Writer
) -> JSONResponse:
    """Advance an order's settlement by up to ``max_lots`` lots (call again until settled)."""
    return await write.run(orders.settle, actor, order_id, body.max_lots)


@router.get("/status", response_model=OperatorStatus, responses=ROLE_RESPONSES)
def status(request: Request, actor: Operator) -> OperatorStatus:
    """The outbox by status, and how far the mirror trails the chain."""
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        counts = dict(
            session.exec(select(OutboxTx.status, func.count()).group_by(OutboxTx.status)).all()
        )
    head = int(runtime.rpc.call("eth_blockNumber"), 16)
    applied = applied_block(runtime)
    return OperatorStatus(
        outbox=OutboxCounts.model_validate(counts),
        chain=ChainHead(chain_id=runtime.chain_id, head=head),
        mirror=MirrorProgress(
            applied_block=applied, lag_blocks=None if applied is None else head - applied
        ),
    )


@router.get("/disputes", response_model=Page[OrderOut], responses=LIST_RESPONSES)
@on_loop
def disputes(
    request: Request, actor: Operator, after: After = 0, limit: Limit = 50
) -> Page[OrderOut]:
    """Orders in dispute, waiting for an arbiter."""
    return read_page(
        request,
        OrderOut,
        col(SaleOrder.order_id),
        col(SaleOrder.status) == OrderStatus.DISPUTED.value,
        after=after,
        limit=limit,
    )
