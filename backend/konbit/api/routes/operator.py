"""The common-service operator: organisations, API keys, disputes, system status."""

from __future__ import annotations

import json
from typing import Annotated, Any

from eth_utils import keccak
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from konbit.api.auth import Actor, issue_key, require
from konbit.api.models import ApiKey, Role
from konbit.api.problems import Problem
from konbit.api.reads import After, Limit, Page, read_page
from konbit.api.routes._write import WRITE_RESPONSES, write
from konbit.api.schemas import Address, Id, PositiveAmount, RowId, Wait
from konbit.api.writes import Call, applied_block, previous_args, runtime_of
from konbit.mirror.models import OrderStatus, SaleOrder
from konbit.outbox.models import OutboxTx
from konbit.profiles.service import (
    OrganisationIn,
    existing_role,
    organisation_rows,
    save_organisation,
)
from konbit.settings import LOCAL_CHAIN_IDS

router = APIRouter(prefix="/operator", tags=["operator"])
Operator = Annotated[Actor, Depends(require(Role.OPERATOR))]


@router.post("/organisations", status_code=202, responses=WRITE_RESPONSES)
async def create_organisation(
    body: OrganisationIn, request: Request, actor: Operator, wait: Wait = False
) -> JSONResponse:
    """Onboard an organisation with one role. Without an address it gets a custodial account."""
    if body.role == Role.OPERATOR:
        raise Problem(422, "role: organisations take one of the market roles", field="role")
    runtime = runtime_of(request)
    previous = await run_in_threadpool(previous_args, request, actor)
    address: str
    if previous:
        address = str(previous[0])  # a retry: the account made the first time
    elif body.address is not None:
        address = body.address
        known = await run_in_threadpool(existing_role, runtime, address)
        if known is not None and known != body.role.value:
            raise Problem(409, f"{address} is already onboarded as {known}", field="address")
    else:
        address = await run_in_threadpool(
            runtime.vault.create_account, body.role.value, body.name[:64]
        )
    meta = (
        "0x"
        + keccak(
            text=json.dumps({"name": body.name, "role": body.role.value}, sort_keys=True)
        ).hex()
    )
    await run_in_threadpool(
        save_organisation, runtime, body, address, custodial=body.address is None
    )
    registry = runtime.contracts().registry
    role = getattr(registry.functions, body.role.registry_constant)().call()
    call = Call("ClusterRegistry", "registerOrganisation", [address, role, meta])
    organisation = {
        "address": address,
        "name": body.name,
        "role": body.role.value,
        "custodial": body.address is None,
    }
    return await write(request, actor, [call], wait=wait, extra={"organisation": organisation})


@router.get("/organisations")
def list_organisations(request: Request, actor: Operator) -> list[dict[str, Any]]:
    """Every onboarded organisation with its role and whether Konbit holds its key."""
    return organisation_rows(runtime_of(request))


class KeyIn(BaseModel):
    label: str | None = Field(default=None, max_length=100)


class KeyOut(BaseModel):
    id: int
    prefix: str
    organisation: str
    role: str
    label: str | None
    key: str | None = Field(default=None, description="the secret; shown only when issued")


@router.post(
    "/organisations/{address}/keys",
    status_code=201,
    response_model=KeyOut,
    responses={401: {}, 403: {}, 404: {}, 422: {}},
)
def issue_api_key(address: Address, body: KeyIn, request: Request, actor: Operator) -> KeyOut:
    """Issue an API key for an organisation (its secret is in this answer only)."""
    runtime = runtime_of(request)
    found = {o["address"].lower(): o for o in organisation_rows(runtime)}
    org = found.get(address.lower())
    if org is None:
        raise Problem(404, f"no organisation {address}")
    row, secret = issue_key(runtime.engine, org["address"], Role(org["role"]), body.label)
    assert row.id is not None
    return KeyOut(
        id=row.id,
        prefix=row.prefix,
        organisation=row.organisation,
        role=row.role,
        label=row.label,
        key=secret,
    )


@router.get("/keys", response_model=list[KeyOut])
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


@router.delete("/keys/{key_id}", status_code=204, responses={401: {}, 403: {}, 404: {}})
def revoke_key(key_id: RowId, request: Request, actor: Operator) -> Response:
    """Revoke an API key at once."""
    from konbit.db.models import utcnow

    with Session(runtime_of(request).engine) as session:
        row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            raise Problem(404, f"no active key {key_id}")
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
    return Response(status_code=204)


class FaucetIn(BaseModel):
    address: Address
    amount: PositiveAmount


@router.post("/faucet", status_code=202, responses=WRITE_RESPONSES)
async def faucet(
    body: FaucetIn, request: Request, actor: Operator, wait: Wait = False
) -> JSONResponse:
    """Local chains only: mint test stablecoins to an organisation (demos, tests)."""
    runtime = runtime_of(request)
    if runtime.chain_id not in LOCAL_CHAIN_IDS:
        raise Problem(404, "the faucet exists on local chains only")
    call = Call("TestStablecoin", "faucet", [body.address, body.amount])
    return await write(request, actor, [call], wait=wait)


class SettleIn(BaseModel):
    max_lots: int = Field(default=500, ge=1, le=5_000, description="lots paid in this call")


@router.post("/orders/{order_id}/settle", status_code=202, responses=WRITE_RESPONSES)
async def settle_order(
    order_id: Id, body: SettleIn, request: Request, actor: Operator, wait: Wait = False
) -> JSONResponse:
    """Advance an order's settlement by up to ``max_lots`` lots (call again until settled)."""
    return await write(
        request, actor, [Call("SaleEscrow", "settle", [order_id, body.max_lots])], wait=wait
    )


@router.get("/status")
def status(request: Request, actor: Operator) -> dict[str, Any]:
    """The outbox by status, and how far the mirror trails the chain."""
    runtime = runtime_of(request)
    with Session(runtime.engine) as session:
        counts = dict(
            session.exec(select(OutboxTx.status, func.count()).group_by(OutboxTx.status)).all()
        )
    head = int(runtime.rpc.call("eth_blockNumber"), 16)
    applied = applied_block(runtime)
    return {
        "outbox": counts,
        "chain": {"chain_id": runtime.chain_id, "head": head},
        "mirror": {
            "applied_block": applied,
            "lag_blocks": None if applied is None else head - applied,
        },
    }


@router.get("/disputes", response_model=Page)
def disputes(request: Request, actor: Operator, after: After = 0, limit: Limit = 50) -> Page:
    """Orders in dispute, waiting for an arbiter."""
    return read_page(
        request,
        SaleOrder,
        col(SaleOrder.order_id),
        col(SaleOrder.status) == OrderStatus.DISPUTED.value,
        after=after,
        limit=limit,
    )
