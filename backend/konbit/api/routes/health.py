"""Liveness and readiness: is the chain reachable, which database is in use."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from konbit.api.deps import SessionDep, SettingsDep, Web3Dep
from konbit.api.routing import ApiRouter
from konbit.db.engine import database_kind

router = ApiRouter(tags=["health"])


class Health(BaseModel):
    status: str
    chain_id: int
    latest_block: int
    database: str


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"description": "The chain or the database does not answer"}},
)
def healthz(settings: SettingsDep, web3: Web3Dep, session: SessionDep) -> Any:
    """200 with the chain id, latest block and database kind when all parts answer."""
    kind = database_kind(settings.effective_database_url)
    try:
        chain_id = web3.eth.chain_id
        latest = web3.eth.block_number
    except Exception:
        return _unavailable("chain", f"no answer from the chain node at {settings.shown_rpc_url}")
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception:
        return _unavailable("database", f"the {kind} database does not answer")
    return Health(status="ok", chain_id=chain_id, latest_block=latest, database=kind)


def _unavailable(part: str, detail: str) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        media_type="application/problem+json",
        content={
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": detail,
            "part": part,
        },
    )
