"""The moving market: reference prices, background flow and arbitrage, per slot.

* Reference prices (USD) follow geometric random walks,
  ``S *= exp(-sigma^2 dt / 2 + sigma sqrt(dt) Z)``, with ``sigma`` the daily
  volatility over ``sqrt(86400 s)`` and ``dt`` one slot of simulated time.
* Background flow: with ``noise_probability`` per pool and slot, a trade in a
  random direction, log-normal in size around a share of the pool's reserve.
* Arbitrage: with ``arbitrage_probability`` per pool and slot, if the pool's
  price after fees is off the reference by more than ``arbitrage_edge_bps``,
  a trade that brings it back to the edge of its fee band (constant product:
  closed form; DLMM: the bins up to the reference price's bin).

All of it trades through the same program handlers as user transactions, from
a well-funded market-maker account, so it moves reserves and bins exactly as
other users' transactions landing in the slot would.

Lazily, per pool: each slot walks the reference prices (and keeps them for
``HISTORY_SLOTS``), but a pool's background flow is applied only when someone
reads or trades the pool (``touch``, which the cluster calls before serving
accounts or executing a transaction), replaying each slot it missed in order,
with the reference prices of that slot and the pool's own random stream. The
pool's state at any read is therefore what eager per-slot flow would have made
it, and an engine pays for the pools it uses, not for every pool every slot. A
pool untouched for more than ``HISTORY_SLOTS`` slots replays only the most
recent ones (its earlier noise is forgotten; the arbitrage replayed in that
window re-anchors it to the reference all the same).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from order_engine.adapters.venues.listing import (
    KIND_AMM_V4,
    KIND_CPMM,
    amm_v4_keys,
    cpmm_keys,
    dlmm_keys,
)
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.meteora_dlmm_math import (
    FEE_PRECISION,
    base_fee_rate,
    fee_for_amount,
    max_amount_in_bin,
    price_from_id,
)
from order_engine.dex.spl import associated_token_address
from order_engine.dex.token_accounts import token_account_amount
from order_engine.sim.builtins import Env, Ix
from order_engine.sim.genesis import PoolRecord, mint_of, price_in_base_units
from order_engine.sim.ledger import Ledger, ProgramError
from order_engine.sim.runtime import run_instruction

SECONDS_PER_DAY = 86_400.0
HISTORY_SLOTS = 1024
DEFAULT_VOLATILITY: Mapping[str, float] = {
    "SOL": 0.04,
    "BONK": 0.10,
    "JUP": 0.06,
    "USDC": 0.0005,
    "USDT": 0.0005,
}


@dataclass(frozen=True, slots=True)
class MarketParams:
    daily_volatility: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_VOLATILITY))
    arbitrage_probability: float = 0.3
    arbitrage_edge_bps: float = 2.0
    noise_probability: float = 0.3
    noise_share_cp: float = 0.000_1  # median trade / input reserve, constant-product pools
    noise_share_dlmm: float = 0.005  # median trade / input reserve, DLMM pairs
    noise_sigma: float = 1.0


@dataclass(frozen=True, slots=True)
class PoolView:
    """A pool as the market sees it: price of A in B (base units), fee, reserves."""

    price: float
    fee: float
    reserve_a: int
    reserve_b: int


class Market:
    def __init__(
        self,
        ledger: Ledger,
        pools: Sequence[PoolRecord],
        prices: Mapping[str, float],
        *,
        params: MarketParams,
        rng: random.Random,
        trader: Pubkey,
        slot_seconds: float,
    ) -> None:
        self.ledger = ledger
        self.pools = list(pools)
        self.prices = dict(prices)
        self.params = params
        self.trader = trader
        self._rng = rng
        self._dt = slot_seconds
        self._trades = 0
        self.slot = 0
        # Per recent slot: its Env (the programs read the clock) and reference prices.
        self._history: dict[int, tuple[Env, dict[str, float]]] = {}
        # Each pool's flow draws from its own stream, so that when a pool is
        # caught up does not change what it draws.
        self._pool_rng = [random.Random(rng.getrandbits(64)) for _ in self.pools]
        self._flowed_to = [0] * len(self.pools)
        self._by_account: dict[Pubkey, int] = {}
        for index, pool in enumerate(self.pools):
            listing = pool.listing
            for key in (listing.pubkey, *map(Pubkey.from_string, listing.keys.values())):
                self._by_account.setdefault(key, index)
            for key in pool.bin_arrays:
                self._by_account.setdefault(key, index)

    @property
    def trades(self) -> int:
        """Background trades so far, every pool caught up to the current slot."""
        self.touch_all()
        return self._trades

    # --- reference prices --------------------------------------------------------------

    def reference(self, base: str, quote: str) -> float:
        """Price of ``base`` in ``quote`` base units per ``base`` base unit."""
        return price_in_base_units(base, quote, self.prices)

    def _walk(self) -> None:
        for symbol, daily in self.params.daily_volatility.items():
            if symbol not in self.prices:
                continue
            sigma = daily / math.sqrt(SECONDS_PER_DAY)
            shock = self._rng.gauss(0.0, 1.0)
            drift = -0.5 * sigma * sigma * self._dt
            self.prices[symbol] *= math.exp(drift + sigma * math.sqrt(self._dt) * shock)

    # --- per slot ----------------------------------------------------------------------

    def on_slot(self, env: Env) -> None:
        self._walk()
        self.slot = env.slot
        self._history[env.slot] = (env, dict(self.prices))
        self._history.pop(env.slot - HISTORY_SLOTS, None)

    def touch(self, keys: Iterable[Pubkey]) -> None:
        """Bring the pools owning any of ``keys`` up to the current slot."""
        by_account = self._by_account
        seen: set[int] = set()
        for key in keys:
            index = by_account.get(key)
            if index is not None and index not in seen:
                seen.add(index)
                self._catch_up(index)

    def touch_all(self) -> None:
        for index in range(len(self.pools)):
            self._catch_up(index)

    def _catch_up(self, index: int) -> None:
        start = max(self._flowed_to[index] + 1, self.slot - HISTORY_SLOTS + 1)
        if start > self.slot:
            return
        pool, rng, p = self.pools[index], self._pool_rng[index], self.params
        for slot in range(start, self.slot + 1):
            env, prices = self._history[slot]
            if rng.random() < p.noise_probability:
                self._noise(pool, rng, env)
            if rng.random() < p.arbitrage_probability:
                self._arbitrage(pool, prices, env)
        self._flowed_to[index] = self.slot

    def view(self, pool: PoolRecord) -> PoolView:
        ledger = self.ledger
        kind = pool.listing.kind
        if kind == KIND_AMM_V4:
            info = amm.decode_amm_info(ledger.program_data(pool.listing.pubkey, amm.PROGRAM_ID))
            a = ledger.token(info.coin_vault).amount - info.need_take_pnl_coin
            b = ledger.token(info.pc_vault).amount - info.need_take_pnl_pc
            return PoolView(b / a, info.swap_fee_numerator / info.swap_fee_denominator, a, b)
        if kind == KIND_CPMM:
            state = cpmm.decode_pool_state(
                ledger.program_data(pool.listing.pubkey, cpmm.PROGRAM_ID)
            )
            config = cpmm.decode_amm_config(ledger.program_data(state.amm_config, cpmm.PROGRAM_ID))
            a, b = state.reserves(
                ledger.token(state.token_0_vault).amount, ledger.token(state.token_1_vault).amount
            )
            return PoolView(b / a, config.trade_fee_rate / cpmm.FEE_RATE_DENOMINATOR, a, b)
        pair = dlmm.decode_lb_pair(ledger.program_data(pool.listing.pubkey, dlmm.PROGRAM_ID))
        price = price_from_id(pair.active_id, pair.bin_step) / 2**64
        fee = base_fee_rate(pair.parameters, pair.bin_step) / FEE_PRECISION
        a = token_account_amount(ledger.account_data(pair.reserve_x) or bytes(165))
        b = token_account_amount(ledger.account_data(pair.reserve_y) or bytes(165))
        return PoolView(price, fee, a, b)

    def _noise(self, pool: PoolRecord, rng: random.Random, env: Env) -> None:
        view = self.view(pool)
        a_to_b = rng.random() < 0.5
        reserve = view.reserve_a if a_to_b else view.reserve_b
        share = self.params.noise_share_cp
        if pool.listing.kind not in (KIND_AMM_V4, KIND_CPMM):
            share = self.params.noise_share_dlmm
        size = share * reserve * math.exp(rng.gauss(0.0, self.params.noise_sigma))
        self.swap(pool, a_to_b=a_to_b, amount_in=int(size), env=env)

    def _arbitrage(self, pool: PoolRecord, prices: dict[str, float], env: Env) -> None:
        view = self.view(pool)
        target = price_in_base_units(pool.symbol_a, pool.symbol_b, prices)
        edge = self.params.arbitrage_edge_bps / 10_000
        if pool.listing.kind in (KIND_AMM_V4, KIND_CPMM):
            self._arbitrage_cp(pool, view, target, edge, env)
        else:
            self._arbitrage_dlmm(pool, view, target, edge, env)

    def _arbitrage_cp(
        self, pool: PoolRecord, view: PoolView, target: float, edge: float, env: Env
    ) -> None:
        keep = 1.0 - view.fee
        k = view.reserve_a * view.reserve_b
        if view.price * keep > target * (1 + edge):  # the pool overpays for A: sell A
            goal = math.sqrt(k / (target / keep))
            amount = (goal - view.reserve_a) / keep
            self.swap(pool, a_to_b=True, amount_in=int(amount), env=env)
        elif view.price / keep < target * (1 - edge):  # the pool sells A cheap: buy A
            goal = math.sqrt(k * target * keep)
            amount = (goal - view.reserve_b) / keep
            self.swap(pool, a_to_b=False, amount_in=int(amount), env=env)

    def _arbitrage_dlmm(
        self, pool: PoolRecord, view: PoolView, target: float, edge: float, env: Env
    ) -> None:
        pair = dlmm.decode_lb_pair(self.ledger.program_data(pool.listing.pubkey, dlmm.PROGRAM_ID))
        step = math.log1p(pair.bin_step / 10_000)
        band = math.ceil((view.fee + edge) / (pair.bin_step / 10_000))
        target_bin = round(math.log(target) / step)
        if pair.active_id > target_bin + band:  # bins above the reference: sell X down to it
            path = range(pair.active_id, target_bin + band, -1)
            swap_for_y = True
        elif pair.active_id < target_bin - band:
            path = range(pair.active_id, target_bin - band)
            swap_for_y = False
        else:
            return
        bins = self._bins(pool)
        rate = base_fee_rate(pair.parameters, pair.bin_step)
        amount = 0
        for bin_id in path:
            x, y = bins.get(bin_id, (0, 0))
            need = max_amount_in_bin(x, y, price_from_id(bin_id, pair.bin_step), swap_for_y)
            amount += need + fee_for_amount(need, rate)
        self.swap(pool, a_to_b=swap_for_y, amount_in=amount, env=env)

    def _bins(self, pool: PoolRecord) -> dict[int, tuple[int, int]]:
        bins: dict[int, tuple[int, int]] = {}
        for address in pool.bin_arrays:
            index, _pair, amounts = dlmm.decode_bin_array(
                self.ledger.program_data(address, dlmm.PROGRAM_ID)
            )
            for slot, amount in enumerate(amounts):
                bins[index * dlmm.MAX_BIN_PER_ARRAY + slot] = amount
        return bins

    # --- trading -----------------------------------------------------------------------

    def swap(self, pool: PoolRecord, *, a_to_b: bool, amount_in: int, env: Env) -> bool:
        """Trade ``amount_in`` of A (or B) through the pool's program; False if it failed."""
        if amount_in <= 0:
            return False
        listing = pool.listing
        mint_a, mint_b = mint_of(pool.symbol_a), mint_of(pool.symbol_b)
        mint_in, mint_out = (mint_a, mint_b) if a_to_b else (mint_b, mint_a)
        user_in = associated_token_address(self.trader, mint_in)
        user_out = associated_token_address(self.trader, mint_out)
        instruction: Instruction
        if listing.kind == KIND_AMM_V4:
            instruction = amm.swap_base_in_instruction(
                keys=amm_v4_keys(listing),
                user_source=user_in,
                user_destination=user_out,
                owner=self.trader,
                amount_in=amount_in,
                minimum_amount_out=0,
            )
        elif listing.kind == KIND_CPMM:
            instruction = cpmm.swap_base_input_instruction(
                keys=cpmm_keys(listing),
                input_mint=mint_in,
                user_input=user_in,
                user_output=user_out,
                owner=self.trader,
                amount_in=amount_in,
                minimum_amount_out=0,
            )
        else:
            instruction = dlmm.swap_instruction(
                keys=dlmm_keys(listing),
                user_token_in=user_in,
                user_token_out=user_out,
                user=self.trader,
                bin_arrays=list(pool.bin_arrays),
                amount_in=amount_in,
                min_amount_out=0,
            )
        ix = Ix(
            instruction.program_id,
            tuple(meta.pubkey for meta in instruction.accounts),
            frozenset({self.trader}),
            bytes(instruction.data),
        )
        journal = self.ledger.journal(ix.accounts)
        try:
            run_instruction(self.ledger, ix, env, [])
        except ProgramError:
            self.ledger.restore(journal)
            return False
        self._trades += 1
        return True
