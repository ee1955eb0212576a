"""Fixtures for the fault tests: a migrated database per test, a queue name and
bus prefix per test, a shared chain process, and a ``Deployment`` whose
processes are all stopped (by PID) when the test ends, however it ends.

They need PostgreSQL and Redis (``pg_database_url`` and ``redis_url`` from
``tests/conftest.py``): locally they skip with one line when those are down;
under ``CI=true`` they fail.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.conftest import CI, _pg_admin
from tests.faults.procs import BIN, RedisServer, Stack, clean_environment, missing_binaries

# Workers poll a signature's status every 0.4 s x this; the chain process's own
# SIM_TIME_SCALE sets the simulated latencies (0.1: 40 ms slots, orders take a
# few hundred ms, long enough to be caught in flight).
WORKER_TIME_SCALE = "0.05"
SHARED_CHAIN_SCALE = 0.1


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


@pytest.fixture(scope="session")
def fault_template_db(
    pg_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database migrated once by ``order-engine migrate``; each test gets a copy."""
    name = f"oe_faults_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        result = subprocess.run(  # noqa: S603 - our own executable
            [str(BIN), "migrate"],
            env=clean_environment(DATABASE_URL=f"{_base(pg_database_url)}/{name}"),
            cwd=tmp_path_factory.mktemp("migrate"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"order-engine migrate failed: {result.stderr}"
        yield name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fault_db(fault_template_db: str, pg_database_url: str) -> Iterator[str]:
    """A migrated database of this test's own (async URL), dropped afterwards."""
    name = f"oe_faults_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{fault_template_db}"'))
    try:
        yield f"{_base(pg_database_url)}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def isolated(redis_url: str) -> Iterator[dict[str, str]]:
    """A queue name and bus prefix no other test uses; their keys are removed after."""
    tag = f"oe-fault-{uuid.uuid4().hex[:10]}"
    yield {"QUEUE_NAME": tag, "BUS_PREFIX": tag}
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"*{tag}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def require_binaries(*names: str) -> None:
    """Skip (locally) or fail (CI) when a server binary a test runs itself is missing,
    e.g. with PostgreSQL and Redis in containers (compose.yaml) instead of installed."""
    missing = missing_binaries(*names)
    if not missing:
        return
    message = (
        f"needs {', '.join(missing)} on this machine to start a private server it may "
        "restart (install the PostgreSQL/Redis server packages)"
    )
    if CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
async def own_redis(tmp_path: Path, redis_url: str) -> AsyncIterator[RedisServer]:
    """A private redis-server the test may kill and restart (never the shared one)."""
    require_binaries("redis-server")
    server = RedisServer(tmp_path)
    try:
        await server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_chain(
    pg_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One ``order-engine chain`` for the scenarios that do not fault the chain
    itself; each test has its own wallet on it."""
    stack = Stack(
        tmp_path_factory.mktemp("shared-chain"),
        clean_environment(LOG_FORMAT="json", SIM_TRANSIENT_FAILURE_RATE="0"),
    )
    try:
        _, url = asyncio.run(
            stack.chain("--send-timeout-rate", "0", seed=4242, time_scale=SHARED_CHAIN_SCALE)
        )
        yield url
    finally:
        stack.stop_all()


@dataclass
class Deployment:
    """One test's slice of the services, and every process it starts."""

    workdir: Path
    database_url: str
    redis_url: str
    chain_url: str
    names: dict[str, str]
    stacks: list[Stack] = field(default_factory=list)

    def env(self, **settings: str) -> dict[str, str]:
        """What every api and worker process of the test shares; ``settings`` override."""
        values = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SOLANA_RPC_URL": self.chain_url,
            "WALLET_PATH": str(self.workdir / "wallet.json"),
            "SIM_TIME_SCALE": WORKER_TIME_SCALE,
            "SIM_TRANSIENT_FAILURE_RATE": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "BACKOFF_BASE_MS": "100",
            "BACKOFF_MAX_MS": "1000",
            **self.names,
        }
        values.update(settings)
        return clean_environment(**values)

    def stack(self, **settings: str) -> Stack:
        stack = Stack(self.workdir, self.env(**settings))
        self.stacks.append(stack)
        return stack

    def stop_all(self) -> dict[str, int]:
        """Stop everything; the exit codes of those the test did not kill itself."""
        codes: dict[str, int] = {}
        for stack in self.stacks:
            codes.update(stack.stop_all())
        killed = {p.name for stack in self.stacks for p in stack.procs if p.killed}
        return {name: code for name, code in codes.items() if name not in killed}


@pytest.fixture
def deployment(
    tmp_path: Path, fault_db: str, redis_url: str, isolated: dict[str, str], shared_chain: str
) -> Iterator[Deployment]:
    made = Deployment(tmp_path, fault_db, redis_url, shared_chain, isolated)
    try:
        yield made
    finally:
        codes = made.stop_all()
    # Every process lived through the test's faults and stopped cleanly on SIGTERM.
    assert all(code == 0 for code in codes.values()), codes
