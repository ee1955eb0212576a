"""Real processes on loopback for the fault tests: start, wait until ready, stop by PID.

``Stack`` starts ``order-engine chain``, ``api`` and ``worker`` processes with
one shared environment (database, Redis, queue name, bus prefix, wallet), each
with its own log file in the test's directory. ``RedisServer`` and
``PgCluster`` are private, throwaway backends that a test may stop and start
without touching the machine's shared services.

Every process is stopped by the PID this module started (SIGTERM, then SIGKILL
after a bound), in the test's ``finally``; nothing is ever stopped by name.
Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from order_engine.settings import Settings

BIN = Path(sys.executable).parent / "order-engine"
START_TIMEOUT_S = 60.0  # four interpreters importing at once on a loaded 2-core box
STOP_TIMEOUT_S = 20.0
# Every variable the engine reads: none may leak in from the developer's shell.
ENGINE_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in ENGINE_VARIABLES}
    env.update(settings)
    return env


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for a polling loop, not one await
    what: str,
    every: float = 0.1,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something other than ``None``/``False``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = await check()
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            result, last = None, exc
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} ({last!r}){extra}"
            )
        await asyncio.sleep(every)


class Proc:
    """One process this test started, with its log, stopped only by its PID."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - our own executables, fixed arguments
            argv,
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._terminated = False
        self.killed = False  # by the test, on purpose

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def signal(self, sig: int) -> None:
        if self.running:
            self.popen.send_signal(sig)  # by PID, the one Popen started

    def kill(self) -> None:
        """SIGKILL, and reap it (bounded)."""
        self.killed = True
        self.signal(signal.SIGKILL)
        self.popen.wait(STOP_TIMEOUT_S)
        self._log.close()

    async def wait_exit(self, timeout: float) -> int:  # noqa: ASYNC109 - a polling deadline
        deadline = time.monotonic() + timeout
        while (code := self.popen.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name} did not exit within {timeout:.0f} s\n{self.tail()}"
                )
            await asyncio.sleep(0.05)
        self._log.close()
        return code

    def terminate(self) -> None:
        """SIGTERM once (a second one makes uvicorn skip its graceful shutdown)."""
        if self.running and not self._terminated:
            self._terminated = True
            self.popen.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
        if self.running:
            self.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT_S)
        self._log.close()
        return self.popen.returncode

    def text(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")
        return ""

    def tail(self, lines: int = 30) -> str:
        return f"--- {self.name} (pid {self.pid}) log tail ---\n" + "\n".join(
            self.text().splitlines()[-lines:]
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Its structured (JSON) log lines, optionally only those of one event."""
        found = []
        for line in self.text().splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if name is None or record.get("event") == name:
                    found.append(record)
        return found


async def rpc(url: str, method: str, params: list[Any], *, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """One raw JSON-RPC call (no product code between the test and the chain)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
        http.post(url, json=body) as response,
    ):
        reply = await response.json(content_type=None)
    if "error" in reply:
        raise AssertionError(f"{method} failed: {reply['error']}")
    return reply["result"]


async def http_status(url: str, *, timeout: float = 5.0) -> int:  # noqa: ASYNC109
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
        http.get(url) as response,
    ):
        return response.status


@dataclass
class Stack:
    """The distributed topology for one test: chain, API nodes and workers."""

    workdir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)
    _names: dict[str, int] = field(default_factory=dict)

    def _name(self, role: str) -> str:
        self._names[role] = self._names.get(role, 0) + 1
        return f"{role}-{self._names[role]}"

    def spawn(self, role: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(
            self._name(role), [str(BIN), *args], env={**self.env, **(env or {})}, cwd=self.workdir
        )
        self.procs.append(proc)
        return proc

    def context(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    async def _ready(self, proc: Proc, check: Callable[[], Awaitable[bool]], what: str) -> None:
        async def up() -> bool:
            if not proc.running:
                raise AssertionError(
                    f"{proc.name} exited with {proc.returncode} while starting\n{proc.tail()}"
                )
            return await check()

        await eventually(up, timeout=START_TIMEOUT_S, what=f"{proc.name} {what}", context=proc.tail)

    async def chain(
        self, *options: str, port: int | None = None, seed: int, time_scale: float
    ) -> tuple[Proc, str]:
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        proc = self.spawn(
            "chain",
            "chain",
            "--port",
            str(port),
            "--rate-limit-rate",
            "0",
            *options,
            env={"SIM_SEED": str(seed), "SIM_TIME_SCALE": str(time_scale)},
        )

        async def healthy() -> bool:
            return bool(await rpc(url, "getHealth", [], timeout=1) == "ok")

        await self._ready(proc, healthy, f"answering JSON-RPC at {url}")
        return proc, url

    async def api(self, port: int | None = None) -> tuple[Proc, str]:
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        # The fault tests are about faults, not access control: no API keys.
        proc = self.spawn("api", "api", "--port", str(port), "--insecure-no-auth")

        async def ready() -> bool:
            return await http_status(f"{url}/readyz", timeout=2) == 200

        await self._ready(proc, ready, f"ready at {url}")
        return proc, url

    async def serve(self, port: int | None = None) -> tuple[Proc, str]:
        """The embedded engine (API and workers in one process), open mode: no keys."""
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        proc = self.spawn("serve", "serve", "--port", str(port))

        async def ready() -> bool:
            return await http_status(f"{url}/readyz", timeout=2) == 200

        await self._ready(proc, ready, f"ready at {url}")
        return proc, url

    async def worker(
        self, concurrency: int = 10, *, wait: bool = True, env: dict[str, str] | None = None
    ) -> Proc:
        proc = self.spawn("worker", "worker", "--concurrency", str(concurrency), env=env)
        if wait:
            await self.started(proc)
        return proc

    async def started(self, proc: Proc) -> None:
        async def logged() -> bool:
            return bool(proc.events("worker_started"))

        await self._ready(proc, logged, "started")

    def stop_all(self) -> dict[str, int]:
        """Stop every process still running (workers and APIs first, the chain last)."""
        order = sorted(self.procs, key=lambda p: p.name.startswith("chain"))
        for proc in order:  # all drain at once
            if not proc.name.startswith("chain"):
                proc.terminate()
        return {proc.name: proc.stop() for proc in order}


def missing_binaries(*names: str) -> list[str]:
    """Which of the server programs (``redis-server``, ``initdb``, ``pg_ctl``) are absent."""
    missing = []
    for name in names:
        try:
            _pg_bin(name) if name in ("initdb", "pg_ctl") else _which(name)
        except FileNotFoundError:
            missing.append(name)
    if any(n in ("initdb", "pg_ctl") for n in names) and os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
            _which("runuser")
        except (KeyError, FileNotFoundError):
            missing.append("a 'postgres' OS user and runuser (PostgreSQL refuses to run as root)")
    return missing


def _which(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found on PATH")
    return found


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found (PostgreSQL server binaries)")
    return found


class PgCluster:
    """A throwaway PostgreSQL cluster: initdb in a temp dir, trust auth, its own port.

    Runs as the ``postgres`` OS user when the test runs as root (PostgreSQL
    refuses to run as root). Stopped with ``pg_ctl stop`` on its own data
    directory, which signals only this cluster's postmaster.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="oe-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        result = subprocess.run(  # noqa: S603 - fixed PostgreSQL binaries
            [*prefix, *argv], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}): {result.stderr}{result.stdout}"
            )

    def init(self) -> None:
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def start(self) -> None:
        # fsync=off survives the crash of PostgreSQL itself (the WAL reached the OS),
        # only not the OS's; synchronous_commit must stay on, or an immediate stop
        # would lose commits that clients were told had succeeded.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log), "-o", options),
            *("-w", "-t", "60", "start"),
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A private ``redis-server`` on a free port, in memory only; restartable on that port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir(exist_ok=True)
        self.proc: Proc | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.starts += 1
        argv = [
            _which("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
        ]  # fmt: skip
        self.proc = Proc(f"redis-{self.starts}", argv, env=dict(os.environ), cwd=self.dir)
        proc = self.proc

        async def pong() -> bool:
            if not proc.running:
                raise AssertionError(f"redis-server exited\n{proc.tail()}")
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(b"PING\r\n")
                await writer.drain()
                return (await asyncio.wait_for(reader.readline(), 1)).startswith(b"+PONG")
            finally:
                writer.close()

        await eventually(pong, timeout=30, what=f"redis-server on {self.port}", context=proc.tail)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
