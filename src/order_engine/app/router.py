"""Router service: fetch pool snapshots from every venue at once, then plan.

A venue that errors or exceeds its timeout is skipped and reported in
``RouteDecision.skipped``; only when *every* venue that has pools for the pair
fails is the error transient (retry later). A pair no venue lists is a
permanent ``no_route``. A pool that answered but cannot fill its hop's whole
amount on its own has no single-pool quote (it may still take a split leg);
``RouteDecision.unfilled`` says which and why, so the routing record accounts
for every pool that was asked.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from order_engine.domain.errors import (
    ErrorCode,
    InsufficientLiquidityError,
    NoRouteError,
    TransientError,
)
from order_engine.domain.routing import (
    PoolQuote,
    PoolSnapshot,
    RoutePlan,
    RouterConfig,
    best_single,
    ensure_plan,
    plan_direct,
    plan_two_hop,
)
from order_engine.ports.venue import Venue

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Unfilled:
    """A pool that quoted, but cannot fill ``amount_in`` on its own."""

    pool: PoolSnapshot
    amount_in: int
    reason: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    plan: RoutePlan
    skipped: dict[str, str] = field(default_factory=dict)  # venue -> why
    unfilled: tuple[Unfilled, ...] = ()


def _unfilled(pools: Sequence[PoolSnapshot], amount_in: int, plan: RoutePlan) -> list[Unfilled]:
    quoted = {q.pool_id for q in plan.alternatives}
    found: list[Unfilled] = []
    for pool in pools:
        if pool.pool_id in quoted:
            continue
        try:
            pool.quote(amount_in)
        except InsufficientLiquidityError as exc:
            found.append(Unfilled(pool, amount_in, exc.message))
    return found


@dataclass(frozen=True, slots=True)
class MarketView:
    """One read of a pair's pools: ``plan(amount, slippage_bps)`` routes any amount
    on that state with no further I/O; ``best_single`` is the best one-pool quote
    (direct pairs only), a cheap lower bound on what ``plan`` would give."""

    plan: Callable[[int, int], RoutePlan]
    direct_pools: tuple[PoolSnapshot, ...] = ()

    def best_single(self, amount_in: int) -> PoolQuote | None:
        quotes = best_single(self.direct_pools, amount_in) if self.direct_pools else []
        return quotes[0] if quotes else None


def _two_hop(
    first: Sequence[PoolSnapshot],
    second: Sequence[PoolSnapshot],
    amount: int,
    slippage: int,
    *,
    via: str,
    pair: str,
) -> RoutePlan:
    plan = plan_two_hop(first, second, amount, slippage, via=via)
    return ensure_plan(plan, pair, had_pools=bool(first and second))


class Router:
    def __init__(
        self,
        venues: Sequence[Venue],
        *,
        timeout_s: float,
        config: RouterConfig,
        intermediates: Mapping[str, str] | None = None,
    ) -> None:
        self.venues = {v.name: v for v in venues}
        self._timeout = timeout_s
        self._config = config
        # mint -> label (a symbol), tried in order as the middle of a two-hop route
        self._intermediates = dict(intermediates or {})
        # Asked to catch up on new pools before a pair is declared routeless: a pool
        # launched a moment ago may be known to another process already (the one
        # that fired a sniper order) and not yet to this one.
        self.discover: Callable[[], Awaitable[object]] | None = None

    def has_route(self, input_mint: str, output_mint: str) -> bool:
        """Whether any direct or two-hop path exists (no I/O): checked at submit."""
        if self._direct(input_mint, output_mint):
            return True
        return any(
            self._direct(input_mint, mid) and self._direct(mid, output_mint)
            for mid in self._intermediates
            if mid not in (input_mint, output_mint)
        )

    def _direct(self, a: str, b: str) -> bool:
        return any(v.has_pool(a, b) for v in self.venues.values())

    async def decide(
        self,
        input_mint: str,
        output_mint: str,
        amount_in: int,
        slippage_bps: int,
        *,
        pool: tuple[str, str] | None = None,
    ) -> RouteDecision:
        """The best route. With ``pool`` (venue, pool id): that one pool, read from
        its accounts (``Venue.read_pool``), when it trades the pair; any other
        answer (not listed, unreadable) falls back to asking every venue."""
        pair = f"{input_mint[:6]}…/{output_mint[:6]}…"
        if self.discover is not None and not self.has_route(input_mint, output_mint):
            await self.discover()
        if pool is not None:
            decided = await self._on_pool(pool, input_mint, output_mint, amount_in, slippage_bps)
            if decided is not None:
                return decided
        if self._direct(input_mint, output_mint):
            pools, skipped = await self._snapshots(input_mint, output_mint)
            plan = ensure_plan(
                plan_direct(pools, amount_in, slippage_bps, self._config),
                pair,
                had_pools=bool(pools),
            )
            return RouteDecision(plan, skipped, tuple(_unfilled(pools, amount_in, plan)))
        for mid in self._intermediates:
            if mid in (input_mint, output_mint):
                continue
            if not (self._direct(input_mint, mid) and self._direct(mid, output_mint)):
                continue
            (first, s1), (second, s2) = await asyncio.gather(
                self._snapshots(input_mint, mid), self._snapshots(mid, output_mint)
            )
            via = self._intermediates[mid]
            plan = ensure_plan(
                plan_two_hop(first, second, amount_in, slippage_bps, via=via),
                pair,
                had_pools=bool(first and second),
            )
            middle = sum(leg.quote.amount_in for leg in plan.hops[1])
            unfilled = _unfilled(first, amount_in, plan) + _unfilled(second, middle, plan)
            return RouteDecision(plan, {**s1, **s2}, tuple(unfilled))
        raise NoRouteError(f"no route for {pair}: no venue lists a pool or a two-hop path")

    async def _on_pool(
        self,
        pool: tuple[str, str],
        input_mint: str,
        output_mint: str,
        amount_in: int,
        slippage_bps: int,
    ) -> RouteDecision | None:
        venue = self.venues.get(pool[0])
        if venue is None or not venue.has_pool(input_mint, output_mint):
            return None
        try:
            async with asyncio.timeout(self._timeout):
                snapshot = await venue.read_pool(pool[1], input_mint, output_mint)
        except (KeyError, TransientError, TimeoutError) as exc:
            log.info("named_pool_unreadable", venue=pool[0], pool=pool[1], error=repr(exc))
            return None
        pair = f"{input_mint[:6]}…/{output_mint[:6]}…"
        plan = ensure_plan(
            plan_direct([snapshot], amount_in, slippage_bps, self._config), pair, had_pools=True
        )
        return RouteDecision(plan, {}, tuple(_unfilled([snapshot], amount_in, plan)))

    async def planner(self, input_mint: str, output_mint: str) -> MarketView:
        """The pair's pools read once, and a function planning any amount (and
        slippage) on that one state, with no further I/O: a caller that must
        quote many sizes against the same market (a trigger service confirming
        its candidates) pays for the reads once. Raises as ``decide`` does; the
        function raises ``InsufficientLiquidityError`` for an amount no route fills.
        """
        pair = f"{input_mint[:6]}…/{output_mint[:6]}…"
        cfg = self._config
        if self._direct(input_mint, output_mint):
            pools, _ = await self._snapshots(input_mint, output_mint)
            return MarketView(
                lambda amount, slippage: ensure_plan(
                    plan_direct(pools, amount, slippage, cfg), pair, had_pools=bool(pools)
                ),
                tuple(pools),
            )
        for mid in self._intermediates:
            if mid in (input_mint, output_mint):
                continue
            if not (self._direct(input_mint, mid) and self._direct(mid, output_mint)):
                continue
            (first, _), (second, _) = await asyncio.gather(
                self._snapshots(input_mint, mid), self._snapshots(mid, output_mint)
            )
            return MarketView(
                functools.partial(_two_hop, first, second, via=self._intermediates[mid], pair=pair)
            )
        raise NoRouteError(f"no route for {pair}: no venue lists a pool or a two-hop path")

    async def _snapshots(
        self, input_mint: str, output_mint: str
    ) -> tuple[list[PoolSnapshot], dict[str, str]]:
        venues = [v for v in self.venues.values() if v.has_pool(input_mint, output_mint)]
        results = await asyncio.gather(
            *(self._one(v, input_mint, output_mint) for v in venues), return_exceptions=True
        )
        pools: list[PoolSnapshot] = []
        skipped: dict[str, str] = {}
        for venue, result in zip(venues, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, (TransientError, TimeoutError)):
                    raise result
                reason = (
                    f"timed out after {self._timeout * 1000:.0f} ms"
                    if isinstance(result, TimeoutError)
                    else f"{result.code.value}: {result.message}"
                )
                skipped[venue.name] = reason
                log.info("venue_skipped", venue=venue.name, reason=reason)
            else:
                pools.extend(result)
        if venues and not pools and skipped:
            raise TransientError(
                "every venue failed to quote: "
                + "; ".join(f"{k}: {v}" for k, v in sorted(skipped.items())),
                code=ErrorCode.VENUE_UNAVAILABLE,
            )
        return pools, skipped

    async def _one(self, venue: Venue, input_mint: str, output_mint: str) -> list[PoolSnapshot]:
        async with asyncio.timeout(self._timeout):
            return await venue.snapshots(input_mint, output_mint)
