"""DELETE /api/orders/{id} over real loopback HTTP: an open order is cancelled,
anything past open is a 409, and a cancel racing a trigger has one winner.

No trigger service places open orders yet, so the tests put them in the store
the way one would: accepted, then moved to open along the table's WAIT edge.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
import pytest_asyncio

from order_engine.bootstrap import Engine
from order_engine.domain.errors import StaleWrite
from order_engine.domain.order import Order, OrderKind, Trigger
from tests.e2e.wire import PROBLEM_JSON, SOL_MINT, USDC_MINT, order, submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Engine, str, aiohttp.ClientSession]]:
    settings = engine_settings(tmp_path_factory.mktemp("cancel"))
    async with (
        running_engine(settings) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield engine, url, session


async def place_open(engine: Engine) -> Order:
    placed, first = Order.accept(
        order_id=uuid.uuid4(),
        input_mint=SOL_MINT,
        output_mint=USDC_MINT,
        amount_in=10**9,
        slippage_bps=50,
        at=engine.orders.clock.now(),
        kind=OrderKind.LIMIT,
        details={"orderType": "limit", "inputToken": "SOL", "outputToken": "USDC"},
    )
    await engine.repo.create(placed, first)
    await engine.repo.record(placed, placed.apply(Trigger.WAIT, engine.orders.clock.now()))
    return placed


async def delete(
    session: aiohttp.ClientSession, url: str, order_id: object
) -> tuple[int, dict[str, object]]:
    async with session.delete(f"{url}/api/orders/{order_id}") as response:
        body = orjson.loads(await response.read())
        if response.status >= 400:
            assert response.content_type == PROBLEM_JSON
        return response.status, body


async def test_an_open_order_is_cancelled_once_and_then_refused_with_409(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    placed = await place_open(engine)
    status, view = await delete(session, url, placed.id)
    assert status == 200, view
    assert (view["status"], view["type"]) == ("cancelled", "limit")
    events = view["events"]
    assert isinstance(events, list)
    assert [e["status"] for e in events] == ["pending", "open", "cancelled"]
    assert [e.seq for e in await engine.repo.events(placed.id)] == [1, 2, 3]

    status, problem = await delete(session, url, placed.id)
    assert (status, problem["code"]) == (409, "order_not_cancellable")
    assert "is cancelled" in str(problem["message"])


async def test_a_cancelled_order_ends_its_websocket_stream(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    placed = await place_open(engine)
    ws_url = url.replace("http", "ws", 1) + f"/api/orders/execute?orderId={placed.id}"
    async with session.ws_connect(ws_url) as ws:
        first_two = [orjson.loads((await ws.receive(timeout=5)).data) for _ in range(2)]
        assert [m["status"] for m in first_two] == ["pending", "open"]
        assert (await delete(session, url, placed.id))[0] == 200
        last = orjson.loads((await ws.receive(timeout=5)).data)
        assert (last["seq"], last["status"]) == (3, "cancelled")
        closing = await ws.receive(timeout=5)
        assert closing.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}


async def test_a_market_order_past_open_cannot_be_cancelled(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    order_id = await submit(session, url, order("0.1"))
    await wait_for_status(engine, order_id, "confirmed", "failed")
    status, problem = await delete(session, url, order_id)
    assert (status, problem["code"]) == (409, "order_not_cancellable")
    assert "only an open order" in str(problem["message"])


async def test_cancelling_an_unknown_order_is_a_404(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    _, url, session = api
    for unknown in (uuid.uuid4(), "not-a-uuid"):
        status, problem = await delete(session, url, unknown)
        assert (status, problem["code"]) == (404, "order_not_found")


async def test_a_cancel_racing_a_trigger_has_exactly_one_winner(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    for _ in range(10):
        placed = await place_open(engine)
        fired = placed.apply(Trigger.FIRE, engine.orders.clock.now(), {"by": "test"})
        cancelled, triggered = await asyncio.gather(
            delete(session, url, placed.id),
            engine.repo.record(placed, fired),
            return_exceptions=True,
        )
        cancel_won = not isinstance(cancelled, BaseException) and cancelled[0] == 200
        trigger_won = triggered is None
        assert cancel_won != trigger_won, (cancelled, triggered)
        if cancel_won:
            assert isinstance(triggered, StaleWrite)
        else:
            assert not isinstance(cancelled, BaseException)
            assert cancelled[0] == 409
        final = await engine.repo.get(placed.id)
        assert final is not None
        assert final.status.value == ("cancelled" if cancel_won else "triggered")
        assert [e.seq for e in await engine.repo.events(placed.id)] == [1, 2, 3]


async def test_the_list_filters_by_type_and_status(
    api: tuple[Engine, str, aiohttp.ClientSession],
) -> None:
    engine, url, session = api
    placed = await place_open(engine)
    params = [("type", "limit"), ("status", "open")]
    async with session.get(f"{url}/api/orders", params=params) as response:
        assert response.status == 200
        listed = {o["orderId"]: o for o in (await response.json())["orders"]}
    assert str(placed.id) in listed
    assert all((o["type"], o["status"]) == ("limit", "open") for o in listed.values())
    async with session.get(f"{url}/api/orders", params=[("type", "bogus")]) as response:
        assert response.status == 422
