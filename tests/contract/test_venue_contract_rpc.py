"""The Venue contract for ``RaydiumVenue`` and ``MeteoraVenue`` as a distributed
worker builds them: the pool list from the chain server's ``GET /pools``
(``fetch_pool_listing``), pool state read through ``RpcChain``, the owner funded
through the faucet (``ensure_funded``), swaps sent and confirmed over JSON-RPC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
from solders.keypair import Keypair
from tests.contract.chain_support import Advance
from tests.contract.rpc_support import advance_by_polling, quiet_chain_server
from tests.contract.test_venue_contract import (
    METEORA_TRADES,
    RAYDIUM_TRADES,
    Trade,
    VaultOf,
    VenueContract,
    vault_of,
)

from order_engine.adapters.rpc import RpcChain, ensure_funded, fetch_pool_listing
from order_engine.adapters.venues import MeteoraVenue, PoolListing, RaydiumVenue
from order_engine.domain.routing import PoolSnapshot
from order_engine.domain.tokens import BONK, JUP, U64_MAX, USDC, USDT
from order_engine.ports.chain import Chain
from order_engine.ports.venue import Venue
from order_engine.sim.rpc.server import ChainServer

OWNER_LAMPORTS = 10_000 * 10**9
OWNER_TOKENS = {
    USDC.mint: 10_000_000 * 10**6,
    USDT.mint: 10_000_000 * 10**6,
    BONK.mint: 10**15,
    JUP.mint: 10_000_000 * 10**6,
}


class RpcVenueContract(VenueContract):
    """The fixtures both venues share over JSON-RPC."""

    @pytest.fixture
    async def server(self) -> AsyncIterator[ChainServer]:
        async for server in quiet_chain_server():
            yield server

    @pytest.fixture
    async def chain(self, server: ChainServer) -> AsyncIterator[Chain]:
        async with RpcChain(server.url, timeout_s=5) as chain:
            yield chain

    @pytest.fixture
    async def listings(self, server: ChainServer) -> list[PoolListing]:
        return await fetch_pool_listing(server.url)

    @pytest.fixture
    async def owner(self, server: ChainServer) -> Keypair:
        keypair = Keypair()
        funded = await ensure_funded(
            server.url, keypair.pubkey(), lamports=OWNER_LAMPORTS, tokens=OWNER_TOKENS
        )
        assert funded
        return keypair

    @pytest.fixture
    def advance(self, chain: Chain) -> Advance:
        return advance_by_polling(chain)

    @pytest.fixture
    def vault(self, listings: list[PoolListing]) -> VaultOf:
        by_address = {p.address: p for p in listings}
        return lambda snapshot, mint: vault_of(by_address[snapshot.pool_id], mint)


class TestRaydiumVenueOverRpc(RpcVenueContract):
    NAME = "raydium"

    @pytest.fixture
    def venue(self, chain: Chain, listings: list[PoolListing]) -> Venue:
        return RaydiumVenue(chain, listings)

    @pytest.fixture(params=RAYDIUM_TRADES, ids=str)
    def trade(self, request: pytest.FixtureRequest) -> Trade:
        return cast("Trade", request.param)

    def slippage_error(self, pool_kind: str) -> str:
        return "ExceededSlippage"

    def unfillable_amount(self, snapshot: PoolSnapshot) -> int:
        return 1  # one base unit in yields less than one out


class TestMeteoraVenueOverRpc(RpcVenueContract):
    NAME = "meteora"

    @pytest.fixture
    def venue(self, chain: Chain, listings: list[PoolListing]) -> Venue:
        return MeteoraVenue(chain, listings)

    @pytest.fixture(params=METEORA_TRADES, ids=str)
    def trade(self, request: pytest.FixtureRequest) -> Trade:
        return cast("Trade", request.param)

    def slippage_error(self, pool_kind: str) -> str:
        return "ExceededAmountSlippageTolerance"

    def unfillable_amount(self, snapshot: PoolSnapshot) -> int:
        return U64_MAX
