"""The real executable: ``keys create | list | revoke``, ``api`` refusing to start
without a key, ``serve`` open until a key exists (warning printed), and a worker's
metrics port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent / "order-engine"
pytestmark = pytest.mark.slow
ORDER = {"inputToken": "SOL", "outputToken": "USDC", "amount": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SIM_", "DATABASE_", "REDIS_", "SOLANA_", "AUTH_", "METRICS_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'engine.db'}",
        WALLET_PATH=str(tmp_path / "wallet.json"),
        SIM_TIME_SCALE="0",
        SIM_TRANSIENT_FAILURE_RATE="0",
        LOG_FORMAT="json",
        **extra,
    )
    return env


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own executable, fixed arguments
        [str(BIN), *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Process:
    """A long-running command, its output in a file; ``wait_listening`` or ``wait_exit``."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.log_path = tmp_path / f"{args[0]}-{time.monotonic_ns()}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
            [str(BIN), *args],
            cwd=tmp_path,
            env=_env(tmp_path, **env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited during start-up:\n{self.output()}"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"not listening on {port} within 30 s:\n{self.output()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            self.log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(10)
        process.log.close()


def test_a_key_is_printed_once_listed_without_its_secret_and_revoked(tmp_path: Path) -> None:
    created = run(tmp_path, "keys", "create", "--name", "trading bot")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("oek_")
    assert len(key.splitlines()) == 1
    key_id = key.split("_")[1]
    assert "shown only this once" in created.stderr

    listed = run(tmp_path, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout
    assert "trading bot" in listed.stdout
    assert "active" in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout + listed.stderr

    assert run(tmp_path, "keys", "revoke", key).returncode == 0  # the key itself works too
    assert "revoked" in run(tmp_path, "keys", "list").stdout
    again = run(tmp_path, "keys", "revoke", key_id)
    assert again.returncode == 1
    assert "no active key" in again.stderr
    assert run(tmp_path, "keys", "create", "--name", " ").returncode == 2


def test_api_refuses_to_start_without_an_active_key(tmp_path: Path) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    refused = run(tmp_path, "api", "--port", str(_free_port()))
    assert refused.returncode == 2
    assert "no active API key" in refused.stderr
    assert "keys create" in refused.stderr


def test_api_with_a_key_requires_it_on_every_request(
    tmp_path: Path, processes: list[Process]
) -> None:
    key = run(tmp_path, "keys", "create", "--name", "ops").stdout.strip()
    port = _free_port()
    api = Process(tmp_path, "api", "--port", str(port))
    processes.append(api)
    api.wait_listening(port)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/api/orders/execute", json=ORDER).status_code == 401
        accepted = client.post(
            "/api/orders/execute", json=ORDER, headers={"Authorization": f"Bearer {key}"}
        )
        assert accepted.status_code == 201, accepted.text
        assert client.get("/metrics").status_code == 401  # metrics need the key too
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert metrics.status_code == 200
    assert api.stop() == 0


def test_api_with_insecure_no_auth_serves_anyone_and_says_so(
    tmp_path: Path, processes: list[Process]
) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    port = _free_port()
    api = Process(tmp_path, "api", "--port", str(port), "--insecure-no-auth")
    processes.append(api)
    api.wait_listening(port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.post("/api/orders/execute", json=ORDER).status_code == 201
    assert api.stop() == 0
    assert "--insecure-no-auth" in api.output()


def test_serve_warns_while_open_and_enforces_a_key_created_while_it_runs(
    tmp_path: Path, processes: list[Process]
) -> None:
    port = _free_port()
    serve = Process(tmp_path, "serve", "--port", str(port))
    processes.append(serve)
    serve.wait_listening(port)
    assert "WARNING: no API key exists" in serve.output()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.post("/api/orders/execute", json=ORDER).status_code == 201
        key = run(tmp_path, "keys", "create", "--name", "late").stdout.strip()
        deadline = time.monotonic() + 10  # AUTH_CACHE_S is 2 s by default
        while client.post("/api/orders/execute", json=ORDER).status_code != 401:
            assert time.monotonic() < deadline, "a new key did not take effect within 10 s"
            time.sleep(0.2)
        accepted = client.post("/api/orders/execute", json=ORDER, headers={"X-API-Key": key})
        assert accepted.status_code == 201, accepted.text
    assert serve.stop() == 0


def test_a_worker_serves_metrics_on_its_metrics_port(
    tmp_path: Path, processes: list[Process]
) -> None:
    assert run(tmp_path, "migrate").returncode == 0
    port = _free_port()
    worker = Process(tmp_path, "worker", "--metrics-port", str(port))
    processes.append(worker)
    worker.wait_listening(port)
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert "order_engine_queue_depth" in response.text
    assert "order_engine_stage_seconds" in response.text
    assert worker.stop() == 0
