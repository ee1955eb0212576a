"""``order-engine bench``: the command's options and their validation.

Light to import (``order-engine --help`` loads it): the client, the database
and the histograms are imported only when the command runs (``runner``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from order_engine.bench.options import DEFAULT_CONCURRENCY, BenchOptions, Subscribe
from order_engine.bench.schedule import (
    Arrivals,
    is_loopback_url,
    normalize_base_url,
    parse_pairs,
    parse_sizes,
)


def _redacted_argv() -> list[str]:
    """The command line as given, with the API key's value hidden."""
    out: list[str] = []
    hide = False
    for arg in sys.argv[1:]:
        if hide:
            out.append("***")
            hide = False
        elif arg == "--api-key":
            out.append(arg)
            hide = True
        elif arg.startswith("--api-key="):
            out.append("--api-key=***")
        else:
            out.append(arg)
    return ["order-engine", *out]


def _env_pairs(items: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--engine-env")
        env[key.strip().upper()] = value
    return env


def _streams(
    *, urls: list[str], subscribers: int, stream: str, stalled: int, idle: float, orders: int,
    concurrency: int, drain_timeout: float, sim_time_scale: float | None,
    engine_env: dict[str, str],
) -> None:  # fmt: skip
    if stream != "account":
        raise typer.BadParameter("only --stream account (per-order streams: the order load test)")
    if len(urls) > 1 or (urls and not is_loopback_url(normalize_base_url(urls[0]))):
        raise typer.BadParameter("the stream scenario takes at most one loopback --url")
    from order_engine.bench.runner import _run_loop  # noqa: PLC0415 - keep --help light
    from order_engine.bench.streams import (  # noqa: PLC0415
        StreamBenchOptions,
        render,
        run_streams,
    )

    options = StreamBenchOptions(
        url=normalize_base_url(urls[0]) if urls else None,
        subscribers=subscribers,
        stalled=stalled,
        idle_s=idle,
        orders=orders,
        concurrency=concurrency,
        drain_timeout_s=drain_timeout,
        sim_time_scale=sim_time_scale,
        engine_env=engine_env,
    )
    doc = _run_loop(run_streams(options))
    typer.echo(render(doc))
    raise typer.Exit(0 if not doc["problems"] else 1)


def _watched(items: list[str]) -> list[tuple[str, int]]:
    watched: list[tuple[str, int]] = []
    for item in items:
        name, sep, raw = item.rpartition("=")
        try:
            pid = int(raw)
        except ValueError:
            raise typer.BadParameter(
                f"expected PID or NAME=PID, got {item!r}", param_hint="--watch-pid"
            ) from None
        watched.append((name if sep else f"pid {pid}", pid))
    return watched


def bench(  # noqa: PLR0917 - a command's options are its signature
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="Engine base URL; repeat to spread orders round-robin over API nodes. "
            "Default: start an embedded `order-engine serve` on a free loopback port.",
        ),
    ] = None,
    orders: Annotated[int, typer.Option(min=1, help="At most this many orders.")] = 1000,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help=f"Closed loop: orders in flight (default {DEFAULT_CONCURRENCY})."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=0.001, help="Open loop: orders/s, whatever the responses."),
    ] = None,
    arrivals: Annotated[
        Arrivals, typer.Option(help="Open-loop spacing: poisson or fixed.")
    ] = Arrivals.POISSON,
    duration: Annotated[
        float, typer.Option(min=0.1, help="Stop submitting after this many seconds.")
    ] = 60.0,
    drain_timeout: Annotated[
        float, typer.Option(min=0.0, help="Then wait at most this long for terminal events.")
    ] = 30.0,
    pairs: Annotated[str, typer.Option(help="Pairs, chosen at random per order.")] = (
        "SOL/USDC,USDC/SOL"
    ),
    sizes: Annotated[
        str, typer.Option(help="Amounts (input token UI units), chosen at random per order.")
    ] = "0.1,1,10",
    slippage_bps: Annotated[
        int | None, typer.Option(min=1, max=5000, help="slippageBps to send (engine default).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the order mix and the arrivals.")] = 1,
    subscribe: Annotated[
        Subscribe, typer.Option(help="per-order: one WebSocket per order; none: POST only.")
    ] = Subscribe.PER_ORDER,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write the results document here.")
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="Check every order's stored history with SQL afterwards.")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="DATABASE_URL",
            help="The engine's database, for --verify against --url (and for the embedded "
            "engine instead of a temporary SQLite file).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="ORDER_ENGINE_API_KEY",
            help="Sent as 'Authorization: Bearer <key>' on POST and ?apiKey= on WebSockets.",
        ),
    ] = None,
    sim_time_scale: Annotated[
        float | None,
        typer.Option(min=0.0, help="SIM_TIME_SCALE of the embedded engine (0: no waits)."),
    ] = None,
    worker_concurrency: Annotated[
        int | None, typer.Option(min=1, help="WORKER_CONCURRENCY of the embedded engine.")
    ] = None,
    engine_env: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE setting for the embedded engine; repeatable."),
    ] = None,
    watch_pid: Annotated[
        list[str] | None,
        typer.Option(
            help="Also report CPU and peak RSS of this server process: PID or NAME=PID; repeatable."
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option(help="Allow a --url that is not a loopback address.")
    ] = False,
    max_in_flight: Annotated[
        int, typer.Option(min=1, help="Open loop: at most this many orders in flight.")
    ] = 20_000,
    progress: Annotated[bool, typer.Option(help="Live progress line on stderr.")] = True,
    self_test: Annotated[
        bool,
        typer.Option(help="Measure the client itself against a trivially fast stub server."),
    ] = False,
    keep_workdir: Annotated[
        bool, typer.Option(help="Keep the embedded engine's temporary directory (log, DB).")
    ] = False,
    subscribers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Stream scenario: open this many --stream sockets, measure them idle, then "
            "under --orders (bench/streams.py). 0: the order load test.",
        ),
    ] = 0,
    stream: Annotated[
        str, typer.Option(help="Stream scenario: which stream (account).")
    ] = "account",
    stalled: Annotated[
        int, typer.Option(min=0, help="Stream scenario: also this many sockets that never read.")
    ] = 0,
    idle: Annotated[
        float, typer.Option(min=0.5, help="Stream scenario: seconds measured with no orders.")
    ] = 10.0,
) -> None:
    """Load-test the engine: bounded orders, latency histograms, complete streams, --verify.

    Exits 0 when every order was accepted and reached a terminal state, every
    stream was complete and (with --verify) the database holds exactly one
    terminal event and gapless seqs for each; 1 otherwise; 2 on a usage error.
    """
    if subscribers or stalled:
        _streams(urls=url or [], subscribers=subscribers, stream=stream, stalled=stalled,
                 idle=idle, orders=orders, concurrency=concurrency or DEFAULT_CONCURRENCY,
                 drain_timeout=drain_timeout, sim_time_scale=sim_time_scale,
                 engine_env=_env_pairs(engine_env or []))  # fmt: skip
    if concurrency is not None and rate is not None:
        raise typer.BadParameter("give --concurrency (closed loop) or --rate (open loop), not both")
    urls: list[str] = []
    for raw in url or []:
        try:
            base = normalize_base_url(raw)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--url") from None
        if not allow_remote and not is_loopback_url(base):
            raise typer.BadParameter(
                f"{base} is not a loopback address: load goes to loopback only unless "
                "--allow-remote",
                param_hint="--url",
            )
        urls.append(base)
    if self_test and (urls or verify):
        raise typer.BadParameter("--self-test starts its own stub server and has no database")
    if verify and urls and not database_url:
        raise typer.BadParameter(
            "--verify against --url needs the engine's database: --database-url or DATABASE_URL"
        )
    try:
        parsed_pairs, parsed_sizes = parse_pairs(pairs), parse_sizes(sizes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    options = BenchOptions(
        urls=urls,
        orders=orders,
        concurrency=None if rate is not None else (concurrency or DEFAULT_CONCURRENCY),
        rate=rate,
        arrivals=arrivals,
        duration_s=duration,
        drain_timeout_s=drain_timeout,
        pairs=parsed_pairs,
        sizes=parsed_sizes,
        slippage_bps=slippage_bps,
        seed=seed,
        subscribe=subscribe is Subscribe.PER_ORDER,
        json_file=json_file,
        verify=verify,
        database_url=database_url,
        api_key=api_key,
        sim_time_scale=sim_time_scale,
        worker_concurrency=worker_concurrency,
        engine_env=_env_pairs(engine_env or []),
        watch_pids=_watched(watch_pid or []),
        max_in_flight=max_in_flight,
        progress=progress,
        self_test=self_test,
        keep_workdir=keep_workdir,
        argv=_redacted_argv(),
    )
    from order_engine.bench.runner import main  # noqa: PLC0415 - keep --help light

    raise typer.Exit(main(options))
