"""A venue's static pool list, as its pool API publishes it.

Raydium's ``/pools/key/ids`` and Meteora's ``/pair/all`` return, per pool, the
pool address, the two mints and the static accounts a swap needs (vaults,
market accounts, config, oracle). Clients read only the *state* from the chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from solders.pubkey import Pubkey

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm

KIND_AMM_V4 = "amm_v4"
KIND_CPMM = "cpmm"
KIND_DLMM = "dlmm"


@dataclass(frozen=True, slots=True)
class PoolListing:
    venue: str  # "raydium" | "meteora"
    kind: str  # "amm_v4" | "cpmm" | "dlmm"
    address: str
    mint_a: str  # AMM v4: coin, CPMM: token 0, DLMM: token X
    mint_b: str  # AMM v4: pc, CPMM: token 1, DLMM: token Y
    symbol: str  # e.g. "SOL/USDC", for people
    keys: Mapping[str, str] = field(default_factory=dict)

    def trades(self, mint_in: str, mint_out: str) -> bool:
        return {mint_in, mint_out} == {self.mint_a, self.mint_b} and mint_in != mint_out

    def key(self, name: str) -> Pubkey:
        value = self.keys.get(name)
        if value is None:
            raise KeyError(f"pool {self.symbol} ({self.address}) lists no {name!r} account")
        return Pubkey.from_string(value)

    @property
    def pubkey(self) -> Pubkey:
        return Pubkey.from_string(self.address)


def amm_v4_keys(pool: PoolListing) -> amm.AmmKeys:
    return amm.AmmKeys(
        amm=pool.pubkey,
        open_orders=pool.key("open_orders"),
        coin_vault=pool.key("coin_vault"),
        pc_vault=pool.key("pc_vault"),
        market=pool.key("market"),
        market_bids=pool.key("market_bids"),
        market_asks=pool.key("market_asks"),
        market_event_queue=pool.key("market_event_queue"),
        market_coin_vault=pool.key("market_coin_vault"),
        market_pc_vault=pool.key("market_pc_vault"),
        market_vault_signer=pool.key("market_vault_signer"),
        market_program=pool.key("market_program"),
    )


def cpmm_keys(pool: PoolListing) -> cpmm.CpmmKeys:
    return cpmm.CpmmKeys(
        pool=pool.pubkey,
        amm_config=pool.key("amm_config"),
        token_0_mint=Pubkey.from_string(pool.mint_a),
        token_1_mint=Pubkey.from_string(pool.mint_b),
        token_0_vault=pool.key("token_0_vault"),
        token_1_vault=pool.key("token_1_vault"),
        observation=pool.key("observation"),
    )


def dlmm_keys(pool: PoolListing) -> dlmm.DlmmKeys:
    return dlmm.DlmmKeys(
        lb_pair=pool.pubkey,
        token_x_mint=Pubkey.from_string(pool.mint_a),
        token_y_mint=Pubkey.from_string(pool.mint_b),
        reserve_x=pool.key("reserve_x"),
        reserve_y=pool.key("reserve_y"),
        oracle=pool.key("oracle"),
    )
