"""The Chain contract over JSON-RPC: ``RpcChain`` against the chain server that
``order-engine chain`` runs, on a loopback port, faults off.

Everything crosses real HTTP: the payer is funded through ``requestAirdrop``
(``ensure_funded``), blocks pass on the server's own clock, and ``advance``
only watches ``getBlockHeight``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from solders.keypair import Keypair
from tests.contract.chain_support import Advance
from tests.contract.rpc_support import advance_by_polling, quiet_chain_server
from tests.contract.test_chain_contract import ChainContract

from order_engine.adapters.rpc import RpcChain, ensure_funded
from order_engine.ports.chain import Chain
from order_engine.sim.rpc.server import ChainServer

PAYER_LAMPORTS = 2 * 10**9


class TestRpcChain(ChainContract):
    @pytest.fixture
    async def server(self) -> AsyncIterator[ChainServer]:
        async for server in quiet_chain_server():
            yield server

    @pytest.fixture
    async def chain(self, server: ChainServer) -> AsyncIterator[Chain]:
        async with RpcChain(server.url, timeout_s=5) as chain:
            yield chain

    @pytest.fixture
    async def payer(self, server: ChainServer) -> Keypair:
        keypair = Keypair()
        assert await ensure_funded(server.url, keypair.pubkey(), lamports=PAYER_LAMPORTS, tokens={})
        return keypair

    @pytest.fixture
    def advance(self, chain: Chain) -> Advance:
        return advance_by_polling(chain)
