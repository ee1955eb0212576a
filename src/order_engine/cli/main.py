"""``order-engine``: serve the engine, submit an order, migrate the database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from order_engine.cli import serving
from order_engine.logs import configure_logging
from order_engine.settings import Settings

app = typer.Typer(
    help="Solana DEX market-order execution engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (PORT).")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (WORKER_CONCURRENCY).")
    ] = None,
    reload: Annotated[bool, typer.Option(help="Restart on source changes (development).")] = False,
) -> None:
    """Run API, workers and the simulated venues and chain in one process.

    Migrates the database first. SIGINT/SIGTERM stop accepting, let in-flight
    orders finish (or return them to the queue), and exit 0.
    """
    import uvicorn

    overrides = {
        k: v
        for k, v in {"host": host, "port": port, "worker_concurrency": concurrency}.items()
        if v is not None
    }
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level, settings.log_format)
    _warn_if_open(settings)
    if reload:
        # The reloader re-imports the app in a child process, which reads its
        # settings from the environment: hand the CLI overrides down that way.
        for key, value in overrides.items():
            os.environ[key.upper()] = str(value)
        uvicorn.run(
            "order_engine.api.app:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            reload=True,
            access_log=settings.access_log,
            reload_dirs=[os.path.dirname(os.path.dirname(__file__))],
            log_level=settings.log_level.lower(),
            **serving.server_limits(settings),
        )
        return
    from order_engine.api.app import create_app

    serving.exit_zero_after_drain()
    serving.quiet_access_lines(settings.access_log)
    serving.run_server(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) + 5,
        **serving.server_limits(settings),
    )


def _warn_if_open(settings: Settings) -> None:
    typer.secho(
        f"order-engine: serving on http://{settings.host}:{settings.port} "
        f"(database {settings.database_url.split('://')[0]}, "
        f"simulator time scale {settings.sim_time_scale})",
        err=True,
        fg=typer.colors.GREEN,
    )


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic upgrade head) on DATABASE_URL."""
    from order_engine.adapters.db import run_migrations

    settings = Settings()
    run_migrations(settings.database_url)
    typer.echo(f"migrated {settings.database_url.split('@')[-1]}")


@app.command()
def submit(
    input_token: Annotated[str, typer.Argument(help="Token to sell, e.g. SOL.")],
    output_token: Annotated[
        str, typer.Argument(help="Token to buy, e.g. USDC (with --snipe: the amount).")
    ],
    amount: Annotated[
        str | None, typer.Argument(help="Amount of the input token, in UI units.")
    ] = None,
    slippage_bps: Annotated[int, typer.Option(help="Slippage tolerance, basis points.")] = 50,
    snipe: Annotated[
        str | None,
        typer.Option(
            help="A sniper order for this mint: `submit SOL 0.5 --snipe MINT` buys it on "
            "the first new pool that passes the filters below."
        ),
    ] = None,
    min_liquidity: Annotated[
        str | None, typer.Option(help="Sniper: the pool's input-token side at least this.")
    ] = None,
    require_mint_revoked: Annotated[
        bool, typer.Option(help="Sniper: refuse a token whose mint authority is held.")
    ] = False,
    require_freeze_revoked: Annotated[
        bool, typer.Option(help="Sniper: refuse a token whose freeze authority is held.")
    ] = False,
    limit: Annotated[
        str | None,
        typer.Option(
            help="A limit order: output per one input, UI units (e.g. 151.5 USDC per SOL). "
            "It waits until the whole amount fills at this price or better."
        ),
    ] = None,
    expires_in: Annotated[
        int | None, typer.Option(help="A limit or sniper order expires after this many seconds.")
    ] = None,
    max_price_impact_bps: Annotated[
        int | None, typer.Option(help="Fail rather than fill past this price impact.")
    ] = None,
    priority_fee: Annotated[
        str | None,
        typer.Option(help='Compute-unit price in micro-lamports, or "auto".'),
    ] = None,
    url: Annotated[str, typer.Option(help="Engine base URL.")] = "http://127.0.0.1:3000",
    api_key: Annotated[
        str | None, typer.Option(envvar="ORDER_ENGINE_API_KEY", help="API key.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print raw JSON events.")] = False,
) -> None:
    """Post one order, print each status live as it arrives, then the fill."""
    from order_engine.cli.client import submit_and_follow

    body: dict[str, Any] = {"inputToken": input_token, "slippageBps": slippage_bps}
    if snipe is not None:
        # `submit SOL 0.5 --snipe MINT`: the second argument is the amount.
        body |= {"type": "sniper", "outputToken": snipe, "amount": amount or output_token}
        if min_liquidity is not None:
            body["minLiquidity"] = min_liquidity
        body["requireMintAuthorityRevoked"] = require_mint_revoked
        body["requireFreezeAuthorityRevoked"] = require_freeze_revoked
    elif amount is None:
        raise typer.BadParameter("expected INPUT OUTPUT AMOUNT (or INPUT AMOUNT --snipe MINT)")
    else:
        body |= {"outputToken": output_token, "amount": amount}
    if limit is not None:
        body.update(type="limit", limitPrice=limit)
    if expires_in is not None:
        body["expiresInS"] = expires_in
    if max_price_impact_bps is not None:
        body["maxPriceImpactBps"] = max_price_impact_bps
    if priority_fee is not None:
        body["priorityFee"] = int(priority_fee) if priority_fee.isdigit() else priority_fee
    code = asyncio.run(submit_and_follow(url, body, json_output=json_output, api_key=api_key))
    raise typer.Exit(code)


@app.command()
def cancel(
    order_id: Annotated[str, typer.Argument(help="The id of an open (limit) order.")],
    url: Annotated[str, typer.Option(help="Engine base URL.")] = "http://127.0.0.1:3000",
) -> None:
    """Cancel an order still waiting for its trigger. Exit 0 cancelled, 1 refused
    (already triggered or finished), 2 unknown or unreachable."""
    from order_engine.cli.client import cancel_order

    raise typer.Exit(asyncio.run(cancel_order(url, order_id)))


@app.command()
def chain(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the JSON-RPC endpoint (0: any).")] = 8899,
    rate_limit_rate: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Share of account reads answered HTTP 429."),
    ] = None,
    send_timeout_rate: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Share of sendTransaction calls timing out (504)."),
    ] = None,
    ambiguous_share: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Share of timed-out sends that reached the leader."),
    ] = None,
) -> None:
    """Serve the simulated Solana cluster and venues over JSON-RPC.

    Workers and API nodes reach it at SOLANA_RPC_URL (http://HOST:PORT); GET
    /pools lists the venues' pools. The simulator takes SIM_TIME_SCALE, SIM_SEED
    and SIM_TRANSIENT_FAILURE_RATE; the options override the other fault rates
    (defaults as in the in-process simulator). SIGINT/SIGTERM exit 0.
    """
    from order_engine.sim import SimConfig, build_simulator
    from order_engine.sim.rpc.server import serve_chain

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    defaults = SimConfig()
    sim = build_simulator(
        SimConfig(
            time_scale=settings.sim_time_scale,
            seed=settings.sim_seed,
            transient_failure_rate=settings.sim_transient_failure_rate,
            rate_limit_rate=_or(rate_limit_rate, defaults.rate_limit_rate),
            send_timeout_rate=_or(send_timeout_rate, defaults.send_timeout_rate),
            ambiguous_share=_or(ambiguous_share, defaults.ambiguous_share),
            zero_scale_slot_s=settings.sim_zero_scale_slot_s,
        )
    )
    typer.secho(
        f"order-engine chain: JSON-RPC on http://{host}:{port} (time scale "
        f"{sim.time_scale}, seed {sim.seed}, faults {sim.faults})",
        err=True,
        fg=typer.colors.GREEN,
    )
    try:
        _run(serve_chain(sim, host=host, port=port))
    except OSError as exc:
        typer.secho(f"order-engine chain: cannot serve on {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from exc


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (uvicorn[standard] brings it): the chain server is one
    process serving every worker (measured: getBlockHeight 2 600 -> 3 900 calls/s)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency
        asyncio.run(main)
    else:
        uvloop.run(main)


@app.command("settings")
def show_settings() -> None:
    """Print the effective settings (environment and .env applied)."""
    settings = Settings()
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        typer.echo(f"{name.upper():32} {value!s:48} {info.description or ''}")


@app.command("bench-sim")
def bench_sim(
    seconds: Annotated[float, typer.Option(help="Measuring time per venue type.")] = 2.0,
) -> None:
    """Quotes/s and routing decisions/s of the simulator's hot path, per venue type."""
    from order_engine.bench.sim import run_sim_benchmark

    result = asyncio.run(run_sim_benchmark(seconds))
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _register_distributed() -> None:
    from order_engine.cli.distributed import api, worker

    app.command()(api)
    app.command()(worker)


_register_distributed()


def _register_keys() -> None:
    from order_engine.cli.keys import app as keys_app

    app.add_typer(keys_app, name="keys")


_register_keys()


def _register_sim() -> None:
    from order_engine.cli.sim import app as sim_app

    app.add_typer(sim_app, name="sim")


_register_sim()


def _register_bench() -> None:
    # Light at import: the client, database and histograms load when it runs.
    from order_engine.bench.command import bench

    app.command("bench")(bench)


_register_bench()

if __name__ == "__main__":  # pragma: no cover
    app()
