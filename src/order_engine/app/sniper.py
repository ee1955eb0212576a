"""The launch listener's trigger: sniper orders fire on the first new pool of their
pair that passes their filters.

**What it hears.** ``LaunchListener`` tells it of every pool the chain shows
being created (``LaunchFeed``: program logs in process, polling over
JSON-RPC). Only launches after an order was placed count: a sniper waits for
the *next* pool of its pair, and a pool that already trades is no launch.

**What it keeps.** Per pair ``(input mint, output mint)``, the open sniper
orders, loaded from the database at start (a restarted process resumes), the
ones placed elsewhere found every ``discover_s``, the whole book reloaded
every ``resync_s``.

**How it decides.** For a launch of a pair with orders: the static filters
(mint and freeze authority, the input side's liquidity; ``sniper_filters``)
from what the feed read, then the price impact of each order's whole amount on
the new pool (one snapshot of the pool per launch). An order that passes is
fired through ``WaitingOrders.trigger`` (the shared core: exactly once, with
the launch's pool and slot in the ``triggered`` event), in order of priority
fee, highest first, then age; one that fails gets an ``open`` event naming the
filter and stays open for the next pool. A pool that opens for swaps later
(Raydium CPMM's ``open_time``) is waited for, slot by slot, before the orders
fire, so that their swaps do not land before it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog

from order_engine.app.reporting import ui_amount
from order_engine.app.sniper_filters import (
    SniperFilters,
    Verdict,
    check_impact,
    check_static,
    trades_pair,
)
from order_engine.app.waiting import WaitingOrders
from order_engine.dex.sysvar import CLOCK_SYSVAR_ID, decode_clock
from order_engine.domain.errors import EngineError, StaleWrite
from order_engine.domain.order import Order, OrderKind, OrderStatus, Trigger
from order_engine.domain.routing import PoolSnapshot
from order_engine.domain.terms import SniperTerms
from order_engine.domain.tokens import TokenRegistry
from order_engine.ports.bus import EventBus
from order_engine.ports.chain import Chain
from order_engine.ports.clock import Clock
from order_engine.ports.launches import LaunchFeed, PoolLaunch
from order_engine.ports.repository import OrderRepository
from order_engine.ports.waiting import WaitingOrderStore

log = structlog.get_logger(__name__)

Pair = tuple[str, str]
PAGE = 1_000
DISCOVERY_LAG = timedelta(seconds=5)
OPEN_WAIT_SLOTS = 20  # a pool opening later than this many slots is not waited for
OPEN_WAIT_S = 2.0  # per slot, at most


def filters_of(order: Order) -> SniperFilters:
    terms = order.terms if isinstance(order.terms, SniperTerms) else SniperTerms()
    return SniperFilters(
        min_liquidity=terms.min_liquidity,
        require_mint_authority_revoked=terms.require_mint_authority_revoked,
        require_freeze_authority_revoked=terms.require_freeze_authority_revoked,
        max_price_impact_bps=order.max_price_impact_bps,
    )


def _bid(order: Order) -> tuple[int, float]:
    """Sort key: the highest fixed priority fee first ("auto" counts as zero here,
    the executor prices it), then the oldest order."""
    fee = order.priority_fee
    price = 0 if fee is None or fee.micro_lamports is None else fee.micro_lamports
    return (-price, order.created_at.timestamp())


class SniperWatcher:
    def __init__(
        self,
        *,
        core: WaitingOrders,
        store: WaitingOrderStore,
        repo: OrderRepository,
        bus: EventBus,
        feed: LaunchFeed,
        chain: Chain,
        clock: Clock,
        tokens: TokenRegistry,
        discover_s: float = 1.0,
        resync_s: float = 60.0,
    ) -> None:
        self.core = core
        self.store = store
        self.repo = repo
        self.bus = bus
        self.feed = feed
        self.chain = chain
        self.clock = clock
        self.tokens = tokens
        self.discover_s = discover_s
        self.resync_s = resync_s
        self.books: dict[Pair, dict[UUID, Order]] = {}
        self.fired = 0
        self.refused = 0
        self._deciding: set[asyncio.Task[None]] = set()
        core.closed.append(self.forget)

    # --- the book ----------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(book) for book in self.books.values())

    def watch(self, order: Order) -> None:
        if order.kind is not OrderKind.SNIPER:
            return
        if order.status is not OrderStatus.OPEN:
            self.forget(order)
            return
        self.books.setdefault((order.input_mint, order.output_mint), {})[order.id] = order

    def forget(self, order: Order) -> None:
        book = self.books.get((order.input_mint, order.output_mint))
        if book is not None:
            book.pop(order.id, None)

    async def load(self) -> int:
        books: dict[Pair, dict[UUID, Order]] = {}
        after: UUID | None = None
        loaded = 0
        while True:
            page = await self.store.open_orders(OrderKind.SNIPER, after=after, limit=PAGE)
            for order in page:
                books.setdefault((order.input_mint, order.output_mint), {})[order.id] = order
            loaded += len(page)
            if len(page) < PAGE:
                break
            after = page[-1].id
        self.books = books
        return loaded

    async def discover(self, since_s: float) -> int:
        since = self.clock.now() - timedelta(seconds=since_s) - DISCOVERY_LAG
        found = 0
        while True:
            page = await self.store.opened_since(OrderKind.SNIPER, since, PAGE)
            for order in page:
                book = self.books.get((order.input_mint, order.output_mint))
                if book is None or order.id not in book:
                    self.watch(order)
                    found += 1
            if len(page) < PAGE or page[-1].created_at <= since:
                return found
            since = page[-1].created_at

    async def run(self) -> None:
        """Keep the book current until cancelled (launches arrive through ``on_launch``)."""
        await self.load()
        last_resync = self.clock.monotonic()
        while True:
            await asyncio.sleep(self.discover_s)
            try:
                if self.clock.monotonic() - last_resync >= self.resync_s:
                    await self.load()
                    last_resync = self.clock.monotonic()
                else:
                    await self.discover(self.discover_s)
            except Exception as exc:  # noqa: BLE001 - a store outage: the next round
                log.warning("sniper_discovery_failed", error=repr(exc))

    # --- launches ----------------------------------------------------------------------

    async def on_launch(self, launch: PoolLaunch) -> None:
        """The listener's callback: decide the launch in its own task, so that a pool
        that opens later (waited for) holds up no other launch."""
        task = asyncio.create_task(self._decide_logged(launch), name=f"sniper:{launch.pool}")
        self._deciding.add(task)
        task.add_done_callback(self._deciding.discard)

    def close(self) -> None:
        for task in self._deciding:
            task.cancel()

    async def settle(self) -> None:
        """Wait for every launch being decided (tests, shutdown)."""
        while self._deciding:
            await asyncio.gather(*self._deciding, return_exceptions=True)

    async def _decide_logged(self, launch: PoolLaunch) -> None:
        try:
            await self.decide(launch)
        except Exception:  # a store or venue outage: the orders stay open
            log.exception("sniper_launch_failed", pool=launch.pool)

    async def decide(self, launch: PoolLaunch) -> int:
        """Decide every open order of the launched pair; returns how many fired."""
        observed = self.clock.monotonic()
        fired = 0
        for pair, book in list(self.books.items()):
            if not book or not trades_pair(launch, *pair):
                continue
            orders = sorted(book.values(), key=_bid)
            if launch.opens_at is not None:
                await self._until_open(launch)
            snapshot = await self._snapshot(launch, *pair)
            for order in orders:
                verdict = check_static(
                    launch, filters_of(order), input_mint=pair[0], output_mint=pair[1]
                )
                if verdict.passed:
                    verdict = self._impact(snapshot, order)
                if not verdict.passed:
                    self.refused += 1
                    await self._note(order, launch, verdict)
                    continue
                book.pop(order.id, None)
                details = self._fired_details(order, launch, verdict)
                try:
                    triggered = await self.core.trigger(order, details, observed_at=observed)
                except Exception:
                    book[order.id] = order  # still open as far as we know
                    raise
                if triggered is not None:
                    fired += 1
                    self.fired += 1
        return fired

    def _impact(self, snapshot: PoolSnapshot | str, order: Order) -> Verdict:
        if isinstance(snapshot, str):
            return Verdict("maxPriceImpactBps", f"the new pool could not be quoted: {snapshot}")
        return check_impact(snapshot, order.amount_in, order.max_price_impact_bps)

    async def _snapshot(
        self, launch: PoolLaunch, mint_in: str, mint_out: str
    ) -> PoolSnapshot | str:
        try:
            return await self.feed.pool_snapshot(launch, mint_in, mint_out)
        except EngineError as exc:
            return exc.message
        except KeyError as exc:  # the venue client does not list it (yet)
            return str(exc)

    async def _until_open(self, launch: PoolLaunch) -> None:
        """Wait, a block at a time, until the chain clock is past the pool's open
        time: a swap landing in the next block then finds the pool open."""
        assert launch.opens_at is not None  # noqa: S101 - checked by the caller
        for _ in range(OPEN_WAIT_SLOTS):
            (raw,) = await self.chain.get_multiple_accounts([str(CLOCK_SYSVAR_ID)])
            clock = None if raw is None else decode_clock(raw)
            if clock is None or clock.unix_timestamp >= launch.opens_at:
                return
            await self.chain.wait_for_block_height(clock.slot, OPEN_WAIT_S)

    async def _note(self, order: Order, launch: PoolLaunch, verdict: Verdict) -> None:
        """An ``open`` event saying which filter the pool failed; the order waits on."""
        current = await self.repo.get(order.id)
        if current is None or current.status is not OrderStatus.OPEN:
            self.forget(order)
            return
        event = current.apply(
            Trigger.NOTE,
            self.clock.now(),
            {
                "waitingFor": "pool: a new pool for the output token that passes the filters",
                "poolRejected": launch.pool,
                "dex": launch.venue,
                "slot": launch.slot,
                "failedFilter": verdict.failed,
                "reason": verdict.reason,
            },
        )
        try:
            await self.repo.record(current, event)
        except StaleWrite:
            return  # it moved on meanwhile (fired elsewhere, cancelled): nothing to say
        book = self.books.get((order.input_mint, order.output_mint))
        if book is not None and order.id in book:
            book[order.id] = current
        with contextlib.suppress(Exception):
            await self.bus.publish(event)

    def _fired_details(self, order: Order, launch: PoolLaunch, verdict: Verdict) -> dict[str, Any]:
        details: dict[str, Any] = {
            "trigger": "pool",
            "pool": launch.pool,
            "dex": launch.venue,
            "poolKind": launch.kind,
            "slot": launch.slot,  # the pool's creation slot: what the trigger saw
            "poolTxHash": launch.signature,
            "seenSlot": launch.seen_slot,
        }
        token_in = self.tokens.by_mint(order.input_mint)
        depth = launch.reserves.get(order.input_mint)
        if depth is not None:
            details["liquidity"] = ui_amount(token_in, depth)
        if verdict.price_impact_bps is not None:
            details["priceImpactBps"] = f"{verdict.price_impact_bps:.2f}"
        return details
