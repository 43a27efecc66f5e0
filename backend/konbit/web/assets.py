"""Third-party browser assets, pinned in package.json and served by Konbit itself.

Nothing is loaded from another host: ``/docs`` (swagger-ui-dist), ``/redoc`` (redoc's standalone
bundle) and the dashboards (htmx) use the files ``npm ci`` (``make setup``) put in
``node_modules``. Only the files listed here are served.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from konbit.paths import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"
PREFIX = "/static/vendor"

#: served name -> file under node_modules (the versions are package.json's).
VENDOR: dict[str, str] = {
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
    "swagger-favicon.png": "swagger-ui-dist/favicon-32x32.png",
    "redoc.standalone.js": "redoc/bundles/redoc.standalone.js",
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
}
MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
#: Pinned files never change under the same name while the server runs.
CACHE = "public, max-age=86400"

#: Files whose text names a remote resource a browser would fetch: replaced when served.
#: (redoc's "API docs by Redocly" footer logo is fetched from Redocly's own host.)
REWRITES: dict[str, tuple[tuple[re.Pattern[bytes], bytes], ...]] = {
    "redoc.standalone.js": (
        (
            re.compile(rb"https://[A-Za-z0-9.-]+/redoc/logo-mini\.svg"),
            b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E",
        ),
    ),
}
_rewritten: dict[str, bytes] = {}

router = APIRouter(include_in_schema=False)


def vendor_path(name: str) -> Path:
    return NODE_MODULES / VENDOR[name]


@router.get(PREFIX + "/{name}", response_model=None)
def vendor(name: str) -> FileResponse | Response:
    if name not in VENDOR:
        raise HTTPException(404, "no such asset")
    path = vendor_path(name)
    if not path.is_file():
        raise HTTPException(404, f"{VENDOR[name]} is missing: run `make setup` (npm ci)")
    headers = {"Cache-Control": CACHE}
    if name in REWRITES:
        if name not in _rewritten:
            body = path.read_bytes()
            for remote, local in REWRITES[name]:
                body = remote.sub(local, body)
            _rewritten[name] = body
        return Response(_rewritten[name], media_type=MEDIA[path.suffix], headers=headers)
    return FileResponse(path, media_type=MEDIA[path.suffix], headers=headers)


def install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc`` on local assets (create the app with docs_url=None)."""

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/swagger-favicon.png",
            # No badge from validator.swagger.io: nothing leaves the server.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/swagger-favicon.png",
            with_google_fonts=False,
        )
