"""Venue port: a DEX as its SDK presents it.

``snapshots`` reads pool accounts (I/O, may fail transiently) and returns pure
``PoolSnapshot`` objects that quote locally; ``swap_instruction`` encodes the
venue program's swap instruction for a chosen leg.
"""

from __future__ import annotations

from typing import Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from order_engine.domain.routing import PoolQuote, PoolSnapshot


class Venue(Protocol):
    @property
    def name(self) -> str:
        """Stable venue name, e.g. ``raydium`` or ``meteora``."""
        ...

    def has_pool(self, mint_a: str, mint_b: str) -> bool:
        """Whether any pool of this venue trades the pair (either direction); no I/O."""
        ...

    async def snapshots(self, input_mint: str, output_mint: str) -> list[PoolSnapshot]:
        """Current state of every pool trading ``input_mint`` for ``output_mint``.

        Raises ``TransientError`` when the venue (or RPC) is unavailable.
        """
        ...

    async def read_pool(self, pool_id: str, input_mint: str, output_mint: str) -> PoolSnapshot:
        """One listed pool's state from its accounts alone: the chain's round trips,
        without the venue API/SDK latency ``snapshots`` pays, for a caller that
        already knows the pool (one just seen created on chain). Raises
        ``KeyError`` for a pool this venue does not list, ``TransientError`` when
        the accounts cannot be read."""
        ...

    def swap_instruction(self, quote: PoolQuote, *, owner: Pubkey, min_out: int) -> Instruction:
        """The venue program's swap-exact-in instruction for one leg."""
        ...
