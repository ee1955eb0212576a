"""The Chain port over the in-process ``Cluster``: RPC latency and faults on top.

Waiting for a signature costs nothing while it waits: ``wait_for_signature``
registers a callback that the cluster runs at the slot the transaction is
confirmed, the way ``signatureSubscribe`` notifies a client. At time scale 0 a
``SlotDriver`` (when configured) produces slots only while something is pending
or watched, one per ``interval_s`` of wall time, so an idle engine costs nothing
and a busy one pays per slot, not per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from solders.pubkey import Pubkey

from order_engine.domain.errors import EngineError
from order_engine.ports.chain import (
    Blockhash,
    LogsNotice,
    PrioritizationFee,
    SendTimeout,
    SignatureStatus,
    TransactionResult,
    is_confirmed,
)
from order_engine.sim.cluster import Cluster
from order_engine.sim.faults import Faults, Latency

log = structlog.get_logger(__name__)

MAX_SLOWDOWN = 10.0  # a lagging event loop stretches the zero-scale slot at most this much


class SlotDriver:
    """Time scale 0: a slot every ``interval_s`` of wall time while the cluster has
    work (a pending transaction, a watched signature), and none otherwise."""

    def __init__(self, cluster: Cluster, interval_s: float) -> None:
        if not interval_s > 0:
            raise ValueError(f"expected a positive slot interval, got {interval_s}")
        self.cluster = cluster
        self.interval_s = interval_s
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._held = False

    @property
    def held(self) -> bool:
        """Whether the clock is stopped (a test holding transactions in the mempool)."""
        return self._held

    @held.setter
    def held(self, value: bool) -> None:
        self._held = value
        if value:
            self.stop()
        else:
            self.wake()

    def wake(self, delay_s: float | None = None) -> None:
        if self._handle is None and not self._held and self.cluster.has_work:
            loop = asyncio.get_running_loop()
            delay = self.interval_s if delay_s is None else delay_s
            self._due = loop.time() + delay
            self._handle = loop.call_later(delay, self._slot)

    def _slot(self) -> None:
        self._handle = None
        # A busy event loop runs this late; the clock then slows with it (up to
        # MAX_SLOWDOWN x), so that an order spans about as many slots when the
        # engine is loaded as when it is not, instead of the market moving
        # further under every order the slower the engine gets.
        lag = max(0.0, asyncio.get_running_loop().time() - self._due)
        try:
            self.cluster.advance_slot()
        except Exception:  # a bug in one slot must not stop the clock
            log.exception("sim_slot_failed", slot=self.cluster.slot)
        self.wake(self.interval_s * min(MAX_SLOWDOWN, 1 + lag / self.interval_s))

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class SimChain:
    """Implements ``order_engine.ports.chain.Chain`` against a ``Cluster``."""

    def __init__(
        self,
        cluster: Cluster,
        faults: Faults,
        latency: Latency,
        driver: SlotDriver | None = None,
    ) -> None:
        self.cluster = cluster
        self.faults = faults
        self.latency = latency
        # Without a driver (and at time scale 0), slots pass only as clients poll
        # (``ClusterParams.advance_on_poll``) or as tests advance them.
        self.driver = driver
        self._slot_waiters: list[asyncio.Future[int]] = []
        cluster.on_slot(self._new_slot)

    def _new_slot(self, _env: object) -> None:
        # Runs inside ``advance_slot``, before the slot's transactions land; the
        # waiters resume after it returns, so they read the state the slot left.
        waiters, self._slot_waiters = self._slot_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self.cluster.slot)

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
            signature = self.cluster.send(raw)
            self._wake()
            return signature
        if reached:
            # The node got the bytes; the client never learns what it answered.
            with contextlib.suppress(EngineError):
                self.cluster.send(raw)
            self._wake()
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

    async def wait_for_signature(
        self, signature: str, timeout_s: float, *, expires_after_height: int | None = None
    ) -> SignatureStatus | None:
        await self.latency.rpc()
        self.faults.check("getSignatureStatuses")
        (status,) = self.cluster.poll_signature_statuses([signature])
        if is_confirmed(status) or timeout_s <= 0:
            return status
        if self.driver is None:  # nothing would wake us: wait like a polling client
            await asyncio.sleep(timeout_s)
            return status
        loop = asyncio.get_running_loop()
        notified: asyncio.Future[SignatureStatus | None] = loop.create_future()

        def deliver(confirmed: SignatureStatus | None) -> None:
            if not notified.done():
                notified.set_result(confirmed)

        def expired() -> None:
            deliver(None)

        self.cluster.watch(signature, deliver)
        if expires_after_height is not None:
            self.cluster.when_height_passes(expires_after_height, expired)
        self._wake()
        timer = loop.call_later(timeout_s, deliver, None)
        try:
            landed = await notified
        finally:
            timer.cancel()
            self.cluster.unwatch(signature, deliver)
            if expires_after_height is not None:
                self.cluster.forget_height(expires_after_height, expired)
        # Timed out or expired: report whatever the cluster knows now (processed, or unseen).
        return landed if landed is not None else self.cluster.signature_statuses([signature])[0]

    async def wait_for_slot(self, after: int, timeout_s: float) -> int:
        if self.cluster.slot > after or timeout_s <= 0:
            return self.cluster.slot
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(waiter)
        except TimeoutError:
            return self.cluster.slot
        finally:
            waiter.cancel()
            with contextlib.suppress(ValueError):
                self._slot_waiters.remove(waiter)

    async def wait_for_block_height(self, height: int, timeout_s: float) -> int:
        if self.cluster.block_height() > height or timeout_s <= 0:
            return self.cluster.block_height()
        passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def reached() -> None:
            if not passed.done():
                passed.set_result(None)

        # A height someone waits for is work: the slot driver runs until it passes.
        self.cluster.when_height_passes(height, reached)
        self._wake()
        try:
            await asyncio.wait_for(passed, timeout_s)
        except TimeoutError:
            pass
        finally:
            self.cluster.forget_height(height, reached)
        return self.cluster.block_height()

    def _wake(self) -> None:
        if self.driver is not None:
            self.driver.wake()

    async def get_transaction(self, signature: str) -> TransactionResult | None:
        await self.latency.rpc()
        self.faults.check("getTransaction")
        return self.cluster.transaction(signature)

    async def get_multiple_accounts(self, pubkeys: Sequence[str]) -> list[bytes | None]:
        await self.latency.rpc()
        self.faults.check("getMultipleAccounts", account_read=True)
        return self.cluster.accounts(pubkeys)

    async def get_recent_prioritization_fees(
        self, accounts: Sequence[str] = ()
    ) -> list[PrioritizationFee]:
        await self.latency.rpc()
        self.faults.check("getRecentPrioritizationFees")
        return self.cluster.recent_prioritization_fees(Pubkey.from_string(a) for a in accounts)

    async def logs_mentioning(
        self, address: str, *, after: str | None, timeout_s: float
    ) -> list[LogsNotice]:
        # A subscription, not a poll: no RPC latency or faults per notification.
        key = Pubkey.from_string(address)
        self.cluster.index(key)
        found = self.cluster.mentions(key, after)
        if found or timeout_s <= 0:
            return found
        loop = asyncio.get_running_loop()
        notified: asyncio.Future[None] = loop.create_future()

        def deliver(_notice: LogsNotice) -> None:
            if not notified.done():
                notified.set_result(None)

        self.cluster.when_mentioned(key, deliver)
        try:
            await asyncio.wait_for(notified, timeout_s)
        except TimeoutError:
            pass
        finally:
            self.cluster.forget_mention(key, deliver)
        return self.cluster.mentions(key, after)
