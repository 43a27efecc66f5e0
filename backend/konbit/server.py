"""The web server: one ASGI app with the shared runtime and every HTTP channel (the API's
routers, the SMS/USSD webhooks, the pages)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from konbit import __version__, web
from konbit import background as background_work
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

#: Threads per web worker for writes waiting on a batch: one batch takes up to
#: konbit.services.lot_batches.MAX_LOTS lots, and fewer threads would cap it.
BATCHED_THREADS = 100


def create_app(
    settings: Settings | None = None, *, background: bool = True, background_elsewhere: bool = False
) -> FastAPI:
    """Build the app; the database must already be migrated (``konbit run`` does it).

    With ``background``, the outbox worker, the mirror and the SMS sender run in threads for
    the app's lifetime; ``background_elsewhere`` says they run in another process
    (``konbit run``), so that waiting for a write to be mirrored makes sense.
    """
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        # Sync routes and the SMS handlers run in anyio's thread pool (40 by default).
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        # The API's reads and writes have threads of their own (konbit.api.routing,
        # konbit.api.writes).
        app.state.read_threads = CapacityLimiter(settings.read_threads)
        app.state.reads_on_loop = settings.runs_reads_on_loop
        app.state.write_threads = CapacityLimiter(settings.write_threads)
        # Writes joining a batch (konbit.services.lot_batches) wait in their threads for it.
        app.state.batched_threads = CapacityLimiter(BATCHED_THREADS)
        # A batch of lots (answered 202, nobody waits on it) waits while every read thread
        # is taken: under a mixed load, reads keep their share of the interpreter. (Reads
        # that run on the loop, on SQLite, take no thread: konbit.api.routing.)
        reads = app.state.read_threads
        runtime.lot_batcher.busy = lambda: reads.borrowed_tokens >= reads.total_tokens
        app.state.settings = settings
        app.state.runtime = runtime
        app.state.engine = runtime.engine
        app.state.web3 = runtime.w3
        app.state.rate_limit = KeyRateLimit(settings.rate_limit)
        stop = threading.Event()
        app.state.mirror_running = background or background_elsewhere
        threads = background_work.start(runtime, stop) if background else []
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
                        title=app.title,
                        version=app.version,
                        summary=app.summary,
                        routes=documented_order(),
                    )
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(health.router)
    # Routes are tried in order, each at a cost (a tenth of an SMS's time went into trying
    # the API's routes first): the providers' webhooks, the busiest path, come first.
    webhooks = sms.webhook_router()
    app.include_router(webhooks)

    def documented_order() -> list[Any]:
        """The document lists the API first and the webhooks after it."""
        routes = list(app.routes)
        first = [r for r in routes if getattr(r, "original_router", None) is not webhooks]
        return first + [r for r in routes if r not in first]

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
