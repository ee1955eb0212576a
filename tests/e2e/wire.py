"""What the end-to-end tests share: the wire format, bounded waits, and a way
to hold an order in flight.

Every wait is bounded: a test that would hang fails with a message instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import aiohttp
from yarl import URL

from order_engine.bootstrap import Engine

EXECUTE = "/api/orders/execute"
LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]
TERMINAL = {"confirmed", "failed"}
PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "message"}
WAIT_S = 10.0

SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def order(amount: Any = "1", slippage_bps: int | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"inputToken": "SOL", "outputToken": "USDC", "amount": amount}
    if slippage_bps is not None:
        body["slippageBps"] = slippage_bps
    body.update(fields)
    return body


def ws_url(base: str, **params: str | int) -> URL:
    url = URL(base.replace("http://", "ws://", 1) + EXECUTE)
    return url.with_query({k: str(v) for k, v in params.items()}) if params else url


async def submit(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> str:
    async with session.post(base + EXECUTE, json=body) as response:
        payload = await response.json()
        assert response.status == 201, payload
        order_id: str = payload["orderId"]
        return order_id


@dataclasses.dataclass
class Stream:
    """Everything one WebSocket received, and how the server closed it."""

    messages: list[dict[str, Any]]
    close_code: int | None

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if "seq" in m]

    @property
    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.events]

    @property
    def statuses(self) -> list[str]:
        return [m["status"] for m in self.events]


async def receive_json(ws: aiohttp.ClientWebSocketResponse, within: float = WAIT_S) -> Any:
    message = await ws.receive(timeout=within)
    assert message.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {message!r}"
    return message.json()


async def read_to_close(ws: aiohttp.ClientWebSocketResponse, within: float = WAIT_S) -> Stream:
    """Read text frames until the server closes; fail if that takes over ``within`` s."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        async for message in ws:
            assert message.type is aiohttp.WSMsgType.TEXT, f"unexpected frame {message!r}"
            messages.append(message.json())
    return Stream(messages, ws.close_code)


async def follow(
    session: aiohttp.ClientSession, base: str, order_id: str, **params: str | int
) -> Stream:
    async with session.ws_connect(ws_url(base, orderId=order_id, **params)) as ws:
        return await read_to_close(ws)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT_S
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_for_status(engine: Engine, order_id: str, *statuses: str) -> None:
    """Wait until the order is in one of ``statuses``; an order that ends any other
    way fails the wait at once, with its last event."""

    async def reached() -> bool:
        current = await engine.repo.get(UUID(order_id))
        if current is None:
            return False
        if current.is_terminal and current.status.value not in statuses:
            last = (await engine.repo.events(UUID(order_id)))[-1]
            raise AssertionError(f"order {order_id} ended {last.to_message()}")
        return current.status.value in statuses

    await eventually(reached, f"order {order_id} to reach {'/'.join(statuses)}")


@contextlib.asynccontextmanager
async def slots_held(engine: Engine) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Stop the simulated slot clock, so that a sent transaction waits in the
    mempool (the order stays ``submitted``) until the test lets time pass.

    At time scale 0 the slot driver produces slots while anything waits, and
    the cluster advances a slot whenever a status poll asks again within the
    same slot; holding the one and switching off the other leaves slots to
    ``advance_slots``. Yields ``release``: let slots pass until every order
    that is in flight has settled.
    """
    assert engine.simulator is not None
    cluster, driver = engine.simulator.cluster, engine.simulator.driver
    original = cluster.params
    cluster.params = dataclasses.replace(original, advance_on_poll=False)
    if driver is not None:
        driver.held = True

    async def release() -> None:
        cluster.params = original
        if driver is not None:
            driver.held = False

    try:
        yield release
    finally:
        cluster.params = original
        if driver is not None:
            driver.held = False


def assert_gapless_lifecycle(stream: Stream, order_id: str) -> None:
    assert stream.seqs == [1, 2, 3, 4, 5], stream.messages
    assert stream.statuses == LIFECYCLE, stream.messages
    assert {m["orderId"] for m in stream.events} == {order_id}
    assert stream.close_code == 1000
