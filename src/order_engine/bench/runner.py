"""One bench run, start to end: target up, load, drain, measure, stop, verify, report."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import orjson
import typer

from order_engine.bench import procstat
from order_engine.bench.embedded import (
    ChildServer,
    ServerFailed,
    embedded_engine,
    log_tail,
    stop_child,
    stub_server,
)
from order_engine.bench.loadgen import Live, LoadGenerator, LoadPlan, LoadResult, session_for
from order_engine.bench.options import BenchOptions, command_line
from order_engine.bench.progress import ProgressLine
from order_engine.bench.render import render_text
from order_engine.bench.report import Watched, build
from order_engine.bench.schedule import OrderMix
from order_engine.bench.verify import Inspection, TerminalWatcher, inspect_orders

EXIT_OK, EXIT_PROBLEMS, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130


def _config(options: BenchOptions) -> dict[str, Any]:
    return {
        "command": command_line(options),
        "orders": options.orders,
        "concurrency": options.concurrency,
        "rate": options.rate,
        "arrivals": options.arrivals.value,
        "duration_s": options.duration_s,
        "drain_timeout_s": options.drain_timeout_s,
        "pairs": ",".join(str(p) for p in options.pairs),
        "sizes": ",".join(options.sizes),
        "slippage_bps": options.slippage_bps,
        "seed": options.seed,
        "subscribe": "per-order" if options.subscribe else "none",
        "verify": options.verify,
        "api_key": bool(options.api_key),
        "sim_time_scale": options.sim_time_scale,
        "worker_concurrency": options.worker_concurrency,
        "engine_env": sorted(options.engine_env),
        "self_test": options.self_test,
    }


def _target(options: BenchOptions, server: ChildServer | None, urls: list[str]) -> dict[str, Any]:
    mode = "self-test" if options.self_test else ("embedded" if server else "url")
    database = server.database_url if server else options.database_url
    return {
        "mode": mode,
        "urls": urls,
        "description": server.description if server else f"engine at {len(urls)} URL(s)",
        "database": database.split("://")[0] if database else None,
        "server_pid": server.pid if server else None,
    }


async def _load(
    options: BenchOptions, urls: list[str], database_url: str | None, live: Live
) -> tuple[LoadResult, TerminalWatcher | None]:
    plan = LoadPlan(
        urls=urls,
        orders=options.orders,
        duration_s=options.duration_s,
        drain_timeout_s=options.drain_timeout_s,
        concurrency=options.concurrency,
        rate=options.rate,
        arrivals=options.arrivals,
        subscribe=options.subscribe,
        max_in_flight=options.max_in_flight,
        api_key=options.api_key,
        seed=options.seed,
    )
    mix = OrderMix(
        options.pairs, options.sizes, seed=options.seed, slippage_bps=options.slippage_bps
    )
    watcher = None
    if not options.subscribe and database_url:
        watcher = TerminalWatcher(database_url, live)
    async with session_for(options.max_in_flight) as session:
        generator = LoadGenerator(plan, mix, session, live)
        done = asyncio.Event()
        follow = asyncio.create_task(watcher.follow(generator.records, done)) if watcher else None
        try:
            result = await generator.run()
        finally:
            done.set()
            if follow is not None:
                await follow
    if watcher is not None:
        spent = result.finished - result.submit_stopped
        await watcher.drain(result.records, max(options.drain_timeout_s - spent, 0.0))
        result.finished = perf_counter()
    return result, watcher


async def run(options: BenchOptions) -> dict[str, Any]:
    machine: dict[str, Any] = dict(procstat.machine_info())
    machine["loadavg_before"] = procstat.loadavg()
    machine["open_files_limit"] = procstat.raise_open_files_limit()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    async with contextlib.AsyncExitStack() as stack:
        server: ChildServer | None = None
        if options.self_test:
            server = await stack.enter_async_context(stub_server(keep_workdir=options.keep_workdir))
        elif not options.urls:
            server = await stack.enter_async_context(
                embedded_engine(
                    database_url=options.database_url,
                    sim_time_scale=options.sim_time_scale,
                    extra_env=options.engine_env,
                    concurrency=options.worker_concurrency,
                    keep_workdir=options.keep_workdir,
                )
            )
        urls = [server.url] if server else options.urls
        database_url = server.database_url if server else options.database_url
        pids = ([server.pid] if server else []) + [pid for _, pid in options.watch_pids]
        live = Live()
        progress = ProgressLine(live, duration_s=options.duration_s, orders=options.orders)
        cpu_start = procstat.CpuSample.take(pids)
        if options.progress:
            progress.start()
        try:
            result, watcher = await _load(options, urls, database_url, live)
        finally:
            if options.progress:
                await progress.stop()
        cpu = procstat.cpu_between(cpu_start, procstat.CpuSample.take(pids))
        watched = [
            Watched(pid, name, procstat.peak_rss_bytes(pid)) for name, pid in options.watch_pids
        ]
        if server is not None:
            rss = procstat.peak_rss_bytes(server.pid)
            exit_code = await stop_child(server)
            role = "stub" if options.self_test else "embedded engine"
            watched.insert(0, Watched(server.pid, role, rss, exit_code))
            if exit_code not in (0, None):
                typer.echo(f"{role} log tail:\n{log_tail(server.log_path)}", err=True)
        if watcher is not None:
            await watcher.close()
        inspection: Inspection | None = None
        if database_url and (options.verify or not options.subscribe):
            ids = [r.order_id for r in result.records if r.order_id is not None]
            inspection = await inspect_orders(database_url, ids)
        machine["loadavg_after"] = procstat.loadavg()
        doc = build(
            config=_config(options),
            target=_target(options, server, urls),
            machine=machine,
            result=result,
            cpu=cpu,
            client_peak_rss=procstat.own_peak_rss_bytes(),
            peaks={"in_flight": live.peak_in_flight, "subscribers": live.peak_subscribers},
            watched=watched,
            inspection=inspection,
            verified=options.verify,
            open_loop=options.rate is not None,
            subscribed=options.subscribe,
        )
        doc["started_at"] = started_at
        doc["client"]["event_loop"] = _loop_name()
        return doc


def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: the run was cancelled and its engine stopped."""


async def _interruptible(options: BenchOptions) -> dict[str, Any]:
    """``run``, cancelled by SIGINT/SIGTERM so that its clean-up (stopping the
    embedded engine by PID, removing its directory) happens on the way out."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[signal.Signals] = []

    def interrupt(signum: signal.Signals) -> None:
        received.append(signum)
        if task is not None:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt, signum)
    try:
        return await run(options)
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0].name) from None
        raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _run_loop(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop  # noqa: PLC0415 - optional; a dependency on Linux
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(options: BenchOptions) -> int:
    try:
        doc = _run_loop(_interruptible(options))
    except ServerFailed as exc:
        typer.secho(f"order-engine bench: {exc}", err=True, fg=typer.colors.RED)
        return EXIT_SETUP
    except Interrupted as exc:
        typer.secho(f"order-engine bench: interrupted by {exc}; no results", err=True)
        return EXIT_INTERRUPTED
    text = render_text(doc)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    if options.json_file is not None:
        options.json_file.parent.mkdir(parents=True, exist_ok=True)
        options.json_file.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    return EXIT_OK if doc["ok"] else EXIT_PROBLEMS
