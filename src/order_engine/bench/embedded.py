"""A server the bench starts itself, in a child process on a loopback port.

``embedded_engine``: the real ``order-engine serve`` with its SQLite database
and wallet in a temporary directory (unless a database is given), the
simulator at the requested time scale, logging (JSON) to a file there. It is
stopped with SIGTERM (the engine drains and exits 0), by PID, and killed only
if it outlives its grace period.

``stub_server``: ``python -m order_engine.bench.stub``, for ``--self-test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from order_engine.bench.procstat import raise_open_files_limit

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0
LOG_TAIL_BYTES = 4000
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ServerFailed(RuntimeError):
    """The child server did not start (the message carries its log's tail)."""


@dataclass
class ChildServer:
    url: str
    pid: int
    proc: asyncio.subprocess.Process
    workdir: Path
    log_path: Path
    database_url: str | None
    description: str
    exit_code: int | None = None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the bench dies without stopping it
    (SIGKILL, a crash), so that no engine outlives its run. Linux only."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve_command(port: int, concurrency: int | None) -> list[str]:
    script = Path(sys.executable).parent / "order-engine"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "order_engine.cli.main"]
    command = [*base, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command


def log_tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-LOG_TAIL_BYTES:].decode("utf-8", "replace")


async def _wait_ready(server: ChildServer, path: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            code = server.proc.returncode
            if code is not None:
                raise ServerFailed(
                    f"{server.description} exited with {code} during start-up; log tail:\n"
                    + log_tail(server.log_path)
                )
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(
                    server.url + path, timeout=aiohttp.ClientTimeout(total=2)
                ) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise ServerFailed(
        f"{server.description} was not ready within {START_TIMEOUT_S:.0f} s; log tail:\n"
        + log_tail(server.log_path)
    )


async def stop_child(server: ChildServer, grace_s: float = STOP_GRACE_S) -> int | None:
    """SIGTERM the child by its PID, wait for it, SIGKILL it only if it hangs."""
    proc = server.proc
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        server.exit_code = await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        proc.kill()
        server.exit_code = await asyncio.wait_for(proc.wait(), 10)
    return server.exit_code


@contextlib.asynccontextmanager
async def _child(
    command: list[str],
    env: Mapping[str, str],
    workdir: Path,
    *,
    description: str,
    port: int,
    database_url: str | None,
    ready_path: str,
    keep_workdir: bool,
) -> AsyncIterator[ChildServer]:
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=workdir,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    server = ChildServer(
        url=f"http://127.0.0.1:{port}",
        pid=proc.pid,
        proc=proc,
        workdir=workdir,
        log_path=log_path,
        database_url=database_url,
        description=description,
    )
    try:
        await _wait_ready(server, ready_path)
        yield server
    finally:
        if server.exit_code is None:
            await stop_child(server)
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def embedded_engine(
    *,
    database_url: str | None,
    sim_time_scale: float | None,
    extra_env: Mapping[str, str],
    concurrency: int | None = None,
    keep_workdir: bool = False,
) -> AsyncIterator[ChildServer]:
    workdir = Path(tempfile.mkdtemp(prefix="order-engine-bench-"))
    db_url = database_url or f"sqlite:///{workdir / 'engine.db'}"
    env = dict(os.environ)
    # The engine as it ships (LOG_LEVEL stays its default, INFO, unless set),
    # its log in a file; its own database and wallet; no per-client request
    # limit, since the bench is the one client of an engine it started; and a
    # connection cap (MAX_CONNECTIONS, 1,000 by default, WebSockets included) as
    # high as the open-files limit allows, since the scenarios hold 10,000 sockets.
    env.setdefault("RATE_LIMIT_PER_S", "0")
    env.setdefault("MAX_CONNECTIONS", str(max(1_000, raise_open_files_limit() - 512)))
    env.update(DATABASE_URL=db_url, WALLET_PATH=str(workdir / "wallet.json"), LOG_FORMAT="json")
    if sim_time_scale is not None:
        env["SIM_TIME_SCALE"] = repr(float(sim_time_scale))
    env.update(extra_env)
    port = free_port()
    scale = env.get("SIM_TIME_SCALE", "default")
    async with _child(
        _serve_command(port, concurrency),
        env,
        workdir,
        description=f"order-engine serve (SIM_TIME_SCALE={scale}, "
        f"database {db_url.split('://')[0]})",
        port=port,
        database_url=db_url,
        ready_path="/readyz",
        keep_workdir=keep_workdir,
    ) as server:
        yield server


@contextlib.asynccontextmanager
async def stub_server(*, keep_workdir: bool = False) -> AsyncIterator[ChildServer]:
    workdir = Path(tempfile.mkdtemp(prefix="order-engine-bench-stub-"))
    port = free_port()
    command = [sys.executable, "-m", "order_engine.bench.stub", "--port", str(port)]
    async with _child(
        command,
        dict(os.environ),
        workdir,
        description="stub server (bare aiohttp, the wire contract only)",
        port=port,
        database_url=None,
        ready_path="/healthz",
        keep_workdir=keep_workdir,
    ) as server:
        yield server
