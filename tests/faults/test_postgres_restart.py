"""Fault 4: PostgreSQL restarts mid-load.

The test creates its own throwaway cluster (initdb in a temp dir, its own
port, trust auth; run as the ``postgres`` OS user) and stops it with ``pg_ctl
stop -m immediate`` (a crash, as far as clients can tell), then starts it
again. Clients keep submitting throughout. While it is down, ``/readyz`` says
not ready and ``POST /api/orders/execute`` answers 503 with ``Retry-After``
(problem+json, ``service_unavailable``), never 500; once it is back, every
accepted order completes, and the worker and API processes lived through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import websockets

from tests.faults.clients import ORDER, funded_wallet, ws_url
from tests.faults.conftest import Deployment, require_binaries
from tests.faults.invariants import assert_invariants, plain_url, wait_all_terminal
from tests.faults.procs import BIN, PgCluster, clean_environment, eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
OUTAGE_S = 4.0


@dataclass
class Answer:
    at: float  # monotonic
    status: int
    retry_after: str | None
    content_type: str
    code: str | None
    order_id: str | None


@pytest.fixture
def own_postgres(pg_database_url: str, tmp_path: Path) -> Iterator[tuple[PgCluster, str]]:
    """A private cluster with a migrated ``engine`` database (the shared one is
    never stopped; ``pg_database_url`` only decides skip or fail)."""
    require_binaries("initdb", "pg_ctl")
    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()

        async def create() -> None:
            conn = await asyncpg.connect(cluster.admin_url, timeout=10)
            try:
                await conn.execute("CREATE DATABASE engine")
            finally:
                await conn.close()

        asyncio.run(create())
        url = cluster.url("engine")
        result = subprocess.run(  # noqa: S603 - our own executable
            [str(BIN), "migrate"],
            env=clean_environment(DATABASE_URL=url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        yield cluster, url
    finally:
        cluster.destroy()


async def test_a_postgres_restart_answers_503_with_retry_after_and_every_accepted_order_completes(
    own_postgres: tuple[PgCluster, str], deployment: Deployment
) -> None:
    cluster, database_url = own_postgres
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack = deployment.stack(
        DATABASE_URL=database_url, RECONCILE_INTERVAL_S="1", RECONCILE_STALE_S="2"
    )
    (api_proc, api), worker = await asyncio.gather(stack.api(), stack.worker(concurrency=10))

    answers: list[Answer] = []
    readiness: list[tuple[float, int]] = []
    stop_load = asyncio.Event()

    async def load(http: aiohttp.ClientSession) -> None:
        while not stop_load.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                async with http.post(f"{api}/api/orders/execute", json=ORDER) as response:
                    body = await response.json(content_type=None)
                    answers.append(
                        Answer(
                            time.monotonic(),
                            response.status,
                            response.headers.get("Retry-After"),
                            response.headers.get("Content-Type", ""),
                            body.get("code"),
                            body.get("orderId"),
                        )
                    )
            await asyncio.sleep(0.05)

    async def probe(http: aiohttp.ClientSession) -> None:
        while not stop_load.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                async with http.get(f"{api}/readyz") as response:
                    readiness.append((time.monotonic(), response.status))
            await asyncio.sleep(0.1)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        clients = [asyncio.create_task(load(http)) for _ in range(2)] + [
            asyncio.create_task(probe(http))
        ]
        try:
            await eventually(lambda: _accepted(answers, 10), timeout=30, what="10 accepted orders")
            await eventually(
                lambda: _some_in_flight(database_url),
                timeout=30,
                what="orders in flight",
                every=0.02,
            )
            cluster.stop("immediate")
            down_at = time.monotonic()
            # A subscriber connecting meanwhile is told to come back later.
            known = next(a.order_id for a in answers if a.order_id)
            socket = await asyncio.wait_for(_follow_briefly(api, known), 10)
            async with http.get(f"{api}/api/orders/{known}") as response:
                read = (response.status, response.headers.get("Retry-After"))
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            cluster.start()
            up_at = time.monotonic()
            await eventually(
                lambda: _accepted_since(answers, up_at),
                timeout=30,
                what="an order accepted after recovery",
            )
            await asyncio.sleep(1.0)
        finally:
            stop_load.set()
            await asyncio.wait_for(asyncio.gather(*clients), 30)

    statuses = {a.status for a in answers}
    assert statuses <= {201, 503}, [
        (a.status, a.code) for a in answers if a.status not in (201, 503)
    ]
    refused = [a for a in answers if a.status == 503]
    assert refused, "no request was refused while PostgreSQL was down"
    for answer in refused:
        assert answer.retry_after is not None
        assert int(answer.retry_after) >= 1
        assert answer.content_type.startswith("application/problem+json")
        assert answer.code == "service_unavailable"
    assert all(down_at - 0.5 <= a.at <= up_at + 10 for a in refused), "503 outside the outage"
    assert read == (503, "1"), read  # reading an order, too
    messages, close_code = socket
    assert [m.get("code") for m in messages] == ["service_unavailable"], messages
    assert close_code == 1013
    not_ready = [at for at, status in readiness if status == 503]
    assert not_ready
    assert all(down_at - 0.5 <= at <= up_at + 10 for at in not_ready)
    assert readiness[-1][1] == 200

    accepted = [a.order_id for a in answers if a.status == 201 and a.order_id]
    await wait_all_terminal(database_url, accepted, timeout=90, context=stack.context)
    recovery = time.monotonic() - up_at
    assert api_proc.running
    assert worker.running
    orders, report = await assert_invariants(
        database_url,
        deployment.chain_url,
        accepted,
        owner=funded.owner,
        usdc_before=funded.usdc_before,
    )
    assert report.confirmed == len(orders), [o.error_message for o in orders.values()]
    first_503 = min(a.at for a in refused) - down_at
    print(
        f"\nPostgreSQL down {up_at - down_at:.1f} s: {len(refused)} POSTs answered 503 "
        f"(Retry-After {refused[0].retry_after}; the first {first_503:.2f} s "
        f"after the stop, none after the restart), {len(not_ready)} /readyz probes 503, then 200; "
        f"a WebSocket subscriber got an error and close {close_code}; "
        f"{len(accepted)} accepted orders, the last terminal {recovery:.1f} s after the restart; "
        f"{report}"
    )


async def _follow_briefly(api: str, order_id: str) -> tuple[list[dict[str, Any]], int | None]:
    messages: list[dict[str, Any]] = []
    async with websockets.connect(ws_url(api, order_id)) as ws:
        while True:
            try:
                messages.append(json.loads(await ws.recv()))
            except websockets.ConnectionClosed:
                return messages, ws.close_code


async def _accepted(answers: list[Answer], count: int) -> bool:
    return sum(1 for a in answers if a.status == 201) >= count


async def _accepted_since(answers: list[Answer], since: float) -> bool:
    return any(a.status == 201 and a.at > since for a in answers)


async def _some_in_flight(database_url: str) -> bool:
    conn = await asyncpg.connect(plain_url(database_url), timeout=5)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE status IN ('routing', 'building', 'submitted')"
        )
    finally:
        await conn.close()
    return bool(count >= 2)
