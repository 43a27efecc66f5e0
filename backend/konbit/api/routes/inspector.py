"""Inspectors: quality and phytosanitary results on lots and consignments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from konbit.api.auth import Actor, require
from konbit.api.models import Role
from konbit.api.routes._write import (
    WRITE_RESPONSES,
    consignment_cooperative,
    lot_cooperative,
    write,
)
from konbit.api.schemas import Grade, Hash32, Id, Wait
from konbit.api.writes import Call

router = APIRouter(prefix="/inspector", tags=["inspector"])
Inspector = Annotated[Actor, Depends(require(Role.INSPECTOR))]


class InspectionIn(BaseModel):
    passed: bool
    grade: Grade
    certificate_hash: Hash32


@router.post("/lots/{lot_id}/inspections", status_code=202, responses=WRITE_RESPONSES)
async def inspect_lot(
    lot_id: Id, body: InspectionIn, request: Request, actor: Inspector, wait: Wait = False
) -> JSONResponse:
    """Record an inspection of one lot; a failed lot is excluded from payouts."""
    lot_cooperative(request, lot_id)  # 404 when unknown
    call = Call(
        "Traceability", "inspectLot", [lot_id, body.passed, body.grade, body.certificate_hash]
    )
    return await write(request, actor, [call], wait=wait)


@router.post(
    "/consignments/{consignment_id}/inspections", status_code=202, responses=WRITE_RESPONSES
)
async def inspect_consignment(
    consignment_id: Id, body: InspectionIn, request: Request, actor: Inspector, wait: Wait = False
) -> JSONResponse:
    """Record an inspection of a whole consignment."""
    consignment_cooperative(request, consignment_id)
    call = Call(
        "Traceability",
        "inspectConsignment",
        [consignment_id, body.passed, body.grade, body.certificate_hash],
    )
    return await write(request, actor, [call], wait=wait)
