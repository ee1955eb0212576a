"""The price watcher: the trigger service of limit orders.

**When it looks.** Pool state changes only at slots (trades land, background
flow moves the pools), so the watcher waits for the chain's next slot
(``Chain.wait_for_slot``, ``slotSubscribe`` semantics), and looks again at
once when an order is placed in this process (a marketable limit fires
without waiting for the market to move). No slot, no work.

**What it keeps.** Per pair, the open limit orders sorted by the output per
input base unit each needs (``minAmountOut / amountIn``), in flat parallel
lists (``bisect``): 100,000 orders cost a few tens of MB, and finding the
candidates of a move is a binary search (O(log n + candidates)).

**How it decides.** An AMM's output is concave in its input and zero at
zero, so the average price it gives can only fall as the amount grows; the
best split or two-hop route over such pools is concave too. One quote of the
pair's *smallest* open amount therefore bounds the price any of its orders
can get: orders needing more are not candidates and cost nothing. Each
candidate, in order of the price it needs, is confirmed with a real route
quote for its whole amount on the same pool state (``Router.planner``: the
pools are read once per pair per slot), and fires when that quote's
expected output reaches its floor (``amount x limitPrice``). A pass over a
pair whose probe price did not change, with no new order, is skipped.

**What fires it.** ``WaitingOrders.trigger`` (the shared core): conditional on
the order still being open, so several watcher processes (each keeps the
whole book) fire each order exactly once between them. The executor then
routes the order as any other, with ``minAmountOut`` floored at the limit.
If the market moved back between the trigger and the landing: when the
executor's own quote is already short of the floor, nothing is signed and
the order goes back to ``open`` (``REARM``) to wait again; when the quote met
it but the transaction lands after the price moved, the venue's
``min_amount_out`` check fails it on chain and the order fails with
``slippage_exceeded`` (a transaction ran and paid its fee; it is never
filled below its price either way).

**Other processes' orders.** Every ``discover_s`` the watcher reads the
orders that became open since it last looked (with a lag for clocks and
commit order): placed elsewhere, or back to ``open`` after firing. Every
``resync_s`` it reloads its whole book, which also drops the orders cancelled
or fired elsewhere. An order it tries to fire that is no
longer open is dropped at once.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog

from order_engine.app.reporting import fmt, ui_amount
from order_engine.app.router import MarketView
from order_engine.app.waiting import WaitingOrders
from order_engine.domain.errors import EngineError
from order_engine.domain.order import Order, OrderKind, OrderStatus
from order_engine.domain.routing import PoolQuote, RoutePlan
from order_engine.domain.tokens import TokenRegistry
from order_engine.ports.chain import Chain
from order_engine.ports.clock import Clock
from order_engine.ports.waiting import WaitingOrderStore

log = structlog.get_logger(__name__)

Pair = tuple[str, str]  # (input mint, output mint)
PAGE = 1_000
FIRE_BATCH = 512  # triggers in flight at once in one pass
# Covers commit latency and clock skew between the accepting process and this one;
# every discovery re-reads this window, so it stays short.
DISCOVERY_LAG = timedelta(seconds=2)
# Float keys only select candidates; every candidate is confirmed exactly. The
# slack keeps an order whose floor rounds to the probe's price a candidate.
_SLACK = 1 + 1e-9


@dataclass(slots=True)
class PairBook:
    """The open limit orders of one pair, sorted by the price each needs."""

    keys: list[float] = field(default_factory=list)  # minAmountOut / amountIn, ascending
    ids: list[UUID] = field(default_factory=list)  # parallel to keys
    amounts: list[int] = field(default_factory=list)  # every amountIn, ascending
    orders: dict[UUID, Order] = field(default_factory=dict)
    changed: bool = True  # an order arrived since the last pass
    last_probe: tuple[int, int] | None = None  # (amount, expected out) of the last pass

    def __len__(self) -> int:
        return len(self.orders)

    def add(self, order: Order) -> None:
        floor = order.min_amount_out
        if floor is None or order.id in self.orders:
            return
        key = floor / order.amount_in
        at = bisect.bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.ids.insert(at, order.id)
        bisect.insort(self.amounts, order.amount_in)
        self.orders[order.id] = order
        self.changed = True

    def remove(self, order_id: UUID) -> None:
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        floor = order.min_amount_out
        assert floor is not None  # noqa: S101 - only orders with a floor are added
        at = bisect.bisect_left(self.keys, floor / order.amount_in)
        while self.ids[at] != order_id:
            at += 1
        del self.keys[at], self.ids[at]
        del self.amounts[bisect.bisect_left(self.amounts, order.amount_in)]

    def candidates(self, best_price: float) -> Iterator[Order]:
        """Orders needing at most ``best_price`` per input unit, cheapest first."""
        end = bisect.bisect_right(self.keys, best_price * _SLACK)
        for order_id in self.ids[:end]:
            order = self.orders.get(order_id)
            if order is not None:
                yield order


class PriceWatcher:
    def __init__(
        self,
        *,
        core: WaitingOrders,
        store: WaitingOrderStore,
        planner: Callable[[str, str], Awaitable[MarketView]],  # Router.planner
        chain: Chain,
        clock: Clock,
        tokens: TokenRegistry,
        discover_s: float = 1.0,
        resync_s: float = 60.0,
    ) -> None:
        self.core = core
        self.store = store
        self.planner = planner
        self.chain = chain
        self.clock = clock
        self.tokens = tokens
        self.discover_s = discover_s
        self.resync_s = resync_s
        self.books: dict[Pair, PairBook] = {}
        self._wake = asyncio.Event()
        self._slot = 0
        self.fired = 0  # orders this watcher fired (the bench reads it)
        self.passes = 0
        core.closed.append(self.forget)

    # --- the book ----------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(book) for book in self.books.values())

    def watch(self, order: Order) -> None:
        """Start watching an open limit order (an order of another kind, or no
        longer open, is ignored or dropped)."""
        if order.kind is not OrderKind.LIMIT:
            return
        if order.status is not OrderStatus.OPEN:
            self.forget(order)
            return
        self.books.setdefault((order.input_mint, order.output_mint), PairBook()).add(order)
        self._wake.set()

    def forget(self, order: Order) -> None:
        book = self.books.get((order.input_mint, order.output_mint))
        if book is not None:
            book.remove(order.id)

    async def load(self) -> int:
        """(Re)load every open limit order from the database: at start, this is how
        a restarted process resumes watching."""
        books: dict[Pair, PairBook] = {}
        after: UUID | None = None
        loaded = 0
        while True:
            page = await self.store.open_orders(OrderKind.LIMIT, after=after, limit=PAGE)
            for order in page:
                books.setdefault((order.input_mint, order.output_mint), PairBook()).add(order)
            loaded += len(page)
            if len(page) < PAGE:
                break
            after = page[-1].id
            await asyncio.sleep(0)  # a large book must not stall the event loop
        self.books = books
        self._wake.set()
        return loaded

    async def discover(self, since_s: float) -> int:
        """Add the orders that became open in the last ``since_s`` seconds (and the
        lag): placed by another process, or back to waiting after firing."""
        since = self.clock.now() - timedelta(seconds=since_s) - DISCOVERY_LAG
        found = 0
        while True:
            page = await self.store.opened_since(OrderKind.LIMIT, since, PAGE)
            for order in page:
                book = self.books.get((order.input_mint, order.output_mint))
                if book is None or order.id not in book.orders:
                    self.watch(order)
                    found += 1
            if len(page) < PAGE or page[-1].updated_at <= since:
                return found
            since = page[-1].updated_at

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until cancelled: load, then one pass per slot (or per new order)."""
        await self.load()
        last_discovery = last_resync = self.clock.monotonic()
        slot_wait: asyncio.Task[int] | None = None
        try:
            while True:
                if slot_wait is None:
                    slot_wait = asyncio.ensure_future(
                        self.chain.wait_for_slot(self._slot, self.discover_s)
                    )
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({slot_wait, woken}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    woken.cancel()
                if slot_wait.done():
                    try:
                        self._slot = slot_wait.result()
                    except Exception as exc:  # noqa: BLE001 - the RPC is down: look again later
                        log.warning("watcher_slot_failed", error=repr(exc))
                        await asyncio.sleep(self.discover_s)
                    slot_wait = None
                self._wake.clear()
                now = self.clock.monotonic()
                try:
                    if now - last_resync >= self.resync_s:
                        await self.load()
                        last_resync = last_discovery = now
                    elif now - last_discovery >= self.discover_s:
                        await self.discover(now - last_discovery)
                        last_discovery = now
                    await self.check(self._slot, observed_at=now)
                except Exception as exc:  # noqa: BLE001 - a store or venue outage: next slot
                    log.warning("watcher_pass_failed", error=repr(exc))
        finally:
            if slot_wait is not None:
                slot_wait.cancel()
                with contextlib.suppress(BaseException):
                    await slot_wait

    async def check(self, slot: int, *, observed_at: float | None = None) -> int:
        """One pass over every pair; returns how many orders it fired."""
        self.passes += 1
        observed = self.clock.monotonic() if observed_at is None else observed_at
        fired = 0
        for pair, book in list(self.books.items()):
            if not book:
                continue
            try:
                fired += await self._check_pair(pair, book, slot, observed)
            except EngineError as exc:  # this pair's venues are down: the others go on
                log.warning("watcher_pair_failed", pair=pair, error=repr(exc))
        return fired

    async def _check_pair(self, pair: Pair, book: PairBook, slot: int, observed: float) -> int:
        market = await self.planner(*pair)
        probe = book.amounts[0]
        try:
            probe_out = market.plan(probe, 1).expected_out
        except EngineError:
            return 0  # not even the smallest order can be filled now
        if not book.changed and book.last_probe == (probe, probe_out):
            return 0  # the market did not move for this pair, and no order arrived
        book.changed = False
        book.last_probe = (probe, probe_out)
        # The bound allows for integer rounding at the probe's size: an output
        # floored by up to one unit, an input (fee) rounded by up to two.
        best = (probe_out + 1) / max(probe - 2, 1)
        due: list[tuple[Order, dict[str, Any]]] = []
        for order in list(book.candidates(best)):
            floor = order.min_amount_out
            assert floor is not None  # noqa: S101 - the book holds orders with a floor
            # The best single pool is a lower bound on the best route, and costs two
            # pool evaluations instead of a split search: enough for most candidates.
            single = market.best_single(order.amount_in)
            if single is not None and single.amount_out >= floor:
                due.append((order, self._fired_details(order, single, slot)))
                continue
            try:
                plan = market.plan(order.amount_in, order.slippage_bps)
            except EngineError:
                continue  # no route fills the whole amount now
            if plan.expected_out >= floor:
                due.append((order, self._fired_details(order, plan, slot)))
        fired = 0
        # Fired together, so that their writes share commits (the SQLite group
        # writer, PostgreSQL's pool): k crossings cost about k/batch commits.
        for start in range(0, len(due), FIRE_BATCH):
            chunk = due[start : start + FIRE_BATCH]
            for order, _ in chunk:
                book.remove(order.id)
            results = await asyncio.gather(
                *(self.core.trigger(o, d, observed_at=observed) for o, d in chunk),
                return_exceptions=True,
            )
            failure: BaseException | None = None
            for (order, _), result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    book.add(order)  # still open as far as we know: next pass tries again
                    failure = result
                elif result is not None:
                    fired += 1
                    self.fired += 1
            if failure is not None:
                raise failure
        return fired

    def _fired_details(
        self, order: Order, seen: RoutePlan | PoolQuote, slot: int
    ) -> dict[str, Any]:
        """What fired it: the whole amount's output on the route (or pool) quoted."""
        token_in = self.tokens.by_mint(order.input_mint)
        token_out = self.tokens.by_mint(order.output_mint)
        if isinstance(seen, PoolQuote):
            out, dex, pools = seen.amount_out, seen.venue, [seen.pool_id]
        else:
            out, dex, pools = (
                seen.expected_out,
                seen.venue,
                [leg.quote.pool_id for leg in seen.legs],
            )
        price = token_out.to_ui(out) / token_in.to_ui(order.amount_in)
        return {
            "trigger": "price",
            "priceSeen": fmt(price.quantize(Decimal(1).scaleb(-token_out.decimals))),
            "expectedAmountOut": ui_amount(token_out, out),
            "expectedAmountOutRaw": str(out),
            "minAmountOutRaw": str(order.min_amount_out),
            "dex": dex,
            "pools": pools,
            "slot": slot,
        }
