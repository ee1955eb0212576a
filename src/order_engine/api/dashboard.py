"""The dashboard: one HTML page at ``/`` and its static files under ``/dashboard/``.

The page is plain ES modules (no build step) shipped as package data in
``api/static``; it speaks only the public JSON API and WebSockets, same-origin,
so it works unchanged behind the API's checks. The charting library (uPlot)
is vendored in ``static/vendor`` so the page works offline.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("order_engine.api") / "static"))
ASSETS_PATH = "/dashboard"
# Everything the page loads is its own: no inline script, no third-party origin.
# 'self' covers same-origin ws:/wss: in current browsers (CSP level 3).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter()


@router.get("/", include_in_schema=False)
async def dashboard() -> Response:
    # Read per request: a few KiB, and `make dev` picks up edits without a restart.
    page = (STATIC_DIR / "index.html").read_bytes()
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def install_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="dashboard")
