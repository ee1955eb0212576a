"""The Chain port over the in-process ``Cluster``: RPC latency and faults on top."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from order_engine.domain.errors import EngineError
from order_engine.ports.chain import (
    Blockhash,
    SendTimeout,
    SignatureStatus,
    TransactionResult,
)
from order_engine.sim.cluster import Cluster
from order_engine.sim.faults import Faults, Latency


class SimChain:
    """Implements ``order_engine.ports.chain.Chain`` against a ``Cluster``."""

    def __init__(self, cluster: Cluster, faults: Faults, latency: Latency) -> None:
        self.cluster = cluster
        self.faults = faults
        self.latency = latency

    async def get_latest_blockhash(self) -> Blockhash:
        await self.latency.rpc()
        self.faults.check("getLatestBlockhash")
        return self.cluster.latest_blockhash()

    async def get_block_height(self) -> int:
        await self.latency.rpc()
        self.faults.check("getBlockHeight")
        return self.cluster.block_height()

    async def send_transaction(self, raw: bytes) -> str:
        await self.latency.rpc()
        self.faults.check("sendTransaction")
        timed_out, reached = self.faults.send_times_out()
        if not timed_out:
            return self.cluster.send(raw)
        if reached:
            # The node got the bytes; the client never learns what it answered.
            with contextlib.suppress(EngineError):
                self.cluster.send(raw)
        await self.latency.send_timeout()
        raise SendTimeout(
            "sendTransaction timed out: the transaction may or may not have reached the leader"
        )

    async def get_signature_statuses(
        self, signatures: Sequence[str]
    ) -> list[SignatureStatus | None]:
        await self.latency.rpc()
        self.faults.check("getSignatureStatuses")
        return self.cluster.poll_signature_statuses(signatures)

    async def get_transaction(self, signature: str) -> TransactionResult | None:
        await self.latency.rpc()
        self.faults.check("getTransaction")
        return self.cluster.transaction(signature)

    async def get_multiple_accounts(self, pubkeys: Sequence[str]) -> list[bytes | None]:
        await self.latency.rpc()
        self.faults.check("getMultipleAccounts", account_read=True)
        return self.cluster.accounts(pubkeys)
