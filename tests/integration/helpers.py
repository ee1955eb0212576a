"""Shared steps for the integration tests: a real engine (SQLite, in-process queue
and bus, the simulator at time scale 0), extra workers built from its parts,
and the two test-only Chain/Clock variants the exactly-once tests need.

Nothing here fakes behaviour: ``CrashAfter`` forwards every call to the
simulator and only *stops the worker* at one exact point, and ``SkewedClock``
is the system clock read on a host whose clock runs ahead (it makes another
worker's lease look expired without waiting for it).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.adapters.clock import SystemClock
from order_engine.app.executor import OrderExecutor
from order_engine.bootstrap import Engine
from order_engine.dex import meteora_dlmm, raydium_amm_v4, raydium_cpmm
from order_engine.dex.spl import TOKEN_ACCOUNT_RENT, WSOL_MINT, associated_token_address
from order_engine.domain.errors import TransientError
from order_engine.domain.order import TERMINAL, Order, OrderEvent, OrderStatus
from order_engine.ports.bus import Subscription
from order_engine.ports.chain import (
    Blockhash,
    Chain,
    LogsNotice,
    PrioritizationFee,
    SignatureStatus,
    TransactionResult,
)
from order_engine.ports.clock import Clock
from order_engine.ports.queue import Job
from order_engine.sim import Simulator
from order_engine.sim.cluster import ClusterParams

VENUE_PROGRAMS = {
    raydium_amm_v4.PROGRAM_ID: "raydium",
    raydium_cpmm.PROGRAM_ID: "raydium",
    meteora_dlmm.PROGRAM_ID: "meteora",
}


def sim_of(engine: Engine) -> Simulator:
    assert engine.simulator is not None
    return engine.simulator


async def submit(
    engine: Engine,
    input_token: str,
    output_token: str,
    amount: str | Decimal,
    slippage_bps: int | None = None,
) -> Order:
    request = engine.orders.validate(input_token, output_token, amount, slippage_bps)
    return await engine.orders.submit(request)


async def wait_terminal(engine: Engine, order_id: UUID, within_s: float = 15.0) -> Order:
    """Poll the store until the order is confirmed or failed (bounded)."""
    async with asyncio.timeout(within_s):
        while True:
            order = await engine.repo.get(order_id)
            assert order is not None, f"order {order_id} vanished"
            if order.is_terminal:
                return order
            await asyncio.sleep(0.005)


async def wait_all_terminal(
    engine: Engine, order_ids: Sequence[UUID], within_s: float = 60.0
) -> list[Order]:
    async with asyncio.timeout(within_s):
        return [await wait_terminal(engine, oid, within_s) for oid in order_ids]


async def wait_for_event(
    engine: Engine, order_id: UUID, status: OrderStatus, *, nth: int = 1, within_s: float = 15.0
) -> OrderEvent:
    """The ``nth`` stored event with ``status`` (polling the store, bounded)."""
    async with asyncio.timeout(within_s):
        while True:
            found = [e for e in await engine.repo.events(order_id) if e.status is status]
            if len(found) >= nth:
                return found[nth - 1]
            await asyncio.sleep(0.002)


async def next_event(
    subscription: Subscription, order_id: UUID, status: OrderStatus, within_s: float = 15.0
) -> OrderEvent:
    """The next live event of ``order_id`` with ``status``. The bus wakes the test on
    the publish itself, before the worker's next I/O: for steps that must happen
    between two moves of a worker that polls the chain in a tight loop."""
    async with asyncio.timeout(within_s):
        async for event in subscription:
            if event.order_id == order_id and event.status is status:
                return event
    raise AssertionError(f"the bus closed before order {order_id} reached {status.value}")


def statuses(events: Sequence[OrderEvent]) -> list[str]:
    return [e.status.value for e in events]


def assert_one_gapless_terminal_history(events: Sequence[OrderEvent]) -> None:
    """Seqs 1..n without gap or duplicate, and exactly one terminal event, the last."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), statuses(events)
    terminal = [e for e in events if e.status in TERMINAL]
    assert len(terminal) == 1, statuses(events)
    assert events[-1] is terminal[0], statuses(events)


def submitted_signatures(events: Sequence[OrderEvent]) -> list[str]:
    return [str(e.details["txHash"]) for e in events if e.status is OrderStatus.SUBMITTED]


def executed_signatures(sim: Simulator) -> Counter[str]:
    """Every user transaction the cluster executed (the market maker trades directly)."""
    return Counter({sig: n for sig, n in sim.cluster.executions.items() if n})


def venue_swaps(raw: bytes) -> list[str]:
    """The venue of every swap instruction in a signed transaction, in order."""
    tx = VersionedTransaction.from_bytes(raw)
    keys = tx.message.account_keys
    return [
        VENUE_PROGRAMS[keys[ix.program_id_index]]
        for ix in tx.message.instructions
        if keys[ix.program_id_index] in VENUE_PROGRAMS
    ]


def recent_blockhash(raw: bytes) -> str:
    return str(VersionedTransaction.from_bytes(raw).message.recent_blockhash)


def executor_of(engine: Engine) -> OrderExecutor:
    """The engine's own executor (an engine that runs workers has one)."""
    assert engine.executor is not None, "expected an engine that runs workers"
    return engine.executor


def wallet_of(engine: Engine) -> Keypair:
    assert engine.wallet is not None, "expected an engine that runs workers (it holds the wallet)"
    return engine.wallet


def worker(
    engine: Engine,
    worker_id: str,
    *,
    chain: Chain | None = None,
    clock: Clock | None = None,
    **config: Any,
) -> OrderExecutor:
    """Another worker process's executor over the same store, bus, venues and wallet."""
    base = executor_of(engine)
    return OrderExecutor(
        repo=engine.repo,
        bus=engine.bus,
        router=engine.router,
        chain=chain or engine.chain,
        wallet=wallet_of(engine),
        clock=clock or SystemClock(),
        presenter=base.present,
        config=dataclasses.replace(base.cfg, worker_id=worker_id, **config),
    )


async def deliver_until_done(executor: OrderExecutor, engine: Engine, order_id: UUID) -> None:
    """Deliver the order's job the way a queue does: again after a transient refusal."""
    for attempt in range(1, 200):
        try:
            await executor(Job(order_id, 1, 3))
        except TransientError:
            await asyncio.sleep(0.002 * min(attempt, 10))
        order = await engine.repo.get(order_id)
        if order is None or order.is_terminal:
            return
    raise AssertionError(f"order {order_id} never finished")


def wallet_value(sim: Simulator, owner: Pubkey, mint: str) -> int:
    """What ``owner`` holds of ``mint``; for SOL, its lamports plus everything in its
    wrapped-SOL account (the wrapped amount and the account's rent)."""
    if mint == str(WSOL_MINT):
        wsol = sim.ledger.tokens.get(associated_token_address(owner, WSOL_MINT))
        return sim.lamports(owner) + (0 if wsol is None else wsol.amount + TOKEN_ACCOUNT_RENT)
    return sim.token_balance(owner, mint)


class WorkerKilled(asyncio.CancelledError):
    """The worker's process died: nothing after this point runs (bar ``finally``)."""


class CrashAfter:
    """The simulator's Chain port, as seen by a worker that dies right after its
    ``nth`` call of ``method`` (``send_transaction`` by default): that call goes
    through to the simulator untouched, whatever it answers, then the worker is
    killed. Every other call is forwarded as is."""

    def __init__(self, inner: Chain, method: str = "send_transaction", nth: int = 1) -> None:
        self.inner = inner
        self.method = method
        self.nth = nth
        self.calls: Counter[str] = Counter()
        self.sent: list[bytes] = []

    def _after(self, method: str) -> None:
        self.calls[method] += 1
        if method == self.method and self.calls[method] == self.nth:
            raise WorkerKilled(f"worker killed right after {method} (call {self.nth})")

    async def get_latest_blockhash(self) -> Blockhash:
        try:
            return await self.inner.get_latest_blockhash()
        finally:
            self._after("get_latest_blockhash")

    async def get_block_height(self) -> int:
        try:
            return await self.inner.get_block_height()
        finally:
            self._after("get_block_height")

    async def send_transaction(self, raw: bytes) -> str:
        self.sent.append(raw)
        try:
            return await self.inner.send_transaction(raw)
        finally:
            self._after("send_transaction")

    async def get_signature_statuses(
        self, signatures: Sequence[str]
    ) -> list[SignatureStatus | None]:
        try:
            return await self.inner.get_signature_statuses(signatures)
        finally:
            self._after("get_signature_statuses")

    async def wait_for_signature(
        self, signature: str, timeout_s: float, *, expires_after_height: int | None = None
    ) -> SignatureStatus | None:
        try:
            return await self.inner.wait_for_signature(
                signature, timeout_s, expires_after_height=expires_after_height
            )
        finally:
            self._after("get_signature_statuses")  # a poll, as far as a crash goes

    async def wait_for_slot(self, after: int, timeout_s: float) -> int:
        return await self.inner.wait_for_slot(after, timeout_s)

    async def wait_for_block_height(self, height: int, timeout_s: float) -> int:
        return await self.inner.wait_for_block_height(height, timeout_s)

    async def get_transaction(self, signature: str) -> TransactionResult | None:
        try:
            return await self.inner.get_transaction(signature)
        finally:
            self._after("get_transaction")

    async def get_multiple_accounts(self, pubkeys: Sequence[str]) -> list[bytes | None]:
        try:
            return await self.inner.get_multiple_accounts(pubkeys)
        finally:
            self._after("get_multiple_accounts")

    async def get_recent_prioritization_fees(
        self, accounts: Sequence[str] = ()
    ) -> list[PrioritizationFee]:
        try:
            return await self.inner.get_recent_prioritization_fees(accounts)
        finally:
            self._after("get_recent_prioritization_fees")

    async def logs_mentioning(
        self, address: str, *, after: str | None, timeout_s: float
    ) -> list[LogsNotice]:
        return await self.inner.logs_mentioning(address, after=after, timeout_s=timeout_s)


class SkewedClock(SystemClock):
    """The system clock of a host whose clock runs ``ahead`` of everyone else's."""

    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return super().now() + self.ahead


def set_landing(sim: Simulator, *, possible: bool) -> None:
    """Turn landing off (every pending transaction waits) or back to the defaults."""
    defaults = ClusterParams()
    sim.cluster.params = dataclasses.replace(
        sim.cluster.params,
        landing_base=defaults.landing_base if possible else 0.0,
        landing_priority_gain=defaults.landing_priority_gain if possible else 0.0,
    )
