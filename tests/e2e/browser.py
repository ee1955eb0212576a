"""What the browser tests share: a real ``order-engine serve`` process that can be
restarted on the same port and database, and headless Chromium (Debian's
``chromium`` package) driven by Playwright.

Chromium is never downloaded: ``.ci/run`` installs the distribution package.
Without it these tests skip locally with the reason, and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent / "order-engine"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CI = os.environ.get("CI", "").lower() == "true"


def require_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    message = (
        f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) "
        "or set CHROMIUM_PATH"
    )
    if CI:
        pytest.fail(f"CI=true requires the browser tests to run: {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    """``order-engine serve`` on a fixed port and SQLite file, restartable."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "DATABASE_"))}
        self.env.update(
            DATABASE_URL=f"sqlite:///{workdir / 'engine.db'}",
            WALLET_PATH=str(workdir / "wallet.json"),
            SIM_SEED="11",
            SIM_TRANSIENT_FAILURE_RATE="0",
            LOG_FORMAT="json",
            AUTH_CACHE_S="0",
            **env,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"serve-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
            [str(BIN), "serve", "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"serve did not listen within 30 s:\n{self.log()}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def log(self) -> str:
        return (self.workdir / f"serve-{self.starts}.log").read_text(errors="replace")

    def cli(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [str(BIN), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def post_order(self, amount: str = "2", key: str | None = None) -> str:
        body = json.dumps({"inputToken": "SOL", "outputToken": "USDC", "amount": amount})
        headers = {"content-type": "application/json"}
        if key:
            headers["x-api-key"] = key
        request = urllib.request.Request(  # noqa: S310 - loopback URL built above
            f"{self.url}/api/orders/execute", data=body.encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            payload: dict[str, Any] = json.load(response)
        order_id: str = payload["orderId"]
        return order_id

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:  # noqa: S310
            return json.load(response)
