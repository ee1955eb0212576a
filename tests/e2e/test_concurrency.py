"""A hundred orders at once, over real HTTP and WebSockets: each reaches exactly
one terminal state, its stream is its stored history, and no swap runs twice."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp

from order_engine.adapters.memory import InMemoryEventBus
from tests.e2e.wire import TERMINAL, Stream, follow, order, slots_held, submit, wait_for_status
from tests.support.harness import engine_settings, running_engine, serving

ORDERS = 100
# Mixed pairs, directions and sizes, so that orders contend for the same pools
# and take single, split and two-hop routes; slippage wide enough for the
# hundred of them moving each other's prices.
BODIES = [
    order("1.5", slippage_bps=500),
    order("250", inputToken="USDC", outputToken="SOL", slippage_bps=500),
    order("0.75", outputToken="USDT", slippage_bps=500),
    order("2000000", inputToken="BONK", outputToken="SOL", slippage_bps=500),
    order("40", inputToken="JUP", outputToken="USDC", slippage_bps=500),
    order("120", inputToken="USDT", outputToken="USDC", slippage_bps=300),
    order("15", inputToken="JUP", outputToken="SOL", slippage_bps=800),
    order("3000", outputToken="USDC", slippage_bps=1000),
]


async def test_a_hundred_concurrent_orders_each_end_exactly_once_with_unique_transactions(
    tmp_path: Path,
) -> None:
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):

        async def one(i: int) -> tuple[str, Stream]:
            order_id = await submit(session, url, BODIES[i % len(BODIES)])
            return order_id, await follow(session, url, order_id)

        async with asyncio.timeout(60):
            results = await asyncio.gather(*(one(i) for i in range(ORDERS)))

        assert len({order_id for order_id, _ in results}) == ORDERS
        confirmed_hashes: list[str] = []
        signed_hashes: list[str] = []
        for order_id, stream in results:
            events = await engine.repo.events(uuid.UUID(order_id))
            signed_hashes += [e.details["txHash"] for e in events if e.status.value == "submitted"]
            seqs = [e.seq for e in events]
            assert seqs == list(range(1, len(seqs) + 1)), (order_id, seqs)
            terminal = [e for e in events if e.status.value in TERMINAL]
            assert len(terminal) == 1, (order_id, [e.status.value for e in events])
            assert events[-1] is terminal[0]
            assert stream.messages == [e.to_message() for e in events], order_id
            assert stream.close_code == 1000
            stored = await engine.repo.get(uuid.UUID(order_id))
            assert stored is not None
            assert stored.status == terminal[0].status
            end = terminal[0]
            if end.status.value == "confirmed":
                confirmed_hashes.append(end.details["txHash"])
            else:
                # Mixed flow may move a price past an order's slippage (and, until
                # the bin-array bug below is fixed, off a Meteora order's bin
                # arrays): a failure must say why, and come from a landed transaction.
                assert end.details["code"], end.details
                assert end.details["error"], end.details
                assert end.details["attempts"] >= 1, end.details
                assert engine.simulator is not None
                assert engine.simulator.executions(end.details["txHash"]) == 1, end.details

        assert len(confirmed_hashes) >= ORDERS * 9 // 10
        assert len(set(confirmed_hashes)) == len(confirmed_hashes)
        assert engine.simulator is not None
        for signature in confirmed_hashes:
            assert engine.simulator.executions(signature) == 1, signature
        assert len(set(signed_hashes)) == len(signed_hashes)
        for signature in signed_hashes:  # a re-signed order's expired transaction never ran
            assert engine.simulator.executions(signature) <= 1, signature
        assert isinstance(engine.bus, InMemoryEventBus)
        assert engine.bus.subscription_count <= 1  # the stream tailer's, whatever the sockets
        assert engine.streams.listener_count == 0


async def test_an_order_quoted_on_meteora_still_fills_after_a_bigger_order_moves_the_price_its_way(
    tmp_path: Path,
) -> None:
    async with (
        running_engine(engine_settings(tmp_path)) as engine,
        serving(engine) as url,
        aiohttp.ClientSession() as session,
        slots_held(engine) as release,
    ):
        # The big sale is quoted and sent first, so it lands first and makes SOL cheaper.
        sale = await submit(session, url, order("3000", slippage_bps=5000))
        await wait_for_status(engine, sale, "submitted")
        purchase = await submit(
            session, url, order("250", inputToken="USDC", outputToken="SOL", slippage_bps=5000)
        )
        await wait_for_status(engine, purchase, "submitted")
        await release()
        sold, bought = await follow(session, url, sale), await follow(session, url, purchase)
    assert sold.statuses[-1] == "confirmed"
    assert bought.messages[2]["dex"] == "meteora"
    assert bought.statuses[-1] == "confirmed", bought.messages[-1]
    # Either the wider bin-array window covered the move, or the stale-accounts
    # failure was re-quoted and re-signed; never a second execution either way.
    if "building" in bought.statuses[4:]:
        rebuild = bought.messages[bought.statuses.index("building", 4)]
        assert "BinArrayNotFound" in rebuild["reason"]
