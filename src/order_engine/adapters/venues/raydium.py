"""Raydium venue client: AMM v4 and CPMM pools, read through the Chain port.

Like the Raydium SDK, it takes static pool keys from the pool list, reads the
pool state (``AmmInfo`` / ``PoolState`` + ``AmmConfig``) and the vault token
accounts in one ``getMultipleAccounts``, and quotes locally.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from order_engine.adapters.venues.base import Delay, PoolBook, VenueUnavailable, require_data
from order_engine.adapters.venues.listing import (
    KIND_AMM_V4,
    KIND_CPMM,
    PoolListing,
    amm_v4_keys,
    cpmm_keys,
)
from order_engine.adapters.venues.snapshots import AmmV4Snapshot, CpmmSnapshot
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.spl import associated_token_address
from order_engine.dex.token_accounts import token_account_amount
from order_engine.domain.routing import PoolQuote, PoolSnapshot
from order_engine.ports.chain import Chain


class RaydiumVenue:
    def __init__(
        self,
        chain: Chain,
        pools: Sequence[PoolListing],
        *,
        delay: Delay | None = None,
        name: str = "raydium",
    ) -> None:
        self._chain = chain
        self._book = PoolBook(name, pools)
        self._delay = delay
        self._name = name
        self._amm_keys = {
            p.address: amm_v4_keys(p) for p in self._book.pools if p.kind == KIND_AMM_V4
        }
        self._cpmm_keys = {p.address: cpmm_keys(p) for p in self._book.pools if p.kind == KIND_CPMM}

    @property
    def name(self) -> str:
        return self._name

    def has_pool(self, mint_a: str, mint_b: str) -> bool:
        return self._book.has_pool(mint_a, mint_b)

    def add_pool(self, pool: PoolListing) -> bool:
        """Route through a pool created after start-up (``LaunchWatcher``)."""
        if pool.kind not in (KIND_AMM_V4, KIND_CPMM) or not self._book.add(pool):
            return False
        if pool.kind == KIND_AMM_V4:
            self._amm_keys[pool.address] = amm_v4_keys(pool)
        else:
            self._cpmm_keys[pool.address] = cpmm_keys(pool)
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
        wanted: list[str] = []
        for pool in pools:
            wanted += _state_accounts(pool)
        datas = await self._chain.get_multiple_accounts(wanted)
        snapshots: list[PoolSnapshot] = []
        at = 0
        for pool in pools:
            count = len(_state_accounts(pool))
            chunk = [require_data(d, pool.symbol, self._name) for d in datas[at : at + count]]
            at += count
            snapshots.append(self._snapshot(pool, chunk, input_mint, output_mint))
        return snapshots

    def _snapshot(
        self, pool: PoolListing, data: list[bytes], input_mint: str, output_mint: str
    ) -> PoolSnapshot:
        try:
            if pool.kind == KIND_AMM_V4:
                info = amm.decode_amm_info(data[0])
                coin = token_account_amount(data[1]) - info.need_take_pnl_coin
                pc = token_account_amount(data[2]) - info.need_take_pnl_pc
                coin_in = input_mint == str(info.coin_mint)
                return AmmV4Snapshot(
                    venue=self._name,
                    pool_id=pool.address,
                    input_mint=input_mint,
                    output_mint=output_mint,
                    reserve_in=coin if coin_in else pc,
                    reserve_out=pc if coin_in else coin,
                    fee_numerator=info.swap_fee_numerator,
                    fee_denominator=info.swap_fee_denominator,
                )
            state = cpmm.decode_pool_state(data[0])
            config = cpmm.decode_amm_config(data[1])
            r0, r1 = state.reserves(token_account_amount(data[2]), token_account_amount(data[3]))
            zero_in = input_mint == str(state.token_0_mint)
            return CpmmSnapshot(
                venue=self._name,
                pool_id=pool.address,
                input_mint=input_mint,
                output_mint=output_mint,
                reserve_in=r0 if zero_in else r1,
                reserve_out=r1 if zero_in else r0,
                trade_fee_rate=config.trade_fee_rate,
            )
        except ValueError as exc:
            raise VenueUnavailable(
                f"{self._name}: pool {pool.symbol} state unreadable: {exc}"
            ) from exc

    def swap_instruction(self, quote: PoolQuote, *, owner: Pubkey, min_out: int) -> Instruction:
        pool = self._book.get(quote.pool_id)
        mint_in = Pubkey.from_string(quote.input_mint)
        mint_out = Pubkey.from_string(quote.output_mint)
        user_in = associated_token_address(owner, mint_in)
        user_out = associated_token_address(owner, mint_out)
        if pool.kind == KIND_AMM_V4:
            return amm.swap_base_in_instruction(
                keys=self._amm_keys[pool.address],
                user_source=user_in,
                user_destination=user_out,
                owner=owner,
                amount_in=quote.amount_in,
                minimum_amount_out=min_out,
            )
        return cpmm.swap_base_input_instruction(
            keys=self._cpmm_keys[pool.address],
            input_mint=mint_in,
            user_input=user_in,
            user_output=user_out,
            owner=owner,
            amount_in=quote.amount_in,
            minimum_amount_out=min_out,
        )


def _state_accounts(pool: PoolListing) -> list[str]:
    k = pool.keys
    if pool.kind == KIND_AMM_V4:
        return [pool.address, k["coin_vault"], k["pc_vault"]]
    return [pool.address, k["amm_config"], k["token_0_vault"], k["token_1_vault"]]
