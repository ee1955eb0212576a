"""A rebroadcast the cluster rejects is no proof about the first send.

The first send is accepted and waits in the mempool; every later send of the
same bytes is rejected (as a node that has already seen the signature, or one
behind on blockhashes, may do). The order must not fail while its first send
may still land: once slots pass, it lands and the order is confirmed, once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from order_engine.domain.order import OrderStatus
from order_engine.ports.chain import TransactionRejected
from tests.e2e.wire import slots_held
from tests.integration.helpers import sim_of, submit, wait_for_event, wait_terminal
from tests.support.harness import engine_settings, running_engine


async def test_a_rejected_rebroadcast_does_not_fail_an_order_whose_first_send_may_land(
    tmp_path: Path,
) -> None:
    settings = engine_settings(tmp_path, sim_zero_scale_slot_ms=0)
    async with running_engine(settings) as engine:
        assert engine.executor is not None
        chain = engine.executor.chain
        send = chain.send_transaction
        sends: list[bytes] = []
        rejected_twice = asyncio.Event()

        async def first_only(raw: bytes) -> str:
            sends.append(raw)
            if len(sends) >= 3:
                rejected_twice.set()
            if len(sends) > 1:
                raise TransactionRejected("rebroadcast refused: already processed")
            return await send(raw)

        chain.send_transaction = first_only  # type: ignore[method-assign]
        async with slots_held(engine) as release:
            order = await submit(engine, "SOL", "USDC", "1")
            await wait_for_event(engine, order.id, OrderStatus.SUBMITTED)
            async with asyncio.timeout(10):
                await rejected_twice.wait()  # rejected rebroadcasts; the order still waits
            current = await engine.repo.get(order.id)
            assert current is not None
            assert current.status is OrderStatus.SUBMITTED
            await release()
        done = await wait_terminal(engine, order.id)
        assert done.status is OrderStatus.CONFIRMED, (done.error_code, done.error_message)
        assert done.tx is not None
        assert sim_of(engine).executions(done.tx.signature) == 1
        assert len(set(sends)) == 1  # the same bytes, never re-signed
