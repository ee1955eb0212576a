"""The process's one follower of new pools: it reads the launch feed and tells every
subscriber (the sniper trigger) about each launch, in order.

Running the feed is also what teaches this process's venue clients the new
pools (``LaunchWatcher`` adds each to its venue before reporting it), so every
process that routes runs one: API nodes for quotes, workers for orders.
A read that fails is retried after a pause; a subscriber that raises is
logged and the others still hear of the launch.

At start-up the pools launched before this process existed are read once
(``prime``): the venues learn them and ``by_mint`` knows them, but subscribers
are not told, since those launches are history, not news.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from order_engine.ports.launches import LaunchFeed, PoolLaunch

log = structlog.get_logger(__name__)

Subscriber = Callable[[PoolLaunch], Awaitable[None]]
RETRY_S = 1.0
KEPT_LAUNCHES = 10_000  # the catalog's bound: the newest launches, by mint


class LaunchListener:
    def __init__(self, feed: LaunchFeed, *, wait_s: float) -> None:
        self.feed = feed
        self.wait_s = wait_s
        self._subscribers: list[Subscriber] = []
        self._kept: deque[PoolLaunch] = deque(maxlen=KEPT_LAUNCHES)
        self.seen = 0

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def by_mint(self, mint: str) -> list[PoolLaunch]:
        """Launches seen (primed ones too) of pools trading ``mint``, oldest first."""
        return [launch for launch in self._kept if mint in (launch.mint_a, launch.mint_b)]

    async def prime(self) -> list[PoolLaunch]:
        """Read the launches so far without telling subscribers."""
        launches = await self.feed.next_launches(0)
        self._kept.extend(launches)
        return launches

    async def catch_up(self) -> list[PoolLaunch]:
        """Read (and announce) whatever launches are there now, without waiting."""
        return await self.run_once(0)

    async def run_once(self, timeout_s: float | None = None) -> list[PoolLaunch]:
        launches = await self.feed.next_launches(self.wait_s if timeout_s is None else timeout_s)
        for launch in launches:
            self.seen += 1
            self._kept.append(launch)
            for subscriber in self._subscribers:
                try:
                    await subscriber(launch)
                except Exception:  # one subscriber's bug must not starve the others
                    log.exception("launch_subscriber_failed", pool=launch.pool)
        return launches

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the chain may be down for a while
                log.warning("launch_feed_failed", error=repr(exc))
                await asyncio.sleep(RETRY_S)
