"""A real engine for tests: SQLite in a temp dir, in-process queue and bus, the
simulator at time scale 0 (no simulated waits), and optionally a real uvicorn
server on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from order_engine.adapters.db import Database, SqlOrderRepository
from order_engine.api.app import create_app
from order_engine.api.sockets import OpenSockets
from order_engine.bootstrap import Engine, build_engine
from order_engine.cli.serving import server_limits
from order_engine.settings import Settings


def engine_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}",
        "wallet_path": tmp_path / "wallet.json",
        "sim_time_scale": 0.0,
        "sim_seed": 7,
        "sim_transient_failure_rate": 0.0,
        "backoff_base_ms": 5,
        "backoff_max_ms": 50,
        "lease_s": 5.0,
        "reconcile_interval_s": 3600.0,
        "log_level": "WARNING",
        # Many tests sell more than any pool absorbs, to reach the chain's own
        # refusals (slippage, funds); the price-impact guard is tested where it is set.
        "max_price_impact_bps": 0,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_engine(settings: Settings, *, workers: bool = True) -> AsyncIterator[Engine]:
    engine = await build_engine(settings)
    if engine.simulator is not None:
        # Tests ask for faults explicitly; default background faults would make them flaky.
        engine.simulator.faults.rate_limit_rate = 0.0
        engine.simulator.faults.send_timeout_rate = 0.0
    await engine.start(workers=workers)
    try:
        yield engine
    finally:
        await engine.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(engine: Engine, app: ASGIApp | None = None) -> AsyncIterator[str]:
    """Serve ``engine`` (through ``app``, by default its own) over real HTTP/WebSocket
    on loopback; yields the base URL."""
    port = _free_port()
    app = app or create_app(engine.settings, engine=engine)
    sockets = getattr(getattr(app, "state", None), "sockets", None)
    counted = _SERVED.setdefault(id(engine), [])
    if isinstance(sockets, OpenSockets):
        counted.append(sockets)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **server_limits(engine.settings),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        if isinstance(sockets, OpenSockets):
            counted.remove(sockets)


# The socket counters of the apps serving each engine now (by id: an Engine is unhashable).
_SERVED: dict[int, list[OpenSockets]] = {}


def open_sockets(engine: Engine) -> int:
    """WebSockets held open by the apps ``serving`` runs for ``engine`` (the API counts them)."""
    return sum(sockets.count for sockets in _SERVED.get(id(engine), []))


def database(engine: Engine) -> Database:
    """The engine's database, for tests that reach under the order repository port."""
    assert isinstance(engine.repo, SqlOrderRepository)
    return engine.repo.db
