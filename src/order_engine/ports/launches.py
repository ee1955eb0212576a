"""Launch feed port: new pools as they come into being on chain.

What a token-launch sniper follows: every pool a venue's program creates, with
what a trader checks before buying (the mints' authorities, the pool's
reserves), read from the chain at the slot the launch was seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from order_engine.domain.routing import PoolSnapshot


@dataclass(frozen=True, slots=True)
class MintInfo:
    """An SPL mint's authorities: ``None`` means revoked (nobody holds it)."""

    decimals: int
    supply: int
    mint_authority: str | None
    freeze_authority: str | None


@dataclass(frozen=True, slots=True)
class PoolLaunch:
    venue: str  # "raydium" | "meteora"
    pool: str  # pool / pair address
    kind: str  # "cpmm" | "dlmm"
    mint_a: str
    mint_b: str
    slot: int  # the slot the pool was created in
    signature: str  # the creating transaction
    seen_slot: int  # the cluster's slot when the launch was read
    reserves: Mapping[str, int] = field(default_factory=dict)  # mint -> base units in the pool
    mints: Mapping[str, MintInfo] = field(default_factory=dict)
    # The chain-clock second from which the pool accepts swaps (Raydium CPMM's
    # open_time), ``None`` when it trades at once.
    opens_at: int | None = None

    def other(self, mint: str) -> str | None:
        """The pool's other mint, ``None`` if ``mint`` is not one of its two."""
        if mint == self.mint_a:
            return self.mint_b
        if mint == self.mint_b:
            return self.mint_a
        return None


class LaunchFeed(Protocol):
    async def pool_snapshot(
        self, launch: PoolLaunch, input_mint: str, output_mint: str
    ) -> PoolSnapshot:
        """The launched pool's current state, read from its accounts (for a filter
        that quotes the order's size on it); ``TransientError`` if unreadable."""
        ...

    async def next_launches(self, timeout_s: float) -> list[PoolLaunch]:
        """Pools created since the previous call (on the first call: every pool
        created so far), oldest first; waits up to ``timeout_s`` for one when there
        are none. The venues can route through each pool by the time it is returned.
        Raises ``TransientError`` when the chain cannot be read."""
        ...
