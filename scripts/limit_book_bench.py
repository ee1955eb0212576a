"""The price watcher at scale: N open limit orders in one process, and a move that
crosses k of them.

    .venv/bin/python scripts/limit_book_bench.py --orders 100000 --crossed 1000

Builds a real embedded engine (SQLite in a temporary directory, the in-process
simulator at time scale 0, no workers), stores N open SOL->USDC limit orders
(k of them just above the market, the rest far above), and then, in this one
process:

1. loads the watcher's book from the database, as a restarted engine does,
   and reports the process's resident memory (VmRSS) before and after;
2. moves the price with one market order (USDC->SOL, run through the real
   executor), and times the watcher's next pass: how many of the k it fired
   and how long the pass took, against the 400 ms of a slot at time scale 1;
3. checks that every fired order's ``triggered`` event names the same slot.

Prints one JSON object. Not a test: the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from order_engine.bootstrap import Engine, build_engine
from order_engine.domain.order import Order, OrderKind, OrderStatus, Trigger
from order_engine.domain.terms import LimitTerms, floor_out
from order_engine.domain.tokens import SOL, USDC
from order_engine.logs import configure_logging
from order_engine.ports.queue import Job
from order_engine.settings import Settings

SLOT_S = 0.4  # a slot at time scale 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def store_orders(engine: Engine, n: int, crossed: int, price: Decimal) -> list[uuid.UUID]:
    """N open limit orders selling 0.01..1 SOL: ``crossed`` of them between 0.01% and
    0.05% above ``price``, the rest between 5% and 50% above it."""
    now = engine.orders.clock.now()
    near: list[uuid.UUID] = []
    batch: list[Any] = []
    for i in range(n):
        amount = 10**7 * (1 + i % 100)  # 0.01 .. 1 SOL
        if i < crossed:
            limit = price * (Decimal("1.0001") + Decimal("0.0004") * i / max(crossed, 1))
        else:
            limit = price * (Decimal("1.05") + Decimal("0.45") * (i % 1000) / 1000)
        limit = limit.quantize(Decimal("0.000001"))
        order, pending = Order.accept(
            order_id=uuid.uuid4(),
            input_mint=SOL.mint,
            output_mint=USDC.mint,
            amount_in=amount,
            slippage_bps=50,
            at=now,
            kind=OrderKind.LIMIT,
            terms=LimitTerms(limit, floor_out(amount, SOL.decimals, USDC.decimals, limit)),
            details={"orderType": "limit"},
        )
        opened = order.apply(Trigger.WAIT, now, {"waitingFor": "price"})
        batch.append(engine.repo.create(order, pending, opened))
        if i < crossed:
            near.append(order.id)
        if len(batch) == 2_000:
            await asyncio.gather(*batch)
            batch.clear()
    await asyncio.gather(*batch)
    return near


async def main(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'book.db'}",
            wallet_path=Path(tmp) / "wallet.json",
            sim_time_scale=0.0,
            sim_seed=7,
            sim_transient_failure_rate=0.0,
            max_price_impact_bps=0,
            log_level="WARNING",
        )
        engine = await build_engine(settings)
        await engine.start(workers=False)
        try:
            return await measure(engine, args)
        finally:
            await engine.stop()


async def measure(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    plan = (await engine.router.decide(SOL.mint, USDC.mint, 10**7, 50)).plan
    price = Decimal(plan.expected_out) / 10**4  # USDC per SOL, for 0.01 SOL
    started = time.perf_counter()
    near = await store_orders(engine, args.orders, args.crossed, price)
    stored_s = time.perf_counter() - started

    before = rss_mb()
    started = time.perf_counter()
    loaded = await engine.watcher.load()
    load_s = time.perf_counter() - started
    after = rss_mb()
    idle_started = time.perf_counter()
    idle_fired = await engine.watcher.check(0)
    idle_s = time.perf_counter() - idle_started

    # Move the price: buy SOL with USDC through the real pipeline until the probe
    # quote (0.01 SOL) pays 0.06% more than before; each push is one market order.
    if engine.executor is None:
        raise SystemExit("expected an engine with an executor (role all)")
    pushes = 0
    target = price * Decimal("1.0006")
    while True:
        pushes += 1
        request = engine.orders.validate("USDC", "SOL", str(args.push_usdc), 5000)
        pushed = await engine.orders.submit(request)
        await engine.executor(Job(pushed.id, 1, 1))
        quote = (await engine.router.decide(SOL.mint, USDC.mint, 10**7, 50)).plan
        if Decimal(quote.expected_out) / 10**4 >= target or pushes >= 50:
            break
    slot = engine.simulator.cluster.slot if engine.simulator else 0
    started = time.perf_counter()
    fired = await engine.watcher.check(slot)
    pass_s = time.perf_counter() - started

    statuses = {OrderStatus.TRIGGERED: 0}
    slots = set()
    for order_id in near:
        events = await engine.repo.events(order_id)
        fired_events = [e for e in events if e.status is OrderStatus.TRIGGERED]
        if fired_events:
            statuses[OrderStatus.TRIGGERED] += 1
            slots.add(fired_events[0].details["slot"])
    return {
        "orders": args.orders,
        "crossed": args.crossed,
        "loaded": loaded,
        "store_s": round(stored_s, 2),
        "load_s": round(load_s, 2),
        "rss_before_load_mb": round(before, 1),
        "rss_after_load_mb": round(after, 1),
        "book_mb": round(after - before, 1),
        "idle_pass_fired": idle_fired,
        "idle_pass_ms": round(idle_s * 1000, 2),
        "pushes": pushes,
        "fired": fired,
        "near_orders_triggered": statuses[OrderStatus.TRIGGERED],
        "trigger_slots": sorted(slots),
        "pass_ms": round(pass_s * 1000, 1),
        "within_one_slot_at_scale_1": pass_s < SLOT_S,
        "pid": os.getpid(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--crossed", type=int, default=1_000)
    parser.add_argument("--push-usdc", type=int, default=20_000)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
