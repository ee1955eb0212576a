"""Limit orders end to end over real loopback HTTP: placed, watched, fired by the
price watcher when market orders move the price, executed with the fill floored
at the limit; expired, cancelled, resumed after a restart, and raced."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio

from order_engine.app.order_terms import OrderOptions
from order_engine.app.price_watcher import PriceWatcher
from order_engine.app.waiting import WaitingOrders
from order_engine.bootstrap import Engine
from order_engine.domain.errors import OrderNotCancellable
from order_engine.domain.order import OrderKind, OrderStatus
from tests.e2e.wire import (
    SOL_MINT,
    USDC_MINT,
    eventually,
    order,
    read_to_close,
    receive_json,
    submit,
    wait_for_status,
    ws_url,
)
from tests.support.harness import engine_settings, running_engine, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")
LIMIT = OrderKind.LIMIT


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Engine, str, aiohttp.ClientSession]]:
    settings = engine_settings(tmp_path_factory.mktemp("limit"), expiry_sweep_s=0.05)
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
    ):
        yield engine, url, session


async def sol_price(engine: Engine, amount_sol: int = 1) -> Decimal:
    """USDC per SOL that selling ``amount_sol`` SOL would get now (after fees and impact)."""
    plan = (await engine.router.decide(SOL_MINT, USDC_MINT, amount_sol * 10**9, 50)).plan
    return Decimal(plan.expected_out) / 10**6 / amount_sol


def price_text(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_DOWN))


async def events_of(engine: Engine, order_id: str) -> list[dict[str, object]]:
    return [e.to_message() for e in await engine.repo.events(uuid.UUID(order_id))]


async def test_a_marketable_limit_order_fires_at_once_and_never_fills_below_its_price(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    limit = price_text(await sol_price(engine) * Decimal("0.99"))
    order_id = await submit(session, url, order("1", type="limit", limitPrice=limit))
    await wait_for_status(engine, order_id, "confirmed")
    events = await events_of(engine, order_id)
    statuses = [e["status"] for e in events]
    assert statuses[:3] == ["pending", "open", "triggered"], statuses
    assert statuses[-1] == "confirmed"
    opened, fired = events[1], events[2]
    assert opened["limitPrice"] == limit.rstrip("0").rstrip(".")
    assert "price" in str(opened["waitingFor"])
    assert Decimal(str(fired["priceSeen"])) >= Decimal(limit)
    assert isinstance(fired["slot"], int)
    assert fired["pools"]
    floor = int(str(opened["minAmountOutRaw"]))
    stored = await engine.repo.get(uuid.UUID(order_id))
    assert stored is not None
    assert stored.fill is not None
    building = next(e for e in events if e["status"] == "building")
    assert int(str(building["minAmountOut"]).replace(".", "")) > 0
    assert stored.route is not None
    assert int(stored.route["minAmountOutRaw"]) >= floor


async def test_a_limit_above_the_market_waits_and_fires_when_market_orders_push_the_price_up(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    limit = price_text(await sol_price(engine) * Decimal("1.002"))
    order_id = await submit(session, url, order("1", type="limit", limitPrice=limit))
    async with session.get(f"{url}/api/orders/{order_id}") as response:
        view = await response.json()
    assert (view["status"], view["type"], view["limitPrice"]) == ("open", "limit", limit)
    assert len(engine.watcher) >= 1
    # Buying SOL with USDC raises SOL's price, until the limit is reached.
    pushes = 0
    for pushes in range(40):  # noqa: B007 - counted for the assertion below
        current = await engine.repo.get(uuid.UUID(order_id))
        assert current is not None
        if current.status is not OrderStatus.OPEN:
            break
        buy = await submit(
            session, url, order("20000", inputToken="USDC", outputToken="SOL", slippageBps=500)
        )
        await wait_for_status(engine, buy, "confirmed", "failed")
    await wait_for_status(engine, order_id, "confirmed", "failed")
    assert pushes >= 1  # it did wait for the market to move
    events = await events_of(engine, order_id)
    fired = next(e for e in events if e["status"] == "triggered")
    assert Decimal(str(fired["priceSeen"])) >= Decimal(limit), fired
    final = events[-1]
    if final["status"] == "failed":
        # The market moved back between the trigger and the landing: never a worse fill.
        assert final["code"] == "slippage_exceeded", final
    else:
        stored = await engine.repo.get(uuid.UUID(order_id))
        assert stored is not None
        assert stored.fill is not None
        assert int(stored.fill["amountOutRaw"]) >= int(str(events[1]["minAmountOutRaw"]))


async def test_a_limit_order_that_never_reaches_its_price_expires_exactly_once(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    body = order("1", type="limit", limitPrice="1000000", expiresInS=1)
    order_id = await submit(session, url, body)
    await wait_for_status(engine, order_id, "expired")
    events = await events_of(engine, order_id)
    assert [e["status"] for e in events] == ["pending", "open", "expired"]
    assert await engine.waiting.expire(uuid.UUID(order_id)) is None  # no second expiry
    async with session.delete(f"{url}/api/orders/{order_id}") as response:
        assert response.status == 409
        assert (await response.json())["code"] == "order_not_cancellable"


async def test_a_cancelled_limit_order_leaves_the_watchers_book_and_never_fires(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("1", type="limit", limitPrice="1000000"))
    before = len(engine.watcher)
    async with session.delete(f"{url}/api/orders/{order_id}") as response:
        view = orjson.loads(await response.read())
        assert response.status == 200, view
    assert view["status"] == "cancelled"
    assert len(engine.watcher) == before - 1
    assert await engine.waiting.trigger(uuid.UUID(order_id), {"trigger": "test"}) is None
    assert [e["status"] for e in await events_of(engine, order_id)] == [
        "pending",
        "open",
        "cancelled",
    ]


async def test_a_cancel_racing_a_trigger_has_exactly_one_winner(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    outcomes = set()
    for _ in range(10):
        order_id = uuid.UUID(
            await submit(session, url, order("0.01", type="limit", limitPrice="1000000"))
        )
        fire = engine.waiting.trigger(order_id, {"trigger": "test"})
        cancel = engine.orders.cancel(order_id)
        fired, cancelled = await asyncio.gather(fire, cancel, return_exceptions=True)
        won_fire = fired is not None and not isinstance(fired, BaseException)
        won_cancel = not isinstance(cancelled, BaseException)
        assert won_fire != won_cancel, (fired, cancelled)
        if not won_cancel:
            assert isinstance(cancelled, OrderNotCancellable), cancelled
        statuses = [e.status for e in await engine.repo.events(order_id)]
        assert statuses[:2] == [OrderStatus.PENDING, OrderStatus.OPEN]
        assert (OrderStatus.TRIGGERED in statuses) != (OrderStatus.CANCELLED in statuses)
        outcomes.add("fired" if won_fire else "cancelled")
        if won_fire:
            # Fired at a price the market never offered: routed, the floor is not met,
            # nothing is signed, and the order waits again.
            await eventually(
                functools.partial(_rearmed, engine, order_id), "the fired order to wait again"
            )


async def _rearmed(engine: Engine, order_id: uuid.UUID) -> bool:
    statuses = [e.status for e in await engine.repo.events(order_id)]
    return statuses[-1] is OrderStatus.OPEN and OrderStatus.TRIGGERED in statuses


async def test_several_watchers_fire_an_order_exactly_once(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    limit = price_text(await sol_price(engine) * Decimal("0.9"))
    # Placed while the engine's own watcher cannot see it yet: loaded by three others.
    engine.orders.watchers.remove(engine.watcher.watch)
    try:
        order_id = await submit(session, url, order("0.5", type="limit", limitPrice=limit))
    finally:
        engine.orders.watchers.append(engine.watcher.watch)
    watchers = []
    for n in range(3):
        core = WaitingOrders(
            repo=engine.repo,
            store=engine.waiting.store,
            bus=engine.bus,
            queue=engine.queue,
            clock=engine.orders.clock,
            worker_id=f"watcher-{n}",
        )
        watcher = PriceWatcher(
            core=core,
            store=core.store,
            planner=engine.router.planner,
            chain=engine.chain,
            clock=engine.orders.clock,
            tokens=engine.tokens,
        )
        await watcher.load()
        watchers.append(watcher)
    fired = await asyncio.gather(*(w.check(0) for w in watchers))
    await wait_for_status(engine, order_id, "confirmed", "failed")
    triggered = [e for e in await events_of(engine, order_id) if e["status"] == "triggered"]
    assert len(triggered) == 1, triggered
    assert sum(fired) <= 1  # the engine's own watcher may have won the race


async def test_open_orders_survive_a_restart_and_are_watched_and_expired_by_the_next_process(
    tmp_path: Path, backend_overrides: dict[str, Any]
) -> None:
    settings = engine_settings(tmp_path, expiry_sweep_s=0.05, **backend_overrides)
    async with running_engine(settings, workers=False) as first:
        # No workers, no watcher: the orders wait in the database only.
        waiting = await first.orders.submit(
            first.orders.validate(
                "SOL", "USDC", "1", kind=LIMIT, options=OrderOptions(limit_price="1000000")
            )
        )
        expiring = await first.orders.submit(
            first.orders.validate(
                "SOL",
                "USDC",
                "1",
                kind=LIMIT,
                options=OrderOptions(limit_price="1000000", expires_in_s=1),
            )
        )
        price = await sol_price(first)
        marketable = await first.orders.submit(
            first.orders.validate(
                "SOL",
                "USDC",
                "1",
                kind=LIMIT,
                options=OrderOptions(limit_price=price_text(price * Decimal("0.9"))),
            )
        )
    await asyncio.sleep(1.1)
    async with running_engine(settings) as second:
        await wait_for_status(second, str(marketable.id), "confirmed")
        await wait_for_status(second, str(expiring.id), "expired")
        current = await second.repo.get(waiting.id)
        assert current is not None
        assert current.status is OrderStatus.OPEN

        async def watched() -> bool:
            return any(waiting.id in book.orders for book in second.watcher.books.values())

        await eventually(watched, "the restarted watcher to hold the open order")


async def test_a_limit_order_accepted_by_one_process_is_fired_by_anothers_watcher(
    tmp_path: Path, backend_overrides: dict[str, Any]
) -> None:
    """Embedded (one SQLite file) and distributed (PostgreSQL, Redis): the accepting
    engine runs no workers, so only the other's watcher, reading the database, can
    find the order; it fires it once, and the order fills."""
    settings = engine_settings(tmp_path, watch_discover_s=0.05, **backend_overrides)
    async with (
        running_engine(settings, workers=False) as front,
        running_engine(settings) as back,
    ):
        price = await sol_price(front)
        request = front.orders.validate(
            "SOL",
            "USDC",
            "1",
            kind=LIMIT,
            options=OrderOptions(limit_price=price_text(price * Decimal("0.95"))),
        )
        placed = await front.orders.submit(request)
        await wait_for_status(back, str(placed.id), "confirmed")
        statuses = [e.status for e in await back.repo.events(placed.id)]
        assert statuses.count(OrderStatus.TRIGGERED) == 1
        assert back.watcher.fired == 1


async def test_a_limit_order_submitted_over_a_websocket_streams_open_and_then_its_cancel(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    async with session.ws_connect(ws_url(url)) as ws:
        await ws.send_json(order("1", type="limit", limitPrice="1000000", expiresInS=600))
        order_id = (await receive_json(ws))["orderId"]
        pending, opened = await receive_json(ws), await receive_json(ws)
        assert (pending["status"], opened["status"]) == ("pending", "open")
        assert opened["limitPrice"] == "1000000"
        assert opened["expiresAt"].endswith("Z")
        async with session.delete(f"{url}/api/orders/{order_id}") as response:
            assert response.status == 200
        rest = await read_to_close(ws)
    assert rest.statuses == ["cancelled"]
    assert rest.close_code == 1000
    assert len(await engine.repo.events(uuid.UUID(order_id))) == 3


async def test_two_sweepers_racing_over_the_same_due_orders_expire_each_exactly_once(
    tmp_path: Path, backend_overrides: dict[str, Any]
) -> None:
    settings = engine_settings(tmp_path, **backend_overrides)
    async with running_engine(settings, workers=False) as engine:
        placed = [
            await engine.orders.submit(
                engine.orders.validate(
                    "SOL",
                    "USDC",
                    "0.1",
                    kind=LIMIT,
                    options=OrderOptions(limit_price="1000000", expires_in_s=1),
                )
            )
            for _ in range(30)
        ]
        not_due = await engine.orders.submit(
            engine.orders.validate(
                "SOL", "USDC", "0.1", kind=LIMIT, options=OrderOptions(limit_price="1000000")
            )
        )
        other = WaitingOrders(
            repo=engine.repo,
            store=engine.waiting.store,
            bus=engine.bus,
            queue=engine.queue,
            clock=engine.orders.clock,
            worker_id="other-sweeper",
        )
        await asyncio.sleep(1.1)
        counts = await asyncio.gather(engine.waiting.expire_due(), other.expire_due())
        assert sum(counts) == len(placed), counts
        for order in placed:
            statuses = [e.status for e in await engine.repo.events(order.id)]
            assert statuses == [OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.EXPIRED]
        assert await engine.waiting.expire_due() == 0
        current = await engine.repo.get(not_due.id)
        assert current is not None
        assert current.status is OrderStatus.OPEN
        assert (await engine.waiting.store.count_open())[LIMIT] == 1
