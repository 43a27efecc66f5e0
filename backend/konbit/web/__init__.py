"""Pages people use: the public trace page and a dashboard for each organisation.

A channel like :mod:`konbit.api` and :mod:`konbit.sms`: it validates what people send,
calls :mod:`konbit.services`, and turns a service's refusal into a form error. Server-side
Jinja2 templates; pages work without JavaScript, htmx (served locally) refreshes pending
transactions.
"""

from __future__ import annotations

from fastapi import FastAPI

from konbit.web import assets, dashboards, trace


def install(app: FastAPI) -> None:
    """Mount the pages, their assets, the offline ``/docs`` and ``/redoc``, and the trace
    page for browsers at the API's ``/trace/...`` URLs."""
    assets.install_docs(app)
    app.include_router(assets.router)
    app.include_router(trace.router)
    app.include_router(dashboards.router)
    app.add_middleware(trace.HtmlTrace)
