"""Distributed-mode processes: ``order-engine api`` and ``order-engine worker``.

Both read ``DATABASE_URL``, ``REDIS_URL`` (or ``REDIS_HOST``/``REDIS_PORT``) and
``SOLANA_RPC_URL`` from the settings; run as many of each as load needs.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import structlog
import typer

from order_engine.cli import serving
from order_engine.logs import configure_logging
from order_engine.settings import Settings

log = structlog.get_logger(__name__)


def _settings(**overrides: object) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_format)
    missing = [
        name
        for name, value in (
            ("REDIS_URL (or REDIS_HOST)", settings.effective_redis_url),
            ("SOLANA_RPC_URL", settings.solana_rpc_url),
        )
        if not value
    ]
    if missing or settings.is_sqlite:
        hint = ", ".join(missing + (["a PostgreSQL DATABASE_URL"] if settings.is_sqlite else []))
        typer.secho(
            f"warning: distributed mode expects {hint}; processes will not share "
            "what is missing (use `order-engine serve` for one process)",
            err=True,
            fg=typer.colors.YELLOW,
        )
    return settings


def api(
    host: Annotated[str | None, typer.Option(help="Interface to bind (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (PORT).")] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth", help="Serve without API keys (anyone may submit and read)."
        ),
    ] = False,
) -> None:
    """HTTP and WebSocket only: accepts orders and streams their events.

    Every request needs an API key (`order-engine keys create`); refuses to
    start while no active key exists, unless --insecure-no-auth. GET /metrics
    serves this process's metrics; / serves the dashboard.
    """
    from order_engine.api.app import create_app

    settings = _settings(host=host, port=port)
    if insecure_no_auth:
        settings = settings.model_copy(update={"auth_mode": "off"})
        typer.secho(
            "warning: --insecure-no-auth: no API key is required; anyone who can reach "
            f"{settings.host}:{settings.port} may submit orders and read every order",
            err=True,
            fg=typer.colors.YELLOW,
        )
    else:
        settings = settings.model_copy(update={"auth_mode": "required"})
        try:
            active = asyncio.run(_active_keys(settings))
        except Exception as exc:
            typer.secho(
                f"order-engine api: cannot read API keys from DATABASE_URL ({exc!r}); is it "
                "migrated (`order-engine migrate`)?",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(2) from exc
        if active == 0:
            typer.secho(
                "order-engine api: no active API key in the database, so no client could use "
                "this API. Create one with `order-engine keys create --name <name>` (same "
                "DATABASE_URL), or start with --insecure-no-auth.",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(2)
    serving.exit_zero_after_drain()
    serving.quiet_access_lines(settings.access_log)
    serving.run_server(
        create_app(settings, role="api"),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) + 5,
        **serving.server_limits(settings),
    )


async def _active_keys(settings: Settings) -> int:
    from order_engine.adapters.db import Database, SqlApiKeyStore, create_engine

    engine = create_engine(settings.database_url)
    try:
        keys = await SqlApiKeyStore(Database(engine, group_commit=False)).list()
    finally:
        await engine.dispose()
    return sum(not key.revoked for key in keys)


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (WORKER_CONCURRENCY).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve GET /metrics on this port (METRICS_PORT; 0: any free port)."),
    ] = None,
) -> None:
    """Runs jobs: claims orders, routes, signs, lands, persists and publishes.

    SIGTERM/SIGINT: stop taking jobs, let running ones finish within
    DRAIN_TIMEOUT_S (the rest return to the queue), exit 0.
    """
    settings = _settings(worker_concurrency=concurrency, metrics_port=metrics_port)
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from order_engine.bootstrap import build_engine

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    engine = await build_engine(settings, role="worker")
    metrics_server = None
    try:
        if settings.metrics_port is not None:
            from order_engine.adapters.metrics import serve_metrics

            metrics_server, bound = await serve_metrics(
                engine.metrics,
                host=settings.host,
                port=settings.metrics_port,
                queue_depth=engine.queue.depth,
                ws_open=lambda: 0,  # a worker serves no WebSocket
            )
            log.info("metrics_serving", url=f"http://{settings.host}:{bound}/metrics")
        await engine.start(workers=True)
        log.info(
            "worker_started",
            concurrency=settings.worker_concurrency,
            wallet=str(engine.wallet.pubkey()) if engine.wallet else None,
        )
        await stop.wait()
        log.info("worker_draining", drain_timeout_s=settings.drain_timeout_s)
    finally:
        if metrics_server is not None:
            await metrics_server.cleanup()
        await engine.stop()
    log.info("worker_stopped")
