"""``GET /metrics``: this process's Prometheus metrics (adapters/metrics.py says why
each process exposes its own rather than sharing a multiprocess directory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import Response

from order_engine.api.routes import CallerDep
from order_engine.api.sockets import open_sockets

if TYPE_CHECKING:
    from order_engine.bootstrap import Engine

router = APIRouter()


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, caller: CallerDep) -> Response:
    """Needs a key whenever keys are enforced (a scraper sends it as a bearer token):
    the metrics tell how much and what an account trades."""
    del caller
    engine: Engine = request.app.state.engine
    body = await engine.metrics.render(engine.queue.depth, open_sockets(request.app).count)
    return Response(body, media_type=engine.metrics.content_type)
