"""Inspectors: quality and phytosanitary results on lots and consignments."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.responses import JSONResponse
from pydantic import StrictBool

from konbit.api.auth import Actor, require
from konbit.api.routing import PrefixRouter
from konbit.api.schemas import Body, Grade, Hash32, Id
from konbit.api.writes import WRITE_RESPONSES, Accepted, Writer
from konbit.roles import Role
from konbit.services import inspections
from konbit.services.inspections import InspectionInput

router = PrefixRouter(prefix="/inspector", tags=["inspector"])
Inspector = Annotated[Actor, Depends(require(Role.INSPECTOR))]


class InspectionIn(Body):
    passed: StrictBool
    grade: Grade
    certificate_hash: Hash32


@router.post(
    "/lots/{lot_id}/inspections",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def inspect_lot(
    lot_id: Id, body: InspectionIn, actor: Inspector, write: Writer
) -> JSONResponse:
    """Record an inspection of one lot; a failed lot is excluded from payouts."""
    return await write.run(
        inspections.inspect_lot, actor, lot_id, InspectionInput(**body.model_dump())
    )


@router.post(
    "/consignments/{consignment_id}/inspections",
    status_code=202,
    response_model=Accepted,
    responses=WRITE_RESPONSES,
)
async def inspect_consignment(
    consignment_id: Id, body: InspectionIn, actor: Inspector, write: Writer
) -> JSONResponse:
    """Record an inspection of a whole consignment."""
    return await write.run(
        inspections.inspect_consignment,
        actor,
        consignment_id,
        InspectionInput(**body.model_dump()),
    )
