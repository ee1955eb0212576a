"""The real ``order-engine`` executable: serve, submit, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

BIN = Path(sys.executable).parent / "order-engine"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "DATABASE_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'engine.db'}",
        WALLET_PATH=str(tmp_path / "wallet.json"),
        SIM_SEED="11",
        SIM_TRANSIENT_FAILURE_RATE="0",
        LOG_FORMAT="json",
        **extra,
    )
    return env


class Server:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp_path / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
            [str(BIN), "serve", "--port", str(self.port)],
            cwd=tmp_path,
            env=_env(tmp_path, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "serve exited during start-up"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("serve did not start listening within 30 s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()


def _statuses(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status FROM orders").fetchall()
    return {str(uuid.UUID(k)): v for k, v in rows}


def _terminal_events(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT order_id, COUNT(*) FROM order_events "
            "WHERE status IN ('confirmed', 'failed') GROUP BY order_id"
        ).fetchall()
    return {str(uuid.UUID(k)): n for k, n in rows}


def test_submit_prints_every_status_live_and_the_fill(tmp_path: Path) -> None:
    server = Server(tmp_path, SIM_TIME_SCALE="0.2")
    try:
        result = subprocess.run(  # noqa: S603
            [str(BIN), "submit", "SOL", "USDC", "10", "--url", server.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_env(tmp_path),
        )
    finally:
        assert server.stop() == 0
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for status in ("pending", "routing", "building", "submitted", "confirmed"):
        assert any(status in line for line in lines), f"{status} missing from:\n{result.stdout}"
    assert "filled on" in result.stdout
    assert "txHash" in result.stdout


def test_a_rejected_submit_exits_with_code_two_and_says_why(tmp_path: Path) -> None:
    server = Server(tmp_path, SIM_TIME_SCALE="0")
    try:
        result = subprocess.run(  # noqa: S603
            [str(BIN), "submit", "SOL", "SOL", "1", "--url", server.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_env(tmp_path),
        )
    finally:
        server.stop()
    assert result.returncode == 2
    assert "same_token" in result.stderr


async def _submit_many(url: str, count: int) -> list[str]:
    async with aiohttp.ClientSession() as session:

        async def one() -> str:
            body = {"inputToken": "SOL", "outputToken": "USDC", "amount": "1.5"}
            async with session.post(f"{url}/api/orders/execute", json=body) as response:
                assert response.status == 201
                order_id: str = (await response.json())["orderId"]
                return order_id

        return list(await asyncio.gather(*(one() for _ in range(count))))


def test_sigterm_drains_in_flight_orders_exits_zero_and_a_restart_finishes_the_rest(
    tmp_path: Path,
) -> None:
    # Realistic latencies so that orders are mid-flight when the signal arrives;
    # a short drain so that some are returned unfinished rather than all completing.
    server = Server(tmp_path, SIM_TIME_SCALE="1", DRAIN_TIMEOUT_S="0.5")
    ids = asyncio.run(_submit_many(server.url, 20))
    time.sleep(0.3)
    assert server.stop(signal.SIGTERM) == 0
    db = tmp_path / "engine.db"
    after_stop = _statuses(db)
    assert set(ids) <= set(after_stop)  # every accepted order was persisted
    # At realistic speed an order takes 1-3 s, so the drain left some unfinished.
    assert any(after_stop[i] not in ("confirmed", "failed") for i in ids), after_stop

    # A new process finds the unfinished ones and completes them, exactly once each.
    restarted = Server(tmp_path, SIM_TIME_SCALE="0")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(s in ("confirmed", "failed") for s in _statuses(db).values()):
                break
            time.sleep(0.2)
    finally:
        assert restarted.stop(signal.SIGINT) == 0
    final = _statuses(db)
    assert all(final[i] == "confirmed" for i in ids), final
    terminal = _terminal_events(db)
    assert all(terminal.get(i) == 1 for i in ids), terminal


def test_a_limit_order_placed_from_the_cli_waits_and_the_cli_cancels_it(tmp_path: Path) -> None:
    server = Server(tmp_path, SIM_TIME_SCALE="0")
    try:
        placing = subprocess.Popen(  # noqa: S603
            [str(BIN), "submit", "SOL", "USDC", "1", "--limit", "1000000", "--expires-in",
             "600", "--url", server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(tmp_path),
        )  # fmt: skip
        assert placing.stdout is not None
        seen: list[str] = []
        while not any(" open " in line for line in seen):
            line = placing.stdout.readline()
            assert line, f"the CLI ended before the order was open: {seen}"
            seen.append(line)
        order_id = next(line.split()[1] for line in seen if line.startswith("order "))
        assert any("limit 1000000" in line for line in seen), seen
        cancelled = subprocess.run(  # noqa: S603
            [str(BIN), "cancel", order_id, "--url", server.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_env(tmp_path),
        )
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancelled" in cancelled.stdout
        rest, _ = placing.communicate(timeout=60)
        assert placing.returncode == 1  # the order ended without a fill
        assert "cancelled" in rest
        again = subprocess.run(  # noqa: S603
            [str(BIN), "cancel", order_id, "--url", server.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_env(tmp_path),
        )
        assert again.returncode == 1
        assert "order_not_cancellable" in again.stderr
    finally:
        assert server.stop() == 0
