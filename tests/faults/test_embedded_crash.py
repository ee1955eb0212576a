"""An embedded engine (``order-engine serve``: API, workers, in-process queue, SQLite)
killed with SIGKILL mid-order, and restarted on the same database file.

The chain is the shared ``order-engine chain`` process, so what was broadcast
before the kill survives it, as a real cluster's mempool would.

1. Killed while orders are ``building`` or ``submitted``: after the restart
   every order ends once, its events gapless, and none executed twice or was
   re-signed while its transaction could still land.
2. The last commit before a broadcast: the chain is reached through a proxy
   that SIGKILLs the engine the moment the first ``sendTransaction`` arrives,
   then forwards it (the transaction lands, the engine never hears so). At
   that moment the order must be stored as ``submitted`` with exactly the
   bytes being broadcast, and that commit must be on disk: the SQLite WAL was
   fsync'd after the order's ``submitted`` event was made and before the
   send (``strace`` on the engine). With ``synchronous=NORMAL`` a WAL commit
   is not synced and an OS crash could lose it; the restarted engine would
   then re-sign an order whose first transaction executed. After the restart
   the order settles by the signature it had stored: confirmed, once, never
   re-signed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from solders.transaction import VersionedTransaction

from tests.faults.clients import funded_wallet, submit_batch
from tests.faults.conftest import Deployment, require_binaries
from tests.faults.invariants import (
    TERMINAL,
    assert_invariants,
    assert_re_signed_only_after_expiry,
    sqlite_rows,
    statuses_by_order,
    wait_all_terminal,
)
from tests.faults.procs import Proc, Stack, eventually, free_port

pytestmark = [pytest.mark.slow]


def embedded(deployment: Deployment, chain_url: str | None = None) -> tuple[Stack, str]:
    """A stack whose engine is ``serve`` on a SQLite file in the test's directory."""
    path = deployment.workdir / "engine.db"
    url = f"sqlite+aiosqlite:///{path}"
    stack = deployment.stack(
        DATABASE_URL=url,
        REDIS_URL="",
        SOLANA_RPC_URL=chain_url or deployment.chain_url,
        LEASE_S="3",  # the dead process's leases lapse soon after the restart
    )
    return stack, url


async def in_states(path: str, states: set[str]) -> list[str] | None:
    marks = ", ".join("?" for _ in states)
    query = f"SELECT id FROM orders WHERE status IN ({marks})"  # noqa: S608 - placeholders
    rows = sqlite_rows(path, query, *states)
    return [row["id"] for row in rows] or None


async def test_an_embedded_engine_killed_mid_order_finishes_each_order_once_after_a_restart(
    deployment: Deployment,
) -> None:
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    stack, db = embedded(deployment)
    port = free_port()
    first, api = await stack.serve(port)
    ids = await submit_batch(api, 20)
    path = str(deployment.workdir / "engine.db")
    caught = await eventually(
        lambda: in_states(path, {"building", "submitted"}),
        timeout=30,
        what="an order building or submitted",
        every=0.005,
        context=stack.context,
    )
    first.kill()
    at_kill = await statuses_by_order(db)
    in_flight = [i for i, status in at_kill.items() if status not in TERMINAL]
    assert set(caught) <= set(in_flight) | {i for i, s in at_kill.items() if s in TERMINAL}
    assert in_flight, at_kill

    await stack.serve(port)  # the same file, the same wallet
    await wait_all_terminal(db, ids, timeout=90, context=stack.context)
    orders, report = await assert_invariants(
        db, deployment.chain_url, ids, owner=funded.owner, usdc_before=funded.usdc_before
    )
    assert all(orders[i].status == "confirmed" for i in in_flight), [
        (i, orders[i].error_code, orders[i].error_message) for i in in_flight
    ]
    await assert_re_signed_only_after_expiry(deployment.chain_url, orders)
    print(f"\nembedded kill -9 with {len(in_flight)} orders unfinished "
          f"({sorted(at_kill[i] for i in in_flight)}); {report}")  # fmt: skip


@dataclass
class KillAtFirstSend:
    """A JSON-RPC proxy to the chain that SIGKILLs the engine when the first
    ``sendTransaction`` arrives, looks at the database then, and forwards it."""

    chain_url: str
    db_path: str
    engine: Proc | None = None
    sent_at: float | None = None  # wall clock, as strace stamps its lines
    signature: str | None = None
    raw: bytes | None = None
    stored: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        if request.method != "POST":  # the pool listing (GET /pools)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{self.chain_url}{request.path_qs}") as answer,
            ):
                return web.Response(
                    status=answer.status, body=await answer.read(), content_type="application/json"
                )
        body = await request.json()
        if (
            self.sent_at is None
            and isinstance(body, dict)
            and body.get("method") == "sendTransaction"
        ):
            self.sent_at = time.time()
            assert self.engine is not None
            self.engine.kill()  # before the send: it is the last thing the engine did
            self.raw = base64.b64decode(body["params"][0])
            self.signature = str(VersionedTransaction.from_bytes(self.raw).signatures[0])
            self.stored = sqlite_rows(
                self.db_path,
                "SELECT id, status, tx_signature, tx_raw FROM orders WHERE status != 'pending'",
            )
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.chain_url, json=body) as answer,
        ):
            return web.Response(body=await answer.read(), content_type="application/json")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


@dataclass(frozen=True)
class Sync:
    at: float
    call: str
    path: str


def wal_syncs(trace: str) -> list[Sync]:
    """Every fsync/fdatasync of a ``-wal`` file in ``strace -f -y -ttt`` output."""
    found = []
    pattern = re.compile(r"^\d+\s+(\d+\.\d+)\s+(fsync|fdatasync)\(\d+<([^>]*-wal)>")
    for line in trace.splitlines():
        match = pattern.match(line)
        if match:
            found.append(Sync(float(match[1]), match[2], match[3]))
    return found


@contextlib.contextmanager
def tracing_syncs(proc: Proc, out: Path) -> Any:
    """``strace`` the engine's fsync calls (every thread); stopped by its own PID."""
    errors = out.with_suffix(".err")
    with errors.open("wb") as err:
        tracer = subprocess.Popen(  # noqa: S603 - a fixed system binary
            [shutil.which("strace") or "strace", "-f", "-y", "-ttt",
             "-e", "trace=fsync,fdatasync", "-o", str(out), "-p", str(proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while "attached" not in errors.read_text(errors="replace"):
            assert tracer.poll() is None, errors.read_text(errors="replace")
            assert time.monotonic() < deadline, "strace did not attach"
            time.sleep(0.05)
        yield
    finally:
        if tracer.poll() is None:
            tracer.terminate()
        tracer.wait(20)


async def test_the_commit_before_a_broadcast_is_on_disk_and_the_restart_settles_by_it(
    deployment: Deployment,
) -> None:
    require_binaries("strace")
    funded = await funded_wallet(deployment.chain_url, deployment.workdir / "wallet.json")
    path = str(deployment.workdir / "engine.db")
    proxy = KillAtFirstSend(deployment.chain_url, path)
    async with proxy.serving() as proxied:
        stack, db = embedded(deployment, chain_url=proxied)
        port = free_port()
        first, api = await stack.serve(port)
        proxy.engine = first
        trace = deployment.workdir / "strace.txt"
        with tracing_syncs(first, trace):
            ids = await submit_batch(api, 1)
            await eventually(
                lambda: asyncio.sleep(0, result=proxy.sent_at),
                timeout=30,
                what="the first sendTransaction",
                context=stack.context,
            )
        assert not first.running

    # At the moment of the broadcast the order was stored with the bytes being sent.
    (order_id,) = ids
    stored = {row["id"]: row for row in proxy.stored}
    assert stored[order_id]["status"] == "submitted", stored
    assert stored[order_id]["tx_signature"] == proxy.signature
    assert bytes(stored[order_id]["tx_raw"]) == proxy.raw
    # ... and on disk: the WAL was synced after the submitted event was made.
    (submitted_at,) = [
        datetime.fromisoformat(row["at"]).replace(tzinfo=UTC).timestamp()
        for row in sqlite_rows(path, "SELECT at FROM order_events WHERE status = 'submitted'")
    ]
    assert proxy.sent_at is not None
    syncs = wal_syncs(trace.read_text())
    between = [s for s in syncs if submitted_at - 0.001 <= s.at <= proxy.sent_at]
    assert between, (
        f"no fsync of the WAL between the submitted event ({submitted_at:.6f}) and the "
        f"broadcast ({proxy.sent_at:.6f}); syncs seen: {syncs[-5:]}"
    )

    # Restarted on the same file, straight to the chain: settled by the stored signature.
    stack.env["SOLANA_RPC_URL"] = deployment.chain_url
    await stack.serve(port)
    await wait_all_terminal(db, ids, timeout=60, context=stack.context)
    orders, _ = await assert_invariants(
        db, deployment.chain_url, ids, owner=funded.owner, usdc_before=funded.usdc_before
    )
    assert orders[order_id].status == "confirmed", orders[order_id].error_message
    assert orders[order_id].signatures == [proxy.signature]  # never re-signed
