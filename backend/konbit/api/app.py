"""The FastAPI application and its shared state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from web3 import Web3

from konbit import __version__
from konbit.api.routes import health
from konbit.chain.connection import connect
from konbit.db.engine import make_engine
from konbit.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database must already be migrated (``konbit run`` does it)."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.effective_database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.web3 = connect(settings, timeout=5.0)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Konbit",
        version=__version__,
        summary="Traceability ledger for smallholder clusters",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    return app


def web3_of(app: FastAPI) -> Web3:
    web3: Web3 = app.state.web3
    return web3
