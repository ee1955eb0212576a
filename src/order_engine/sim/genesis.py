"""Genesis: mints, the pool table and airdrops, written into a fresh ``Ledger``.

Pool addresses are deterministic (PDAs for CPMM and DLMM, seeded hashes for the
AMM v4 accounts), so every process that builds the same genesis agrees on them.
Reserves are set from reference USD prices (SOL about $150).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from solders.pubkey import Pubkey

from order_engine.adapters.venues.listing import KIND_AMM_V4, KIND_CPMM, KIND_DLMM, PoolListing
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex import spl
from order_engine.dex.meteora_dlmm_math import (
    MAX_BIN_ID,
    MIN_BIN_ID,
    StaticParameters,
    VariableParameters,
)
from order_engine.dex.token_accounts import Mint, TokenAccount, encode_mint
from order_engine.domain.tokens import DEFAULT_TOKENS, Token
from order_engine.sim.ledger import Ledger

TOKENS: dict[str, Token] = {t.symbol: t for t in DEFAULT_TOKENS}
REFERENCE_USD: dict[str, float] = {
    "SOL": 150.0,
    "USDC": 1.0,
    "USDT": 1.0,
    "BONK": 0.000_02,
    "JUP": 0.80,
}


@dataclass(frozen=True, slots=True)
class CpPoolSpec:
    """A Raydium constant-product pool. ``fee`` is the AMM v4 swap fee over 10 000,
    or the CPMM ``trade_fee_rate`` over 1 000 000."""

    kind: str
    base: str
    quote: str
    base_depth: int  # whole base tokens in the pool; the quote side matches the price
    fee: int


@dataclass(frozen=True, slots=True)
class DlmmPoolSpec:
    """A Meteora DLMM pair with liquidity in a Gaussian around the active bin."""

    x: str
    y: str
    bin_step: int
    base_factor: int  # base fee = base_factor * bin_step * 10 (1e9 units)
    variable_fee_control: int
    peak_bin_usd: float  # value in the active bin's neighbourhood (Gaussian peak)
    width_bins: float  # standard deviation of the Gaussian core, in bins
    tail_bin_usd: float  # value in every bin of the flat tail around the core
    span_bins: int  # bins holding liquidity on each side


PoolSpec = CpPoolSpec | DlmmPoolSpec

DEFAULT_POOLS: tuple[PoolSpec, ...] = (
    # SOL/USDC: Raydium deep ($30M) at 25 bps; Meteora bin step 4 at 4 bps base fee,
    # a Gaussian core of ~$2.5k per bin and a thin tail, so the best venue flips
    # with order size (see docs/simulation.md for the measured crossover).
    CpPoolSpec(KIND_AMM_V4, "SOL", "USDC", 100_000, 25),
    DlmmPoolSpec("SOL", "USDC", 4, 10_000, 300_000, 2_500.0, 3.0, 500.0, 100),
    CpPoolSpec(KIND_AMM_V4, "SOL", "USDT", 40_000, 25),
    DlmmPoolSpec("SOL", "USDT", 5, 8_000, 300_000, 1_200.0, 3.0, 250.0, 80),
    CpPoolSpec(KIND_CPMM, "BONK", "SOL", 100_000_000_000, 2_500),
    DlmmPoolSpec("BONK", "SOL", 20, 5_000, 30_000, 1_500.0, 3.0, 200.0, 40),
    CpPoolSpec(KIND_CPMM, "JUP", "USDC", 5_000_000, 2_500),
    DlmmPoolSpec("JUP", "USDC", 10, 8_000, 60_000, 1_500.0, 3.0, 200.0, 50),
    CpPoolSpec(KIND_CPMM, "USDC", "USDT", 40_000_000, 100),
    DlmmPoolSpec("USDC", "USDT", 1, 5_000, 0, 200_000.0, 3.0, 10_000.0, 30),
)


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """What the simulator itself keeps about a pool (the market trades through it)."""

    listing: PoolListing
    spec: PoolSpec
    symbol_a: str
    symbol_b: str
    bin_arrays: tuple[Pubkey, ...] = ()


def sim_address(label: str) -> Pubkey:
    """A deterministic address for an account the simulator owns."""
    return Pubkey(hashlib.sha256(b"order-engine-sim/" + label.encode()).digest())


def mint_of(symbol: str) -> Pubkey:
    return Pubkey.from_string(TOKENS[symbol].mint)


def create_mints(ledger: Ledger) -> None:
    for token in DEFAULT_TOKENS:
        ledger.set_data(
            Pubkey.from_string(token.mint),
            spl.TOKEN_PROGRAM_ID,
            encode_mint(Mint(token.decimals)),
            lamports=1_461_600,
        )


def open_token_account(
    ledger: Ledger, address: Pubkey, mint: Pubkey, owner: Pubkey, amount: int
) -> None:
    """Create (or top up) a token account holding ``amount``; wSOL is native."""
    existing = ledger.tokens.get(address)
    native = mint == spl.WSOL_MINT
    if existing is None:
        ledger.lamports[address] = spl.TOKEN_ACCOUNT_RENT
        existing = TokenAccount(mint, owner, 0, spl.TOKEN_ACCOUNT_RENT if native else None)
    if native:
        ledger.credit(address, amount)
    ledger.set_token(address, existing.with_amount(existing.amount + amount))


def fund(ledger: Ledger, owner: Pubkey, lamports: int, tokens: dict[str, int]) -> None:
    """Genesis airdrop: SOL to ``owner`` and tokens (mint -> base units) to its ATAs."""
    ledger.credit(owner, lamports)
    for mint_str, amount in tokens.items():
        mint = Pubkey.from_string(mint_str)
        open_token_account(ledger, spl.associated_token_address(owner, mint), mint, owner, amount)


def ui_to_base(symbol: str, amount: float) -> int:
    return int(amount * 10 ** TOKENS[symbol].decimals)


def price_in_base_units(base: str, quote: str, prices: dict[str, float]) -> float:
    """Quote base units per base base-unit."""
    ratio = prices[base] / prices[quote]
    return ratio * 10.0 ** (TOKENS[quote].decimals - TOKENS[base].decimals)


def create_pool(ledger: Ledger, spec: PoolSpec, prices: dict[str, float], now: int) -> PoolRecord:
    if isinstance(spec, DlmmPoolSpec):
        return _create_dlmm(ledger, spec, prices, now)
    if spec.kind == KIND_AMM_V4:
        return _create_amm_v4(ledger, spec, prices)
    return _create_cpmm(ledger, spec, prices)


def _create_amm_v4(ledger: Ledger, spec: CpPoolSpec, prices: dict[str, float]) -> PoolRecord:
    label = f"raydium-amm-v4/{spec.base}-{spec.quote}"
    a = {role: sim_address(f"{label}/{role}") for role in _AMM_ROLES}
    coin, pc = mint_of(spec.base), mint_of(spec.quote)
    coin_amount = ui_to_base(spec.base, spec.base_depth)
    pc_amount = int(coin_amount * price_in_base_units(spec.base, spec.quote, prices))
    info = amm.AmmInfo(
        coin_vault=a["coin_vault"],
        pc_vault=a["pc_vault"],
        coin_mint=coin,
        pc_mint=pc,
        lp_mint=a["lp_mint"],
        open_orders=a["open_orders"],
        market=a["market"],
        target_orders=a["target_orders"],
        coin_decimals=TOKENS[spec.base].decimals,
        pc_decimals=TOKENS[spec.quote].decimals,
        swap_fee_numerator=spec.fee,
        lp_amount=math.isqrt(coin_amount * pc_amount),
    )
    ledger.set_data(a["amm"], amm.PROGRAM_ID, amm.encode_amm_info(info), lamports=6_124_800)
    open_token_account(ledger, a["coin_vault"], coin, amm.AUTHORITY, coin_amount)
    open_token_account(ledger, a["pc_vault"], pc, amm.AUTHORITY, pc_amount)
    keys = {role: str(key) for role, key in a.items() if role != "amm"}
    keys["market_program"] = str(amm.OPENBOOK_PROGRAM_ID)
    listing = PoolListing(
        "raydium", KIND_AMM_V4, str(a["amm"]), str(coin), str(pc), f"{spec.base}/{spec.quote}", keys
    )
    return PoolRecord(listing, spec, spec.base, spec.quote)


_AMM_ROLES = (
    "amm",
    "coin_vault",
    "pc_vault",
    "lp_mint",
    "open_orders",
    "target_orders",
    "market",
    "market_bids",
    "market_asks",
    "market_event_queue",
    "market_coin_vault",
    "market_pc_vault",
    "market_vault_signer",
)


def _pda(seeds: list[bytes], program: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address(seeds, program)
    return address


def _create_cpmm(ledger: Ledger, spec: CpPoolSpec, prices: dict[str, float]) -> PoolRecord:
    index = cpmm.FEE_TIERS.index(spec.fee)
    config = _pda([b"amm_config", index.to_bytes(2, "big")], cpmm.PROGRAM_ID)
    if config not in ledger.data:
        raw = cpmm.encode_amm_config(cpmm.AmmConfig(spec.fee, index=index))
        ledger.set_data(config, cpmm.PROGRAM_ID, raw, lamports=2_533_440)
    base, quote = mint_of(spec.base), mint_of(spec.quote)
    base_amount = ui_to_base(spec.base, spec.base_depth)
    quote_amount = int(base_amount * price_in_base_units(spec.base, spec.quote, prices))
    (m0, a0), (m1, a1) = sorted(
        ((base, base_amount), (quote, quote_amount)), key=lambda p: bytes(p[0])
    )
    s0, s1 = (spec.base, spec.quote) if m0 == base else (spec.quote, spec.base)
    pool = _pda([b"pool", bytes(config), bytes(m0), bytes(m1)], cpmm.PROGRAM_ID)
    vault0 = _pda([b"pool_vault", bytes(pool), bytes(m0)], cpmm.PROGRAM_ID)
    vault1 = _pda([b"pool_vault", bytes(pool), bytes(m1)], cpmm.PROGRAM_ID)
    observation = _pda([b"observation", bytes(pool)], cpmm.PROGRAM_ID)
    state = cpmm.PoolState(
        amm_config=config,
        token_0_vault=vault0,
        token_1_vault=vault1,
        lp_mint=_pda([b"pool_lp_mint", bytes(pool)], cpmm.PROGRAM_ID),
        token_0_mint=m0,
        token_1_mint=m1,
        observation_key=observation,
        mint_0_decimals=TOKENS[s0].decimals,
        mint_1_decimals=TOKENS[s1].decimals,
        lp_supply=math.isqrt(a0 * a1),
    )
    ledger.set_data(pool, cpmm.PROGRAM_ID, cpmm.encode_pool_state(state), lamports=5_324_400)
    ledger.set_data(observation, cpmm.PROGRAM_ID, cpmm.OBSERVATION_DISCRIMINATOR + bytes(32))
    open_token_account(ledger, vault0, m0, cpmm.AUTHORITY, a0)
    open_token_account(ledger, vault1, m1, cpmm.AUTHORITY, a1)
    keys = {
        "amm_config": str(config),
        "token_0_vault": str(vault0),
        "token_1_vault": str(vault1),
        "observation": str(observation),
    }
    listing = PoolListing("raydium", KIND_CPMM, str(pool), str(m0), str(m1), f"{s0}/{s1}", keys)
    return PoolRecord(listing, spec, s0, s1)


def _create_dlmm(
    ledger: Ledger, spec: DlmmPoolSpec, prices: dict[str, float], now: int
) -> PoolRecord:
    mint_x, mint_y = mint_of(spec.x), mint_of(spec.y)
    pair_key = dlmm.lb_pair_address(mint_x, mint_y, spec.bin_step)
    price = price_in_base_units(spec.x, spec.y, prices)
    active = round(math.log(price) / math.log1p(spec.bin_step / 10_000))
    amounts: dict[int, tuple[int, int]] = {}
    for d in range(-spec.span_bins, spec.span_bins + 1):
        core = math.exp(-0.5 * (d / spec.width_bins) ** 2)
        usd = spec.peak_bin_usd * core + spec.tail_bin_usd
        x = ui_to_base(spec.x, usd / prices[spec.x]) if d >= 0 else 0
        y = ui_to_base(spec.y, usd / prices[spec.y]) if d <= 0 else 0
        amounts[active + d] = (x // 2, y // 2) if d == 0 else (x, y)
    indices = list(
        range(
            dlmm.bin_array_index(active - spec.span_bins),
            dlmm.bin_array_index(active + spec.span_bins) + 1,
        )
    )
    arrays: list[Pubkey] = []
    for index in indices:
        lower, _upper = dlmm.bin_array_bounds(index)
        bins = [amounts.get(lower + slot, (0, 0)) for slot in range(dlmm.MAX_BIN_PER_ARRAY)]
        address = dlmm.bin_array_address(pair_key, index)
        raw = dlmm.encode_bin_array(index, pair_key, spec.bin_step, bins)
        ledger.set_data(address, dlmm.PROGRAM_ID, raw, lamports=71_437_440)
        arrays.append(address)
    reserve_x = dlmm.reserve_address(pair_key, mint_x)
    reserve_y = dlmm.reserve_address(pair_key, mint_y)
    oracle = dlmm.oracle_address(pair_key)
    open_token_account(ledger, reserve_x, mint_x, pair_key, sum(x for x, _ in amounts.values()))
    open_token_account(ledger, reserve_y, mint_y, pair_key, sum(y for _, y in amounts.values()))
    ledger.set_data(oracle, dlmm.PROGRAM_ID, dlmm.encode_oracle())
    params = StaticParameters(
        base_factor=spec.base_factor,
        variable_fee_control=spec.variable_fee_control,
        min_bin_id=MIN_BIN_ID // spec.bin_step,
        max_bin_id=MAX_BIN_ID // spec.bin_step,
    )
    pair = dlmm.LbPair(
        parameters=params,
        v_parameters=VariableParameters(index_reference=active, last_update_timestamp=now),
        active_id=active,
        bin_step=spec.bin_step,
        token_x_mint=mint_x,
        token_y_mint=mint_y,
        reserve_x=reserve_x,
        reserve_y=reserve_y,
        oracle=oracle,
        bin_array_bitmap=dlmm.bitmap_with((0,) * 16, indices),
        last_updated_at=now,
    )
    ledger.set_data(pair_key, dlmm.PROGRAM_ID, dlmm.encode_lb_pair(pair), lamports=7_182_720)
    keys = {"reserve_x": str(reserve_x), "reserve_y": str(reserve_y), "oracle": str(oracle)}
    listing = PoolListing(
        "meteora", KIND_DLMM, str(pair_key), str(mint_x), str(mint_y), f"{spec.x}/{spec.y}", keys
    )
    return PoolRecord(listing, spec, spec.x, spec.y, tuple(arrays))


def build_genesis(
    ledger: Ledger, specs: tuple[PoolSpec, ...], prices: dict[str, float], now: int
) -> list[PoolRecord]:
    create_mints(ledger)
    return [create_pool(ledger, spec, prices, now) for spec in specs]
