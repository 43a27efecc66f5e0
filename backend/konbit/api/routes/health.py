"""Liveness and readiness: is the chain reachable, which database is in use."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from konbit.api.deps import SessionDep, SettingsDep, Web3Dep
from konbit.api.routing import ApiRouter
from konbit.db.engine import database_kind
from konbit.settings import Settings

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
        return _unavailable("chain", f"no answer from the chain node at {_safe_url(settings)}")
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


def _safe_url(settings: Settings) -> str:
    """The RPC URL without credentials or path (some providers put an API key there)."""
    parts = urlsplit(settings.effective_rpc_url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
