"""The web server: one ASGI app with the shared runtime, background workers and every HTTP
channel (the API's routers; SMS/USSD webhooks and pages as they land)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from konbit import __version__, web
from konbit.api import problems
from konbit.api.body_limit import BodyLimit
from konbit.api.rate_limit import KeyRateLimit
from konbit.api.routes import (
    arbiter,
    carrier,
    cooperative,
    exporter,
    financier,
    health,
    inspector,
    meta,
    operator,
    public,
    records,
    transactions,
)
from konbit.api.schemas import exact_bounds
from konbit.runtime import Runtime
from konbit.settings import Settings
from konbit.sms import background as sms

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, background: bool = True) -> FastAPI:
    """Build the app; the database must already be migrated (``konbit run`` does it).

    With ``background``, the outbox worker and the mirror run in threads for the app's lifetime.
    """
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.settings = settings
        app.state.runtime = runtime
        app.state.engine = runtime.engine
        app.state.web3 = runtime.w3
        app.state.rate_limit = KeyRateLimit(settings.rate_limit)
        stop = threading.Event()
        threads: list[threading.Thread] = []
        app.state.mirror_running = background
        if background:
            # The mirror asks the outbox to reconcile with the chain when it sees a reorg
            # or a reset (blocks lost: their transactions are sent again).
            reconcile = threading.Event()
            threads.append(_start_worker(runtime, stop, reconcile))
            threads.append(_start_mirror(runtime, stop, reconcile))
            threads.extend(sms.start(runtime, stop))
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            runtime.close()

    app = FastAPI(
        title="Konbit",
        version=__version__,
        summary="Traceability ledger for smallholder clusters",
        lifespan=lifespan,
        # /docs and /redoc are konbit.web's, on locally served assets (no CDN).
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document(
                exact_bounds(
                    get_openapi(
                        title=app.title, version=app.version, summary=app.summary, routes=app.routes
                    )
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(meta.router)
    for router in (
        operator.router,
        cooperative.router,
        exporter.router,
        carrier.router,
        financier.router,
        inspector.router,
        arbiter.router,
        records.router,
        transactions.router,
        public.router,
        *sms.routers(settings),
    ):
        app.include_router(router)
    web.install(app)
    return app


def _start_worker(
    runtime: Runtime, stop: threading.Event, reconcile: threading.Event
) -> threading.Thread:
    def run() -> None:
        delay = 0.5
        while not stop.is_set():
            try:
                worker = runtime.worker(reconcile_requests=reconcile)
            except Exception as exc:  # chain down, no vault table: the API still answers
                log.warning("outbox worker not started yet (%s); retrying", exc)
                stop.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                worker.run_forever(stop)
            finally:
                worker.close()

    thread = threading.Thread(target=run, name="outbox-worker", daemon=True)
    thread.start()
    return thread


def _start_mirror(
    runtime: Runtime, stop: threading.Event, reconcile: threading.Event
) -> threading.Thread:
    """Follow the chain into SQL; waits for a deployment, stops for good on a chain reset."""
    from konbit.mirror.indexer import follow_in_thread

    return follow_in_thread(runtime, stop, on_reorg=lambda _fork: reconcile.set())
