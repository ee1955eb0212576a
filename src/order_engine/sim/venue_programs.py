"""The three venue swap programs, executed on the ``Ledger`` with the ``dex`` math.

Each handler validates everything first and mutates last, in the order the
on-chain program checks (see the source notes in ``order_engine.dex.*``), so a
failing swap leaves no trace even outside a transaction's journal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from solders.pubkey import Pubkey

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.meteora_dlmm_math import (
    MAX_BIN_ID,
    MIN_BIN_ID,
    DlmmError,
    DlmmSwap,
    swap_exact_in,
)
from order_engine.sim.builtins import Invocation, check_transfer, move_tokens
from order_engine.sim.ledger import ProgramError

CU_AMM_V4 = 30_000
CU_CPMM = 40_000
CU_DLMM = 45_000
CU_DLMM_PER_BIN = 1_500
_SWAP_PERMITTED = (1, 6, 7)  # AmmStatus Initialized, SwapOnly, WaitingTrade


@dataclass(frozen=True, slots=True)
class _Leg:
    """A validated swap: where the input goes, where the output comes from."""

    user_in: Pubkey
    user_out: Pubkey
    owner: Pubkey
    vault_in: Pubkey
    vault_out: Pubkey
    reserve_in: int
    reserve_out: int


# --- Raydium AMM v4 --------------------------------------------------------------------


def _amm_leg(inv: Invocation) -> tuple[amm.AmmInfo, _Leg]:
    keys = inv.ix.accounts
    if len(keys) not in (amm.SWAP_BASE_IN_ACCOUNTS, amm.SWAP_BASE_IN_ACCOUNTS + 1):
        raise ProgramError(amm.WRONG_ACCOUNTS_NUMBER, f"got {len(keys)} accounts")
    shift = len(keys) - amm.SWAP_BASE_IN_ACCOUNTS  # the optional target-orders account
    pool, authority = keys[1], keys[2]
    coin_vault, pc_vault = keys[4 + shift], keys[5 + shift]
    user_source, user_dest, owner = keys[-3], keys[-2], keys[-1]
    if owner not in inv.ix.signers:
        raise ProgramError(amm.INVALID_SIGN_ACCOUNT, "user wallet must sign")
    ledger = inv.ledger
    info = amm.decode_amm_info(ledger.program_data(pool, amm.PROGRAM_ID))
    if info.status not in _SWAP_PERMITTED:
        raise ProgramError(amm.INVALID_STATUS, f"status {info.status} does not permit swaps")
    if authority != amm.AUTHORITY:
        raise ProgramError("InvalidProgramAddress", "wrong AMM authority")
    if (coin_vault, pc_vault) != (info.coin_vault, info.pc_vault):
        name = amm.INVALID_COIN_VAULT if coin_vault != info.coin_vault else amm.INVALID_PC_VAULT
        raise ProgramError(name, "vault does not match the pool")
    if {user_source, user_dest} & {coin_vault, pc_vault}:
        raise ProgramError(amm.INVALID_USER_TOKEN, "user account is a pool vault")
    coin, pc = ledger.token(coin_vault), ledger.token(pc_vault)
    source, dest = ledger.token(user_source), ledger.token(user_dest)
    reserve_coin = coin.amount - info.need_take_pnl_coin
    reserve_pc = pc.amount - info.need_take_pnl_pc
    if (source.mint, dest.mint) == (coin.mint, pc.mint):
        leg = _Leg(user_source, user_dest, owner, coin_vault, pc_vault, reserve_coin, reserve_pc)
    elif (source.mint, dest.mint) == (pc.mint, coin.mint):
        leg = _Leg(user_source, user_dest, owner, pc_vault, coin_vault, reserve_pc, reserve_coin)
    else:
        raise ProgramError(amm.INVALID_USER_TOKEN, "user accounts do not match the pool mints")
    return info, leg


def raydium_amm_v4(inv: Invocation) -> int:
    data = inv.ix.data
    if not data or data[0] != amm.SWAP_BASE_IN_TAG:
        raise ProgramError("InvalidInstruction", "only SwapBaseIn (tag 9) is simulated")
    amount_in, minimum_out = amm.decode_swap_base_in(data)
    info, leg = _amm_leg(inv)
    ledger = inv.ledger
    balance = ledger.token(leg.user_in).amount
    if balance < amount_in:
        raise ProgramError(amm.INSUFFICIENT_FUNDS, f"user has {balance} < {amount_in}")
    out, fee = amm.swap_base_in(
        amount_in,
        leg.reserve_in,
        leg.reserve_out,
        info.swap_fee_numerator,
        info.swap_fee_denominator,
    )
    inv.log(f"ray_log: amount_in {amount_in} minimum_out {minimum_out} out {out} fee {fee}")
    if out < minimum_out:
        raise ProgramError(amm.EXCEEDED_SLIPPAGE, f"out {out} < minimum_amount_out {minimum_out}")
    if out == 0 or amount_in == 0:
        raise ProgramError(amm.INVALID_INPUT, "zero amount in or out")
    if out >= leg.reserve_out:
        raise ProgramError(amm.INSUFFICIENT_FUNDS, "output exceeds the pool reserve")
    check_transfer(ledger, leg.user_in, leg.vault_in, leg.owner, amount_in)
    move_tokens(ledger, leg.user_in, leg.vault_in, leg.owner, amount_in)
    move_tokens(ledger, leg.vault_out, leg.user_out, amm.AUTHORITY, out)
    return CU_AMM_V4


# --- Raydium CPMM ----------------------------------------------------------------------


def _cpmm_leg(inv: Invocation) -> tuple[Pubkey, cpmm.PoolState, cpmm.AmmConfig, bool, _Leg]:
    keys = inv.ix.accounts
    if len(keys) < cpmm.SWAP_ACCOUNTS:
        raise ProgramError("AccountNotEnoughKeys", f"got {len(keys)} accounts")
    payer, authority, config_key, pool_key, user_in, user_out, vault_in, vault_out = keys[:8]
    in_mint, out_mint, observation = keys[10], keys[11], keys[12]
    if payer not in inv.ix.signers:
        raise ProgramError("AccountNotSigner", "payer must sign")
    if authority != cpmm.AUTHORITY:
        raise ProgramError("ConstraintSeeds", "wrong vault authority")
    ledger = inv.ledger
    pool = cpmm.decode_pool_state(ledger.program_data(pool_key, cpmm.PROGRAM_ID))
    if config_key != pool.amm_config or observation != pool.observation_key:
        raise ProgramError("ConstraintAddress", "config or observation does not match the pool")
    config = cpmm.decode_amm_config(ledger.program_data(config_key, cpmm.PROGRAM_ID))
    if pool.status & cpmm.STATUS_SWAP_DISABLED_BIT or inv.env.unix_timestamp < pool.open_time:
        raise ProgramError(cpmm.NOT_APPROVED, "swaps are not enabled on this pool")
    reserve_0, reserve_1 = pool.reserves(
        ledger.token(pool.token_0_vault).amount, ledger.token(pool.token_1_vault).amount
    )
    if (vault_in, vault_out) == (pool.token_0_vault, pool.token_1_vault):
        zero_for_one, leg = (
            True,
            _Leg(user_in, user_out, payer, vault_in, vault_out, reserve_0, reserve_1),
        )
    elif (vault_in, vault_out) == (pool.token_1_vault, pool.token_0_vault):
        zero_for_one, leg = (
            False,
            _Leg(user_in, user_out, payer, vault_in, vault_out, reserve_1, reserve_0),
        )
    else:
        raise ProgramError(cpmm.INVALID_VAULT, "vaults do not belong to the pool")
    if (ledger.token(vault_in).mint, ledger.token(vault_out).mint) != (in_mint, out_mint):
        raise ProgramError("ConstraintAddress", "mint accounts do not match the vaults")
    return pool_key, pool, config, zero_for_one, leg


def raydium_cpmm(inv: Invocation) -> int:
    amount_in, minimum_out = cpmm.decode_swap_base_input(inv.ix.data)
    pool_key, pool, config, zero_for_one, leg = _cpmm_leg(inv)
    if amount_in <= 0:
        raise ProgramError(cpmm.REQUIRE_GT_VIOLATED, "amount_in must be > 0")
    result = cpmm.swap_base_input(
        amount_in,
        leg.reserve_in,
        leg.reserve_out,
        config.trade_fee_rate,
        protocol_fee_rate=config.protocol_fee_rate,
        fund_fee_rate=config.fund_fee_rate,
    )
    if result.amount_out <= 0:
        raise ProgramError(cpmm.REQUIRE_GT_VIOLATED, "amount out must be > 0")
    if result.amount_out < minimum_out:
        raise ProgramError(
            cpmm.EXCEEDED_SLIPPAGE, f"out {result.amount_out} < minimum_amount_out {minimum_out}"
        )
    before = leg.reserve_in * leg.reserve_out
    after = (leg.reserve_in + amount_in - result.trade_fee) * (leg.reserve_out - result.amount_out)
    if after < before:
        raise ProgramError("RequireGteViolated", "constant product decreased")
    ledger = inv.ledger
    check_transfer(ledger, leg.user_in, leg.vault_in, leg.owner, amount_in)
    if zero_for_one:
        updated = replace(
            pool,
            protocol_fees_token_0=pool.protocol_fees_token_0 + result.protocol_fee,
            fund_fees_token_0=pool.fund_fees_token_0 + result.fund_fee,
        )
    else:
        updated = replace(
            pool,
            protocol_fees_token_1=pool.protocol_fees_token_1 + result.protocol_fee,
            fund_fees_token_1=pool.fund_fees_token_1 + result.fund_fee,
        )
    move_tokens(ledger, leg.user_in, leg.vault_in, leg.owner, amount_in)
    move_tokens(ledger, leg.vault_out, leg.user_out, cpmm.AUTHORITY, result.amount_out)
    ledger.set_data(pool_key, cpmm.PROGRAM_ID, cpmm.encode_pool_state(updated))
    inv.log(f"SwapEvent input {amount_in} output {result.amount_out} fee {result.trade_fee}")
    return CU_CPMM


# --- Meteora DLMM ----------------------------------------------------------------------


def _dlmm_pair(inv: Invocation) -> tuple[Pubkey, bytes, dlmm.LbPair, _Leg, bool]:
    keys = inv.ix.accounts
    if len(keys) < dlmm.SWAP_FIXED_ACCOUNTS:
        raise ProgramError("AccountNotEnoughKeys", f"got {len(keys)} accounts")
    pair_key, _ext, reserve_x, reserve_y, user_in, user_out, mint_x, mint_y, oracle = keys[:9]
    user = keys[10]
    if user not in inv.ix.signers:
        raise ProgramError("AccountNotSigner", "user must sign")
    ledger = inv.ledger
    raw = ledger.program_data(pair_key, dlmm.PROGRAM_ID)
    pair = dlmm.decode_lb_pair(raw)
    expected = (pair.reserve_x, pair.reserve_y, pair.token_x_mint, pair.token_y_mint, pair.oracle)
    if (reserve_x, reserve_y, mint_x, mint_y, oracle) != expected:
        raise ProgramError("ConstraintHasOne", "accounts do not match the pair")
    mint_in, mint_out = ledger.token(user_in).mint, ledger.token(user_out).mint
    if mint_in == mint_out or {mint_in, mint_out} != {mint_x, mint_y}:
        raise ProgramError(dlmm.INVALID_TOKEN_MINT, "user accounts do not match the pair")
    if pair.status != 0:
        raise ProgramError(dlmm.POOL_DISABLED, "pair is disabled")
    swap_for_y = mint_out == pair.token_y_mint
    vault_in, vault_out = (reserve_x, reserve_y) if swap_for_y else (reserve_y, reserve_x)
    leg = _Leg(user_in, user_out, user, vault_in, vault_out, 0, 0)
    return pair_key, raw, pair, leg, swap_for_y


def meteora_dlmm(inv: Invocation) -> int:
    amount_in, min_out = dlmm.decode_swap(inv.ix.data)
    pair_key, raw_pair, pair, leg, swap_for_y = _dlmm_pair(inv)
    arrays = _bin_arrays(inv, pair_key, inv.ix.accounts[dlmm.SWAP_FIXED_ACCOUNTS :])
    with_liquidity = set(pair.bin_array_indices())

    def get_bin(bin_id: int) -> tuple[int, int]:
        index = dlmm.bin_array_index(bin_id)
        found = arrays.get(index)
        if found is not None:
            return dlmm.read_bin_amounts(found[1], bin_id - index * dlmm.MAX_BIN_PER_ARRAY)
        if any((i <= index) if swap_for_y else (i >= index) for i in with_liquidity):
            raise DlmmError(dlmm.BIN_ARRAY_NOT_FOUND, f"bin array {index} was not passed")
        raise DlmmError(dlmm.PAIR_INSUFFICIENT_LIQUIDITY, "no liquidity left in this direction")

    try:
        result = swap_exact_in(
            amount_in=amount_in,
            swap_for_y=swap_for_y,
            active_id=pair.active_id,
            bin_step=pair.bin_step,
            params=pair.parameters,
            v_params=pair.v_parameters,
            now=inv.env.unix_timestamp,
            get_bin=get_bin,
            liquidity_bound=MIN_BIN_ID if swap_for_y else MAX_BIN_ID,
            record_fills=True,
        )
    except DlmmError as exc:
        raise ProgramError(exc.name, str(exc)) from None
    if result.amount_out <= 0:
        # As the program does: an input too small to buy one base unit is refused,
        # not swallowed by the pool (whatever min_amount_out says).
        raise ProgramError(dlmm.INSUFFICIENT_OUT_AMOUNT, f"in {amount_in} buys 0 out")
    if result.amount_out < min_out:
        raise ProgramError(
            dlmm.EXCEEDED_AMOUNT_SLIPPAGE_TOLERANCE,
            f"out {result.amount_out} < min_amount_out {min_out}",
        )
    ledger = inv.ledger
    check_transfer(ledger, leg.user_in, leg.vault_in, leg.owner, amount_in)
    _apply(
        inv,
        pair_key=pair_key,
        raw_pair=raw_pair,
        pair=pair,
        arrays=arrays,
        result=result,
        swap_for_y=swap_for_y,
    )
    move_tokens(ledger, leg.user_in, leg.vault_in, leg.owner, amount_in)
    move_tokens(ledger, leg.vault_out, leg.user_out, pair_key, result.amount_out)
    inv.log(
        f"Swap in {amount_in} out {result.amount_out} fee {result.fee} bins {len(result.fills)}"
    )
    crossed = abs(result.end_active_id - pair.active_id) + 1
    return CU_DLMM + CU_DLMM_PER_BIN * crossed


def _apply(
    inv: Invocation,
    *,
    pair_key: Pubkey,
    raw_pair: bytes,
    pair: dlmm.LbPair,
    arrays: dict[int, tuple[Pubkey, bytearray]],
    result: DlmmSwap,
    swap_for_y: bool,
) -> None:
    touched: set[int] = set()
    for fill in result.fills:
        index = dlmm.bin_array_index(fill.bin_id)
        touched.add(index)
        buf = arrays[index][1]
        slot = fill.bin_id - index * dlmm.MAX_BIN_PER_ARRAY
        x, y = dlmm.read_bin_amounts(buf, slot)
        if swap_for_y:
            dlmm.write_bin_amounts(buf, slot, x + fill.amount_in, y - fill.amount_out)
        else:
            dlmm.write_bin_amounts(buf, slot, x - fill.amount_out, y + fill.amount_in)
    pair_buf = bytearray(raw_pair)
    fee_x = pair.protocol_fee_x + (result.protocol_fee if swap_for_y else 0)
    fee_y = pair.protocol_fee_y + (0 if swap_for_y else result.protocol_fee)
    dlmm.write_swap_state(pair_buf, result.end_active_id, result.v_params, (fee_x, fee_y))
    inv.ledger.set_data(pair_key, dlmm.PROGRAM_ID, bytes(pair_buf))
    for index in touched:
        key, buf = arrays[index]
        inv.ledger.set_data(key, dlmm.PROGRAM_ID, bytes(buf))


def _bin_arrays(
    inv: Invocation, pair_key: Pubkey, keys: tuple[Pubkey, ...]
) -> dict[int, tuple[Pubkey, bytearray]]:
    arrays: dict[int, tuple[Pubkey, bytearray]] = {}
    for key in keys:
        raw = inv.ledger.data.get(key)
        if raw is None or raw[:8] != dlmm.BIN_ARRAY_DISCRIMINATOR:
            continue  # the program ignores remaining accounts that are not bin arrays
        index, owner_pair, _amounts = dlmm.decode_bin_array(raw)
        if owner_pair != pair_key:
            raise ProgramError("InvalidBinArray", f"{key} belongs to another pair")
        arrays[index] = (key, bytearray(raw))
    return arrays
