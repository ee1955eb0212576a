"""The runtime of one process: starts, checks and stops what the composition
root (``bootstrap.py``) wired, knowing the backends only by their ports.

``Engine`` is the wired process: the use cases, the ports they were given,
and what starting and stopping it means for its role (``all``: API and
workers; ``api``; ``worker``). Which adapter stands behind a port is
``bootstrap.py``'s business; here a backend is started, checked
(``ports/lifecycle.py`` ``health``) and closed through its port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from solders.keypair import Keypair

from order_engine.app.executor import OrderExecutor
from order_engine.app.gateway import Gateway
from order_engine.app.launch_listener import LaunchListener
from order_engine.app.launches import LaunchService
from order_engine.app.live import StreamTailer
from order_engine.app.orders import OrderService
from order_engine.app.price_watcher import PriceWatcher
from order_engine.app.reconciler import Reconciler
from order_engine.app.router import Router
from order_engine.app.sniper import SniperWatcher
from order_engine.app.waiting import WaitingOrders
from order_engine.domain.tokens import TokenRegistry
from order_engine.ports.bus import EventBus
from order_engine.ports.chain import Chain
from order_engine.ports.clock import Clock
from order_engine.ports.lifecycle import Service
from order_engine.ports.metrics import ExportedMetrics
from order_engine.ports.queue import JobQueue
from order_engine.ports.repository import OrderRepository
from order_engine.settings import Settings
from order_engine.sim import Simulator

log = structlog.get_logger(__name__)

Role = Literal["all", "api", "worker"]
Closer = Callable[[], Awaitable[None]]
Background = Callable[[], Coroutine[Any, Any, None]]
HEALTH_TIMEOUT_S = 2.0


@dataclass
class Engine:
    settings: Settings
    role: Role
    tokens: TokenRegistry
    repo: OrderRepository
    bus: EventBus
    queue: JobQueue
    chain: Chain
    router: Router
    orders: OrderService
    reconciler: Reconciler
    waiting: WaitingOrders  # the waiting-order core: trigger, expire (app/waiting.py)
    watcher: PriceWatcher  # limit orders' trigger service (app/price_watcher.py)
    gateway: Gateway  # API access, idempotency and the read side
    streams: StreamTailer  # the process's one reader of the bus for its WebSockets
    metrics: ExportedMetrics  # this process's registry (adapters/metrics.py)
    clock: Clock
    executor: OrderExecutor | None = None
    wallet: Keypair | None = None
    simulator: Simulator | None = None
    launches: LaunchService | None = None  # only against a simulated chain
    launch_listener: LaunchListener | None = None  # new pools, as the chain shows them
    sniper: SniperWatcher | None = None  # sniper orders' trigger (app/sniper.py)
    # What the readiness probe checks, by the name it reports (database, bus, queue).
    services: dict[str, Service] = field(default_factory=dict)
    # Loops the adapters need for as long as the process runs (a clock's resync).
    background: list[Background] = field(default_factory=list)
    _closers: list[Closer] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _workers_started: bool = False

    @property
    def runs_workers(self) -> bool:
        return self.executor is not None

    async def start(self, *, workers: bool = True, concurrency: int | None = None) -> None:
        """Start the simulator (if in-process) and, when ``workers``, the job
        consumers and the reconciler."""
        if self.simulator is not None:
            await self.simulator.start()
        await self.bus.start()  # fail fast, and be live before the first subscriber
        for loop in self.background:
            self._tasks.append(asyncio.create_task(loop()))
        if self.role != "worker":  # where keys are written, whoever runs the reconciler
            purging = self.gateway.idempotency.purge_forever(self.settings.idempotency_purge_s)
            self._tasks.append(asyncio.create_task(purging))
        if self.launch_listener is not None:
            # Pools launched before this process started: the venues learn them now.
            with contextlib.suppress(Exception):
                await self.launch_listener.prime()
            self._tasks.append(asyncio.create_task(self.launch_listener.run_forever()))
        if workers and self.executor is not None:
            await self.queue.start(self.executor, concurrency or self.settings.worker_concurrency)
            self._workers_started = True
            # Orders a previous process left unfinished may have no job anywhere now.
            await self.reconciler.run_once(stale_after_s=0)
            self._tasks.append(asyncio.create_task(self.reconciler.run_forever()))
            # Open orders are durable: the watchers load them all from the database,
            # and hear of the ones placed here at once (a process that does not
            # watch keeps no book: its orders are found through the database).
            self.orders.watchers.append(self.watcher.watch)
            self._tasks.append(asyncio.create_task(self.watcher.run()))
            if self.sniper is not None and self.launch_listener is not None:
                self.orders.watchers.append(self.sniper.watch)
                self.launch_listener.subscribe(self.sniper.on_launch)
                self._tasks.append(asyncio.create_task(self.sniper.run()))
            self._tasks.append(
                asyncio.create_task(self.waiting.sweep_forever(self.settings.expiry_sweep_s))
            )

    async def stop(self) -> None:
        """Stop taking jobs, let running ones finish (or return them), release everything."""
        with contextlib.suppress(ValueError):
            self.orders.watchers.remove(self.watcher.watch)
        if self.sniper is not None:
            with contextlib.suppress(ValueError):
                self.orders.watchers.remove(self.sniper.watch)
            if self.launch_listener is not None:
                self.launch_listener.unsubscribe(self.sniper.on_launch)
            self.sniper.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._workers_started:
            await self.queue.stop(self.settings.drain_timeout_s)
            self._workers_started = False
        for close in reversed(self._closers):
            try:
                await close()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                log.warning("close_failed", error=repr(exc))
        self._closers.clear()

    async def readiness(self) -> dict[str, str]:
        """Each shared backend's state; in-process ones have none to report."""
        checks: dict[str, str] = {}
        for name, service in self.services.items():
            try:
                state = await asyncio.wait_for(service.health(), timeout=HEALTH_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                state = f"unavailable ({type(exc).__name__})"
            if state is not None:
                checks[name] = state
        return checks
