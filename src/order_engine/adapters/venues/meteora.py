"""Meteora venue client: DLMM pairs, read through the Chain port as the DLMM SDK does.

A snapshot takes two ``getMultipleAccounts`` round trips, as the SDK's quote
path does: the ``LbPair`` accounts with the Clock sysvar (the fee filter and
decay depend on the cluster's time), then the bin arrays around the active bin
that the pair's bitmap marks as holding liquidity, in the swap's direction.
The swap instruction passes the same bin arrays as remaining accounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from order_engine.adapters.venues.base import Delay, PoolBook, VenueUnavailable, require_data
from order_engine.adapters.venues.listing import PoolListing, dlmm_keys
from order_engine.adapters.venues.snapshots import DlmmSnapshot
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex.spl import associated_token_address
from order_engine.dex.sysvar import CLOCK_SYSVAR_ID, decode_clock
from order_engine.domain.routing import PoolQuote, PoolSnapshot
from order_engine.ports.chain import Chain

ARRAYS_AHEAD = 2  # bin arrays fetched beyond the active one, in the swap's direction
ARRAYS_BEHIND = 2  # and behind it: other fills may move the price back before landing


def arrays_for_swap(pair: dlmm.LbPair, swap_for_y: bool) -> list[int]:
    """Bin array indices a swap may walk: the active one, up to ``ARRAYS_AHEAD``
    marked arrays ahead, and up to ``ARRAYS_BEHIND`` behind (the price may move
    back before the transaction lands). A move beyond them makes the swap fail
    with ``BinArrayNotFound``, having executed nothing; the executor re-quotes."""
    active = dlmm.bin_array_index(pair.active_id)
    marked = set(pair.bin_array_indices())
    step = -1 if swap_for_y else 1

    def nearest(direction: int, count: int) -> list[int]:
        side = [i for i in marked if (i - active) * direction > 0]
        return sorted(side, key=lambda i: abs(i - active))[:count]

    return [active, *nearest(step, ARRAYS_AHEAD), *nearest(-step, ARRAYS_BEHIND)]


class MeteoraVenue:
    def __init__(
        self,
        chain: Chain,
        pools: Sequence[PoolListing],
        *,
        delay: Delay | None = None,
        name: str = "meteora",
    ) -> None:
        self._chain = chain
        self._book = PoolBook(name, pools)
        self._delay = delay
        self._name = name
        self._keys = {p.address: dlmm_keys(p) for p in self._book.pools}
        # The last snapshot per (pair, direction), with the account data and clock
        # it was built from: until one of them changes (a trade, a new second),
        # every order routing through the pair gets the same snapshot.
        self._built: dict[tuple[str, str], tuple[tuple[object, ...], DlmmSnapshot]] = {}

    @property
    def name(self) -> str:
        return self._name

    def has_pool(self, mint_a: str, mint_b: str) -> bool:
        return self._book.has_pool(mint_a, mint_b)

    def add_pool(self, pool: PoolListing) -> bool:
        """Route through a pair created after start-up (``LaunchWatcher``)."""
        if not self._book.add(pool):
            return False
        self._keys[pool.address] = dlmm_keys(pool)
        return True

    async def snapshots(self, input_mint: str, output_mint: str) -> list[PoolSnapshot]:
        pools = self._book.for_pair(input_mint, output_mint)
        if not pools:
            return []
        if self._delay is not None:
            await self._delay()
        return await self._read(pools, input_mint, output_mint)

    async def read_pool(self, address: str, input_mint: str, output_mint: str) -> PoolSnapshot:
        """One pool's snapshot from its accounts alone: the chain's round trips, not
        the venue SDK's quote latency (a launch listener that decoded the pool from
        the chain already reads it this way)."""
        (snapshot,) = await self._read([self._book.get(address)], input_mint, output_mint)
        return snapshot

    async def _read(
        self, pools: list[PoolListing], input_mint: str, output_mint: str
    ) -> list[PoolSnapshot]:
        first = await self._chain.get_multiple_accounts(
            [*(p.address for p in pools), str(CLOCK_SYSVAR_ID)]
        )
        try:
            now = decode_clock(require_data(first[-1], "Clock sysvar", self._name)).unix_timestamp
            pairs = [
                dlmm.decode_lb_pair(require_data(d, p.symbol, self._name))
                for p, d in zip(pools, first, strict=False)
            ]
        except ValueError as exc:
            raise VenueUnavailable(f"{self._name}: pair state unreadable: {exc}") from exc
        plans: list[tuple[PoolListing, dlmm.LbPair, bool, list[Pubkey]]] = []
        for pool, pair in zip(pools, pairs, strict=True):
            swap_for_y = output_mint == str(pair.token_y_mint)
            addresses = [
                dlmm.bin_array_address(pool.pubkey, i) for i in arrays_for_swap(pair, swap_for_y)
            ]
            plans.append((pool, pair, swap_for_y, addresses))
        second = await self._chain.get_multiple_accounts(
            [str(a) for plan in plans for a in plan[3]]
        )
        snapshots: list[PoolSnapshot] = []
        at = 0
        for (pool, pair, swap_for_y, addresses), pair_raw in zip(plans, first, strict=False):
            raws = second[at : at + len(addresses)]
            at += len(addresses)
            state = (pair_raw, now, *raws)
            built = self._built.get((pool.address, input_mint))
            if built is not None and built[0] == state:
                snapshots.append(built[1])
                continue
            bins: dict[int, tuple[int, int]] = {}
            present: list[Pubkey] = []
            for address, raw in zip(addresses, raws, strict=True):
                if raw is None:
                    continue
                try:
                    index, _pair, amounts = dlmm.decode_bin_array(raw)
                except ValueError as exc:
                    raise VenueUnavailable(f"{self._name}: bin array unreadable: {exc}") from exc
                lower = index * dlmm.MAX_BIN_PER_ARRAY
                for slot, amount in enumerate(amounts):
                    if amount != (0, 0):
                        bins[lower + slot] = amount
                present.append(address)
            snapshot = DlmmSnapshot(
                venue=self._name,
                pool_id=pool.address,
                input_mint=input_mint,
                output_mint=output_mint,
                swap_for_y=swap_for_y,
                active_id=pair.active_id,
                bin_step=pair.bin_step,
                params=pair.parameters,
                v_params=pair.v_parameters,
                now=now,
                bins=bins,
                bin_arrays=tuple(str(a) for a in present),
            )
            self._built[(pool.address, input_mint)] = (state, snapshot)
            snapshots.append(snapshot)
        return snapshots

    def swap_instruction(self, quote: PoolQuote, *, owner: Pubkey, min_out: int) -> Instruction:
        pool = self._book.get(quote.pool_id)
        keys = self._keys[pool.address]
        if not quote.accounts:
            raise ValueError(
                f"{self._name}: quote for {pool.symbol} carries no bin arrays; expected a quote "
                "from a MeteoraVenue snapshot"
            )
        arrays = [Pubkey.from_string(a) for a in quote.accounts]
        mint_in = Pubkey.from_string(quote.input_mint)
        mint_out = Pubkey.from_string(quote.output_mint)
        return dlmm.swap_instruction(
            keys=keys,
            user_token_in=associated_token_address(owner, mint_in),
            user_token_out=associated_token_address(owner, mint_out),
            user=owner,
            bin_arrays=arrays,
            amount_in=quote.amount_in,
            min_amount_out=min_out,
        )
