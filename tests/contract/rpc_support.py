"""What the JSON-RPC contract subclasses share: the chain server on loopback with
its own slot clock running, and ``advance`` as a client has it (poll
``getBlockHeight``, sleep in between)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tests.contract.chain_support import Advance, quiet_sim_config

from order_engine.ports.chain import Chain
from order_engine.sim import build_simulator
from order_engine.sim.rpc.server import ChainServer, start_chain_server

# 4 ms slots: the server's clock runs by itself, as a cluster's does, fast enough
# that waiting out a blockhash's 150 blocks takes well under a second.
TIME_SCALE = 0.01
SLOT_S = 0.4 * TIME_SCALE
# Generous: a slot every 4 ms means 250 blocks a second even on a loaded box.
SECONDS_PER_BLOCK_AT_WORST = 0.1


async def quiet_chain_server() -> AsyncIterator[ChainServer]:
    """A fresh simulator (faults off, still market) served on an ephemeral port."""
    server = await start_chain_server(build_simulator(quiet_sim_config(time_scale=TIME_SCALE)))
    try:
        yield server
    finally:
        await server.close()


def advance_by_polling(chain: Chain) -> Advance:
    async def advance(blocks: int) -> None:
        target = await chain.get_block_height() + blocks
        async with asyncio.timeout(5 + blocks * SECONDS_PER_BLOCK_AT_WORST):
            while True:
                if await chain.get_block_height() >= target:
                    return
                await asyncio.sleep(SLOT_S / 2)

    return advance
