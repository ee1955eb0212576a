"""The composition root: the one place where adapters are chosen and wired.

| Port       | Embedded (default)        | Distributed                                  |
|------------|---------------------------|----------------------------------------------|
| repository | SQLite (``DATABASE_URL``) | PostgreSQL (``DATABASE_URL=postgresql://``)  |
| queue      | in-process                | SAQ on Redis (``REDIS_URL``)                 |
| bus        | in-process                | Redis pub/sub, one connection per process    |
| chain      | in-process simulator      | JSON-RPC at ``SOLANA_RPC_URL``               |
| rate limit | in-process token buckets  | Redis (one Lua token bucket per API key)     |
| ws tickets | in-process                | Redis (``GETDEL``: single use across nodes)  |

Each backend is chosen independently from ``Settings``. A process plays a
``role``: ``all`` (``serve``: API, workers and, without ``SOLANA_RPC_URL``,
the simulator), ``api`` (HTTP and WebSocket only) or ``worker`` (jobs only).

This module only chooses and wires; starting, checking and stopping what it
wired is the runtime's (``runtime.py`` ``Engine``), through the ports.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid

from solders.keypair import Keypair

from order_engine.adapters.clock import ReferenceClock, SystemClock
from order_engine.adapters.db import (
    Database,
    SqlApiKeyStore,
    SqlIdempotencyStore,
    SqlOrderQueries,
    SqlOrderRepository,
    create_engine,
    run_migrations_async,
)
from order_engine.adapters.db.unit_of_work import SqlUnitOfWork
from order_engine.adapters.db.waiting import SqlWaitingOrders
from order_engine.adapters.memory import InMemoryEventBus, InMemoryJobQueue
from order_engine.adapters.memory.ratelimit import InMemoryRateLimiter
from order_engine.adapters.memory.tickets import InMemoryTicketStore
from order_engine.adapters.metrics import PrometheusMetrics
from order_engine.adapters.outages import BACKEND_ERRORS, backend_unavailable
from order_engine.adapters.redis import RedisEventBus, SaqJobQueue, SaqQueueConfig
from order_engine.adapters.redis.ratelimit import RedisRateLimiter
from order_engine.adapters.redis.tickets import RedisTicketStore
from order_engine.adapters.rpc import RpcChain, ensure_funded, fetch_pool_listing
from order_engine.adapters.rpc.funding import RpcLaunches
from order_engine.adapters.venues import MeteoraVenue, RaydiumVenue
from order_engine.adapters.venues.launch_watcher import LaunchWatcher
from order_engine.adapters.wallet import load_or_create_keypair
from order_engine.app.access import Authenticator
from order_engine.app.admission import Backpressure
from order_engine.app.executor import ExecutorConfig, OrderExecutor
from order_engine.app.gateway import Gateway
from order_engine.app.idempotency import Idempotency
from order_engine.app.launch_listener import LaunchListener
from order_engine.app.launches import LaunchService, SimLaunches
from order_engine.app.live import StreamTailer
from order_engine.app.orders import OrderService
from order_engine.app.price_watcher import PriceWatcher
from order_engine.app.quotes import QuoteService
from order_engine.app.reconciler import Reconciler
from order_engine.app.reporting import Presenter
from order_engine.app.router import Router
from order_engine.app.sniper import SniperWatcher
from order_engine.app.txbuilder import FeePolicy
from order_engine.app.waiting import WaitingOrders
from order_engine.domain.order import OrderKind
from order_engine.domain.routing import RouterConfig
from order_engine.domain.tokens import SOL, USDC, TokenRegistry
from order_engine.ports.bus import EventBus
from order_engine.ports.chain import Chain
from order_engine.ports.clock import Clock
from order_engine.ports.queue import JobQueue
from order_engine.ports.ratelimit import RateLimiter
from order_engine.ports.tickets import TicketStore
from order_engine.ports.venue import Venue
from order_engine.runtime import Background, Closer, Engine, Role
from order_engine.settings import Settings
from order_engine.sim import SimConfig, Simulator, build_simulator
from order_engine.sim.launches import InProcessLaunches

__all__ = [
    "BACKEND_ERRORS",
    "WALLET_FUNDING",
    "Engine",
    "Role",
    "backend_unavailable",
    "build_engine",
    "engine_clock",
]

SLOT_S = 0.4
MIN_POLL_S = 0.002  # at time scale 0 over JSON-RPC: yield between status polls without spinning
ZERO_SCALE_WAIT_SLOTS = 10  # in-process, time scale 0: slots a worker waits per look
ZERO_SCALE_RPC_POLL_SLOTS = 2  # over JSON-RPC, time scale 0: slots between status polls
# Genesis balances of the engine wallet on the simulated cluster (UI units).
WALLET_FUNDING = {
    "SOL": 50_000_000,
    "USDC": 5_000_000_000,
    "USDT": 5_000_000_000,
    "BONK": 10**13,
    "JUP": 5_000_000_000,
}


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _queue(settings: Settings, closers: list[Closer]) -> JobQueue:
    redis_url = settings.effective_redis_url
    attempts, seed = settings.max_attempts, settings.sim_seed
    base, cap = settings.backoff_base_ms / 1000, settings.backoff_max_ms / 1000
    queue: JobQueue
    if redis_url:
        config = SaqQueueConfig(
            name=settings.queue_name,
            max_attempts=attempts,
            backoff_base=base,
            backoff_max=cap,
            seed=seed,
            heartbeat_s=settings.job_heartbeat_s,
            max_connections=settings.redis_max_connections,
        )
        queue = SaqJobQueue.from_url(redis_url, config)
    else:
        queue = InMemoryJobQueue(attempts, base, cap, seed=seed)
    closers.append(queue.close)
    return queue


def _bus(settings: Settings, closers: list[Closer]) -> EventBus:
    redis_url = settings.effective_redis_url
    bus: EventBus
    if redis_url:
        bus = RedisEventBus.from_url(
            redis_url,
            prefix=settings.bus_prefix,
            client_name=f"bus:{worker_identity()}",
            max_connections=settings.redis_max_connections,
        )
    else:
        bus = InMemoryEventBus()
    closers.append(bus.close)
    return bus


def _funding(tokens: TokenRegistry) -> tuple[int, dict[str, int]]:
    lamports = tokens.resolve("SOL").to_base(WALLET_FUNDING["SOL"])
    amounts = {
        tokens.resolve(sym).mint: tokens.resolve(sym).to_base(amount)
        for sym, amount in WALLET_FUNDING.items()
        if sym != "SOL"
    }
    return lamports, amounts


async def _chain(
    settings: Settings, tokens: TokenRegistry, wallet: Keypair | None, closers: list[Closer]
) -> tuple[Chain, list[Venue], Simulator | None, SimLaunches | None]:
    """The chain and the venue clients reading pool state through it."""
    if settings.solana_rpc_url:
        url = settings.solana_rpc_url
        rpc = RpcChain(url, timeout_s=settings.rpc_timeout_s)
        closers.append(rpc.close)
        listing = await fetch_pool_listing(url)
        if wallet is not None:
            lamports, amounts = _funding(tokens)
            await ensure_funded(url, wallet.pubkey(), lamports=lamports, tokens=amounts)
        venues: list[Venue] = [
            RaydiumVenue(rpc, [p for p in listing if p.venue == "raydium"]),
            MeteoraVenue(rpc, [p for p in listing if p.venue == "meteora"]),
        ]
        simulated = (await rpc.get_version()).get("order-engine-sim") is True
        return rpc, venues, None, RpcLaunches(rpc) if simulated else None
    simulator = build_simulator(
        SimConfig(
            time_scale=settings.sim_time_scale,
            seed=settings.sim_seed,
            transient_failure_rate=settings.sim_transient_failure_rate,
            zero_scale_slot_s=settings.sim_zero_scale_slot_s,
            launch_every_slots=settings.sim_launch_every_slots,
        )
    )
    if wallet is not None:
        lamports, amounts = _funding(tokens)
        simulator.fund(wallet.pubkey(), lamports=lamports, tokens=amounts)
    closers.append(simulator.stop)
    return simulator.chain, simulator.venues, simulator, InProcessLaunches(simulator.launchpad)


def _poll_interval_s(settings: Settings) -> float:
    """How long a worker waits on one signature before it re-checks expiry and
    rebroadcasts: about a slot. At time scale 0 the in-process simulator notifies
    the worker when its transaction confirms, so the wait can span a few slots;
    a JSON-RPC chain is polled, so it stays short there."""
    if settings.sim_time_scale > 0:
        return SLOT_S * settings.sim_time_scale
    slot_s = settings.sim_zero_scale_slot_s
    if slot_s is None:
        return MIN_POLL_S  # polls drive the clock: keep them frequent
    if settings.solana_rpc_url:
        # Polled over JSON-RPC while the chain's own clock runs: about a slot.
        return max(MIN_POLL_S, ZERO_SCALE_RPC_POLL_SLOTS * slot_s)
    return ZERO_SCALE_WAIT_SLOTS * slot_s


def _launch_listener(
    settings: Settings,
    chain: Chain,
    venues: list[Venue],
    tokens: TokenRegistry,
    simulator: Simulator | None,
) -> LaunchListener:
    """The process's follower of new pools; in process, the launchpad names its tokens."""
    names = None
    if simulator is not None:
        pad = simulator.launchpad

        def names(mint: str) -> str | None:
            token = pad.tokens.get(mint)
            return None if token is None else token.symbol

    feed = LaunchWatcher(chain, venues, tokens, names=names)
    return LaunchListener(feed, wait_s=_launch_wait_s(settings))


def _launch_wait_s(settings: Settings) -> float:
    """How long one look at the launch feed waits. In process a launch wakes it at
    once; over JSON-RPC it is a poll, about once a slot (at most every 100 ms)."""
    if not settings.solana_rpc_url:
        return 1.0
    slot_s = SLOT_S * settings.sim_time_scale or (settings.sim_zero_scale_slot_s or 0.0)
    return max(0.1, slot_s)


def _rate_limiter(settings: Settings, closers: list[Closer]) -> RateLimiter | None:
    if settings.rate_limit_per_s <= 0:
        return None
    limiter: RateLimiter
    redis_url = settings.effective_redis_url
    if redis_url:  # shared by every API node
        limiter = RedisRateLimiter.from_url(
            redis_url,
            settings.rate_limit_per_s,
            settings.rate_limit_burst,
            prefix=settings.bus_prefix,
            max_connections=settings.redis_max_connections,
        )
    else:
        limiter = InMemoryRateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    closers.append(limiter.close)
    return limiter


def _tickets(settings: Settings, closers: list[Closer]) -> TicketStore:
    """Where WebSocket tickets live: shared by every API node through Redis, or this
    one process's memory when it is the only one."""
    redis_url = settings.effective_redis_url
    tickets: TicketStore
    if redis_url:
        tickets = RedisTicketStore.from_url(
            redis_url, prefix=settings.bus_prefix, max_connections=settings.redis_max_connections
        )
    else:
        tickets = InMemoryTicketStore()
    closers.append(tickets.close)
    return tickets


def _gateway(
    settings: Settings,
    *,
    db: Database,
    queue: JobQueue,
    quotes: QuoteService,
    clock: Clock,
    metrics: PrometheusMetrics,
    closers: list[Closer],
) -> Gateway:
    return Gateway(
        auth=Authenticator(
            SqlApiKeyStore(db),
            mode=settings.auth_mode,
            cache_s=settings.auth_cache_s,
            clock=clock,
            tickets=_tickets(settings, closers),
            ticket_ttl_s=settings.ws_ticket_ttl_s,
        ),
        idempotency=Idempotency(
            SqlIdempotencyStore(db),
            clock,
            retention_h=settings.idempotency_retention_h,
            in_flight_s=settings.idempotency_in_flight_s,
        ),
        queries=SqlOrderQueries(db),
        quotes=quotes,
        backpressure=Backpressure(
            queue,
            max_depth=settings.max_queue_depth,
            cache_s=settings.queue_depth_cache_s,
            max_wait_s=settings.max_queue_wait_ms / 1000,
            clock=clock,
        ),
        rate_limiter=_rate_limiter(settings, closers),
        metrics=metrics,
    )


async def engine_clock(db: Database, local: Clock | None = None) -> Clock:
    """The time every worker's leases are measured in. On PostgreSQL, workers on
    several hosts share the database: its server's clock, so that a host whose
    clock is skewed neither takes live leases early nor holds a dead worker's
    ones for as long as it is ahead (``ReferenceClock``). A SQLite file has one
    host: its clock."""
    if not db.is_postgres:
        return local or SystemClock()
    clock = ReferenceClock(db.server_time, local=local)
    await clock.sync()
    return clock


async def build_engine(settings: Settings, *, role: Role = "all", migrate: bool = True) -> Engine:
    """Wire one process. ``migrate`` applies migrations first (``serve`` does; the
    distributed ``api``/``worker`` commands leave that to ``order-engine migrate``)."""
    tokens = TokenRegistry()
    closers: list[Closer] = []
    try:
        if migrate:
            await run_migrations_async(settings.database_url)
        pool = (
            {}
            if settings.is_sqlite
            else {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
        )
        db = Database(create_engine(settings.database_url, **pool))
        closers.append(db.close)
        clock = await engine_clock(db)
        background: list[Background] = []
        if isinstance(clock, ReferenceClock):  # PostgreSQL's time, resynced as it runs
            background.append(clock.keep_synced)
        repo = SqlOrderRepository(db)
        bus = _bus(settings, closers)
        queue = _queue(settings, closers)
        runs_workers = role in ("all", "worker")
        wallet = load_or_create_keypair(settings.wallet_path) if runs_workers else None
        chain, venues, simulator, sim_launches = await _chain(settings, tokens, wallet, closers)
    except BaseException:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                await close()
        raise

    router = Router(
        venues,
        timeout_s=settings.venue_timeout_ms / 1000,
        config=RouterConfig(),
        intermediates={SOL.mint: SOL.symbol, USDC.mint: USDC.symbol},
    )
    presenter = Presenter(tokens)
    metrics = PrometheusMetrics()
    gateway = _gateway(
        settings,
        db=db,
        queue=queue,
        quotes=QuoteService(router, presenter, clock),
        clock=clock,
        metrics=metrics,
        closers=closers,
    )
    streams = StreamTailer(
        bus,
        gateway.queries,
        buffer_events=settings.stream_buffer_events,
        sweep_s=settings.stream_sweep_s,
    )
    closers.append(streams.close)  # closers run in reverse: before the bus and the database
    executor = None
    if wallet is not None:
        executor = OrderExecutor(
            repo=repo,
            bus=bus,
            router=router,
            chain=chain,
            wallet=wallet,
            clock=clock,
            presenter=presenter,
            metrics=metrics,
            config=ExecutorConfig(
                worker_id=worker_identity(),
                max_attempts=settings.max_attempts,
                lease_s=settings.lease_s,
                poll_interval_s=_poll_interval_s(settings),
                max_price_impact_bps=settings.max_price_impact_bps,
                fees=FeePolicy(
                    compute_units_per_leg=settings.compute_unit_limit,
                    micro_lamports_per_cu=settings.compute_unit_price,
                ),
            ),
        )
    orders = OrderService(
        repo=repo,
        units=lambda: SqlUnitOfWork(repo),
        bus=bus,
        queue=queue,
        clock=clock,
        tokens=tokens,
        router=router,
        default_slippage_bps=settings.default_slippage_bps,
        metrics=metrics,
    )
    orders.kinds = frozenset({OrderKind.MARKET, OrderKind.LIMIT, OrderKind.SNIPER})
    waiting = WaitingOrders(
        repo=repo,
        store=SqlWaitingOrders(db),
        bus=bus,
        queue=queue,
        clock=clock,
        worker_id=worker_identity(),
        metrics=metrics,
    )
    watcher = PriceWatcher(
        core=waiting,
        store=waiting.store,
        planner=router.planner,
        chain=chain,
        clock=clock,
        tokens=tokens,
        discover_s=settings.watch_discover_s,
        resync_s=settings.watch_resync_s,
    )
    reconciler = Reconciler(
        repo=repo,
        queue=queue,
        clock=clock,
        interval_s=settings.reconcile_interval_s,
        stale_after_s=settings.reconcile_stale_s,
    )
    launches = None if sim_launches is None else LaunchService(sim_launches, tokens)
    listener = _launch_listener(settings, chain, venues, tokens, simulator)
    router.discover = listener.catch_up
    sniper = SniperWatcher(
        core=waiting,
        store=waiting.store,
        repo=repo,
        bus=bus,
        feed=listener.feed,
        chain=chain,
        clock=clock,
        tokens=tokens,
        discover_s=settings.watch_discover_s,
        resync_s=settings.watch_resync_s,
    )
    return Engine(
        settings=settings,
        launches=launches,
        launch_listener=listener,
        sniper=sniper,
        role=role,
        tokens=tokens,
        repo=repo,
        bus=bus,
        queue=queue,
        chain=chain,
        router=router,
        orders=orders,
        reconciler=reconciler,
        waiting=waiting,
        watcher=watcher,
        gateway=gateway,
        streams=streams,
        metrics=metrics,
        clock=clock,
        executor=executor,
        wallet=wallet,
        simulator=simulator,
        services={"database": db, "bus": bus, "queue": queue},
        background=background,
        _closers=closers,
    )
