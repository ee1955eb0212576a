"""Launches in distributed mode: the chain process creates tokens and pools
(``simCreateToken``/``simCreatePool``), and a process that only speaks JSON-RPC
finds the new pools by polling (``getSignaturesForAddress`` + ``getTransaction``)
and routes through them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from order_engine.adapters.rpc import RpcChain, fetch_pool_listing
from order_engine.adapters.rpc.funding import RpcLaunches
from order_engine.adapters.venues import MeteoraVenue, RaydiumVenue
from order_engine.adapters.venues.launch_watcher import LaunchWatcher
from order_engine.app.launches import LaunchService
from order_engine.domain.errors import ValidationError
from order_engine.domain.tokens import SOL, TokenRegistry
from order_engine.ports.venue import Venue
from order_engine.sim.rpc.server import ChainServer
from tests.contract.rpc_support import quiet_chain_server


@pytest.fixture
async def server() -> AsyncIterator[ChainServer]:
    async for served in quiet_chain_server():
        yield served


async def test_a_pool_launched_on_the_chain_process_is_found_and_quoted_over_json_rpc(
    server: ChainServer,
) -> None:
    tokens = TokenRegistry()
    async with RpcChain(server.url, timeout_s=5) as chain:
        listing = await fetch_pool_listing(server.url)
        meteora = MeteoraVenue(chain, listing)
        venues: list[Venue] = [RaydiumVenue(chain, listing), meteora]
        watcher = LaunchWatcher(chain, venues, tokens)
        assert await watcher.next_launches(0) == []
        service = LaunchService(RpcLaunches(chain), tokens)

        token = await service.create_token(
            {"symbol": "NEWT", "decimals": 6, "supply": "1000000000", "mintAuthorityRevoked": True}
        )
        pool = await service.create_pool(
            {
                "venue": "meteora",
                "baseMint": token["mint"],
                "quoteToken": "SOL",
                "baseAmount": "500000000",
                "quoteAmount": "100",
            }
        )
        found = []
        for _ in range(50):  # confirmed within a few 4 ms slots
            found += await watcher.next_launches(0.02)
            if found:
                break

        (seen,) = found
        assert (seen.pool, seen.slot) == (pool["pool"], pool["slot"])
        assert seen.mints[token["mint"]].mint_authority is None
        assert seen.mints[token["mint"]].freeze_authority is not None
        (snapshot,) = await meteora.snapshots(SOL.mint, token["mint"])
        assert snapshot.quote(10**9).amount_out > 0
        relisted = await fetch_pool_listing(server.url)
        assert pool["pool"] in {p.address for p in relisted}


async def test_a_refused_launch_on_the_chain_process_is_a_validation_error(
    server: ChainServer,
) -> None:
    async with RpcChain(server.url, timeout_s=5) as chain:
        service = LaunchService(RpcLaunches(chain), TokenRegistry())
        with pytest.raises(ValidationError, match="symbol"):
            await service.create_token({"symbol": "NOT A SYMBOL", "supply": "1"})
