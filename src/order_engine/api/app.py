"""FastAPI application factory.

``create_app`` owns the engine's lifetime through the lifespan: build (and
migrate), start the workers if this process runs them, serve, then on
shutdown stop taking jobs, drain, and close.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from order_engine.api.account_ws import router as account_ws_router
from order_engine.api.dashboard import install_dashboard
from order_engine.api.errors import install_error_handlers
from order_engine.api.hot import EngineApp
from order_engine.api.metrics_route import router as metrics_router
from order_engine.api.middleware import (
    BodySizeLimit,
    FreshLogContext,
    LoopbackWhileOpen,
    redact_api_keys_in_server_logs,
)
from order_engine.api.problems import install_openapi, install_parameter_validation
from order_engine.api.queries import router as queries_router
from order_engine.api.routes import router as http_router
from order_engine.api.sim_routes import router as sim_router
from order_engine.api.sockets import OpenSockets
from order_engine.api.ws import router as ws_router
from order_engine.bootstrap import Engine, Role, build_engine
from order_engine.logs import configure_logging
from order_engine.settings import Settings

DESCRIPTION = """
Executes Solana DEX market orders: routes each order to the best venue
(Raydium or Meteora, or a split), builds and signs a v0 transaction, lands it,
and streams every status change live.

Submit with `POST /api/orders/execute` (optionally with an `Idempotency-Key`);
follow with a WebSocket on the same path (`?orderId=...`), or submit over the
WebSocket by sending the order JSON as the first message. Every order of your
API key streams on one WebSocket, `/api/orders/stream` (`?after=<cursor>` to
resume).

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` (a
WebSocket may also pass `?apiKey=<key>`). Errors are RFC 9457 problem+json with
a stable `code`.
"""

OPEN_WARNING = (
    "order-engine: WARNING: no API key exists, so the API is open to anyone who can reach "
    "it. Create a key with `order-engine keys create --name <name>`; from then on every "
    "request needs one.\n"
)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    role: Role = "all",
    concurrency: int | None = None,
) -> FastAPI:
    """``role="all"`` also runs workers (and the simulator when no chain URL is
    set); ``role="api"`` serves HTTP and WebSocket only."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        active = engine or await build_engine(settings, role=role)
        app.state.engine = active
        if owned:
            await active.start(workers=role != "api", concurrency=concurrency)
            if settings.auth_mode == "auto" and not await active.gateway.auth.enforced():
                sys.stderr.write(OPEN_WARNING)
        try:
            yield
        finally:
            if owned:
                await active.stop()

    app = EngineApp(
        title="order-execution-engine",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.sockets = OpenSockets()
    if engine is not None:
        app.state.engine = engine
    install_error_handlers(app)
    install_parameter_validation(app)
    install_openapi(app)
    app.include_router(http_router)
    app.include_router(queries_router)
    app.include_router(ws_router)
    app.include_router(account_ws_router)
    app.include_router(metrics_router)
    app.include_router(sim_router)
    install_dashboard(app)
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_read_timeout_s
    )
    app.add_middleware(LoopbackWhileOpen, hosts=settings.open_mode_hosts)
    app.add_middleware(FreshLogContext)
    app.install_hot_paths(
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_read_timeout_s,
        open_mode_hosts=settings.open_mode_hosts,
    )
    redact_api_keys_in_server_logs()
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (used by ``make dev`` with reload)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
