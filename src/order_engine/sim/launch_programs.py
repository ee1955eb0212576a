"""Pool creation, executed by the venue programs on the ``Ledger``.

Raydium CPMM ``initialize`` and Meteora DLMM ``initialize_lb_pair``,
``initialize_bin_array`` and ``add_liquidity_by_weight`` (encodings and account
orders in ``dex/launches.py``). Like the swap handlers, each validates first
and mutates last, and a failure inside a transaction is undone by its journal.

Faithful where a trader can tell: the accounts are the programs' PDAs and
layouts, CPMM mints ``sqrt(amount_0 * amount_1)`` LP tokens and locks 100 of
them, charges the config's ``create_pool_fee`` (0.15 SOL) to the fee account
and opens the pool at ``max(open_time, now + 1)``, so the first swap can land
once the cluster clock has passed the creation second. Simplified: the DLMM
position account is not kept (liquidity cannot be withdrawn) and a weight
spreads the X amount over the bins at and above the active one and the Y
amount over those at and below it, in proportion to the weights (the program
also weighs by bin price).
"""

from __future__ import annotations

import math
from dataclasses import replace

from solders.pubkey import Pubkey

from order_engine.dex import launches, spl
from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex.meteora_dlmm_math import VariableParameters
from order_engine.dex.token_accounts import Mint, TokenAccount, decode_mint, encode_mint
from order_engine.sim.builtins import Invocation, check_transfer, move_tokens
from order_engine.sim.ledger import Ledger, ProgramError
from order_engine.sim.venue_programs import meteora_dlmm, raydium_cpmm

CU_CPMM_INITIALIZE = 80_000
CU_DLMM_INITIALIZE = 50_000
CU_DLMM_ADD_LIQUIDITY = 60_000
LOCK_LP_AMOUNT = 100  # raydium-cp-swap: LP tokens locked forever at creation
MINT_RENT = 1_461_600
POOL_RENT = 5_324_400
LB_PAIR_RENT = 7_182_720
BIN_ARRAY_RENT = 71_437_440
ALREADY_IN_USE = "AccountAlreadyInUse"


def _mint(ledger: Ledger, key: Pubkey) -> Mint:
    data = ledger.data.get(key)
    if data is None or ledger.owners.get(key) != spl.TOKEN_PROGRAM_ID:
        raise ProgramError("AccountNotInitialized", f"{key} is not a mint")
    return decode_mint(data)


def _fresh(ledger: Ledger, *keys: Pubkey) -> None:
    for key in keys:
        if ledger.exists(key):
            raise ProgramError(ALREADY_IN_USE, f"{key} already in use")


def _open_vault(ledger: Ledger, key: Pubkey, mint: Pubkey, owner: Pubkey) -> None:
    native = mint == spl.WSOL_MINT
    ledger.lamports[key] = spl.TOKEN_ACCOUNT_RENT
    ledger.set_token(key, TokenAccount(mint, owner, 0, spl.TOKEN_ACCOUNT_RENT if native else None))


# --- Raydium CPMM ----------------------------------------------------------------------


def cpmm_program(inv: Invocation) -> int:
    if inv.ix.data[:8] == launches.CPMM_INITIALIZE:
        return cpmm_initialize(inv)
    return raydium_cpmm(inv)


def cpmm_initialize(inv: Invocation) -> int:
    amount_0, amount_1, open_time = launches.decode_cpmm_initialize(inv.ix.data)
    keys = [inv.account(i) for i in range(20)]
    creator, config_key, authority, pool_key, mint_0, mint_1, lp_mint = keys[:7]
    user_0, user_1, user_lp, vault_0, vault_1, fee_account, observation = keys[7:14]
    inv.require_signer(creator)
    ledger = inv.ledger
    # The config must exist and be the program's; its create_pool_fee is the 0.15 SOL
    # encode_amm_config writes.
    cpmm.decode_amm_config(ledger.program_data(config_key, cpmm.PROGRAM_ID))
    if authority != cpmm.AUTHORITY:
        raise ProgramError("ConstraintSeeds", "wrong vault authority")
    if bytes(mint_0) >= bytes(mint_1):
        raise ProgramError("InvalidInput", "token_0_mint must sort before token_1_mint")
    expected = launches.cpmm_pool_addresses(config_key, mint_0, mint_1)
    if (pool_key, vault_0, vault_1, lp_mint, observation) != (
        expected.pool,
        expected.token_0_vault,
        expected.token_1_vault,
        expected.lp_mint,
        expected.observation,
    ):
        raise ProgramError("ConstraintSeeds", "pool accounts are not the program's addresses")
    if fee_account != launches.CPMM_CREATE_POOL_FEE:
        raise ProgramError("ConstraintAddress", "create_pool_fee is not the fee receiver")
    _fresh(ledger, pool_key, vault_0, vault_1, lp_mint, observation)
    # Any SPL Token mint is supported (is_supported_mint), freeze authority or not:
    # whether a holder's account can be frozen is the trader's risk to check.
    m0, m1 = _mint(ledger, mint_0), _mint(ledger, mint_1)
    if amount_0 <= 0 or amount_1 <= 0:
        raise ProgramError("InitLpAmountTooLess", "both initial amounts must be positive")
    liquidity = math.isqrt(amount_0 * amount_1)
    if liquidity <= LOCK_LP_AMOUNT:
        raise ProgramError("InitLpAmountTooLess", f"liquidity {liquidity} <= {LOCK_LP_AMOUNT}")
    check_transfer(ledger, user_0, user_0, creator, amount_0)
    check_transfer(ledger, user_1, user_1, creator, amount_1)
    ledger.debit(creator, _CREATE_POOL_FEE)
    ledger.credit(fee_account, _CREATE_POOL_FEE)
    ledger.debit(creator, 2 * spl.TOKEN_ACCOUNT_RENT + POOL_RENT + 2 * MINT_RENT)
    _open_vault(ledger, vault_0, mint_0, cpmm.AUTHORITY)
    _open_vault(ledger, vault_1, mint_1, cpmm.AUTHORITY)
    move_tokens(ledger, user_0, vault_0, creator, amount_0)
    move_tokens(ledger, user_1, vault_1, creator, amount_1)
    minted = liquidity - LOCK_LP_AMOUNT
    ledger.set_data(
        lp_mint,
        spl.TOKEN_PROGRAM_ID,
        encode_mint(Mint(9, minted, cpmm.AUTHORITY)),
        lamports=MINT_RENT,
    )
    if user_lp != spl.associated_token_address(creator, lp_mint):
        raise ProgramError("ConstraintAssociated", "creator_lp_token is not the creator's ATA")
    ledger.lamports[user_lp] = spl.TOKEN_ACCOUNT_RENT
    ledger.set_token(user_lp, TokenAccount(lp_mint, creator, minted))
    ledger.set_data(observation, cpmm.PROGRAM_ID, cpmm.OBSERVATION_DISCRIMINATOR + bytes(32))
    now = inv.env.unix_timestamp
    state = cpmm.PoolState(
        amm_config=config_key,
        token_0_vault=vault_0,
        token_1_vault=vault_1,
        lp_mint=lp_mint,
        token_0_mint=mint_0,
        token_1_mint=mint_1,
        observation_key=observation,
        mint_0_decimals=m0.decimals,
        mint_1_decimals=m1.decimals,
        pool_creator=creator,
        lp_supply=liquidity,
        open_time=open_time if open_time > now else now + 1,
    )
    ledger.set_data(pool_key, cpmm.PROGRAM_ID, cpmm.encode_pool_state(state), lamports=POOL_RENT)
    inv.log("Instruction: Initialize")
    inv.log(
        f"pool {pool_key} token_0 {mint_0} token_1 {mint_1} "
        f"init_amount_0 {amount_0} init_amount_1 {amount_1} open_time {state.open_time}"
    )
    return CU_CPMM_INITIALIZE


_CREATE_POOL_FEE = 150_000_000  # AmmConfig.create_pool_fee as cpmm.encode_amm_config writes it


# --- Meteora DLMM ----------------------------------------------------------------------


def dlmm_program(inv: Invocation) -> int:
    tag = inv.ix.data[:8]
    if tag == launches.DLMM_INITIALIZE_LB_PAIR:
        return dlmm_initialize_lb_pair(inv)
    if tag == launches.DLMM_INITIALIZE_BIN_ARRAY:
        return dlmm_initialize_bin_array(inv)
    if tag == launches.DLMM_ADD_LIQUIDITY_BY_WEIGHT:
        return dlmm_add_liquidity_by_weight(inv)
    return meteora_dlmm(inv)


def dlmm_initialize_lb_pair(inv: Invocation) -> int:
    active_id, bin_step = launches.decode_dlmm_initialize_lb_pair(inv.ix.data)
    keys = [inv.account(i) for i in range(14)]
    pair_key, _ext, mint_x, mint_y, reserve_x, reserve_y, oracle, preset, funder = keys[:9]
    inv.require_signer(funder)
    ledger = inv.ledger
    preset_step, params = launches.decode_preset_parameter(
        ledger.program_data(preset, dlmm.PROGRAM_ID)
    )
    if preset_step != bin_step:
        raise ProgramError("InvalidBinStep", f"preset has bin step {preset_step}, not {bin_step}")
    if mint_x == mint_y:
        raise ProgramError("InvalidTokenMint", "the two mints must differ")
    if (pair_key, reserve_x, reserve_y, oracle) != (
        dlmm.lb_pair_address(mint_x, mint_y, bin_step),
        dlmm.reserve_address(pair_key, mint_x),
        dlmm.reserve_address(pair_key, mint_y),
        dlmm.oracle_address(pair_key),
    ):
        raise ProgramError("ConstraintSeeds", "pair accounts are not the program's addresses")
    if not params.min_bin_id <= active_id <= params.max_bin_id:
        raise ProgramError("InvalidBinId", f"active id {active_id} outside the preset's range")
    _fresh(ledger, pair_key, reserve_x, reserve_y, oracle)
    _mint(ledger, mint_x)
    _mint(ledger, mint_y)
    ledger.debit(funder, LB_PAIR_RENT + 2 * spl.TOKEN_ACCOUNT_RENT)
    _open_vault(ledger, reserve_x, mint_x, pair_key)
    _open_vault(ledger, reserve_y, mint_y, pair_key)
    ledger.set_data(oracle, dlmm.PROGRAM_ID, dlmm.encode_oracle())
    now = inv.env.unix_timestamp
    pair = dlmm.LbPair(
        parameters=params,
        v_parameters=VariableParameters(index_reference=active_id, last_update_timestamp=now),
        active_id=active_id,
        bin_step=bin_step,
        token_x_mint=mint_x,
        token_y_mint=mint_y,
        reserve_x=reserve_x,
        reserve_y=reserve_y,
        oracle=oracle,
        last_updated_at=now,
        creator=funder,
    )
    ledger.set_data(pair_key, dlmm.PROGRAM_ID, dlmm.encode_lb_pair(pair), lamports=LB_PAIR_RENT)
    inv.log("Instruction: InitializeLbPair")
    inv.log(f"lb_pair {pair_key} token_x {mint_x} token_y {mint_y} active_id {active_id}")
    return CU_DLMM_INITIALIZE


def dlmm_initialize_bin_array(inv: Invocation) -> int:
    index = launches.decode_dlmm_initialize_bin_array(inv.ix.data)
    pair_key, array_key, funder = inv.account(0), inv.account(1), inv.account(2)
    inv.require_signer(funder)
    ledger = inv.ledger
    pair = dlmm.decode_lb_pair(ledger.program_data(pair_key, dlmm.PROGRAM_ID))
    if array_key != dlmm.bin_array_address(pair_key, index):
        raise ProgramError("ConstraintSeeds", "bin array is not the program's address")
    _fresh(ledger, array_key)
    ledger.debit(funder, BIN_ARRAY_RENT)
    empty = [(0, 0)] * dlmm.MAX_BIN_PER_ARRAY
    raw = dlmm.encode_bin_array(index, pair_key, pair.bin_step, empty)
    ledger.set_data(array_key, dlmm.PROGRAM_ID, raw, lamports=BIN_ARRAY_RENT)
    inv.log("Instruction: InitializeBinArray")
    return CU_DLMM_INITIALIZE


def dlmm_add_liquidity_by_weight(inv: Invocation) -> int:
    liquidity = launches.decode_liquidity_by_weight(inv.ix.data)
    keys = [inv.account(i) for i in range(16)]
    _position, pair_key, _ext, user_x, user_y, reserve_x, reserve_y = keys[:7]
    lower_key, upper_key, sender = keys[9], keys[10], keys[11]
    inv.require_signer(sender)
    ledger = inv.ledger
    raw_pair = ledger.program_data(pair_key, dlmm.PROGRAM_ID)
    pair = dlmm.decode_lb_pair(raw_pair)
    if (reserve_x, reserve_y) != (pair.reserve_x, pair.reserve_y):
        raise ProgramError("ConstraintHasOne", "reserves do not match the pair")
    if abs(liquidity.active_id - pair.active_id) > liquidity.max_active_bin_slippage:
        raise ProgramError("ExceededBinSlippageTolerance", "the active bin moved")
    bins = liquidity.bins
    if not bins or any(weight <= 0 for _, weight in bins):
        raise ProgramError("InvalidInput", "every bin needs a positive weight")
    low, high = min(b for b, _ in bins), max(b for b, _ in bins)
    if high - low + 1 > dlmm.MAX_BIN_PER_ARRAY:
        raise ProgramError("InvalidPosition", "a position spans at most 70 bins")
    arrays = _position_arrays(ledger, pair_key, (lower_key, upper_key), low, high)
    active = pair.active_id
    x_bins = [(b, w) for b, w in bins if b >= active]
    y_bins = [(b, w) for b, w in bins if b <= active]
    if (liquidity.amount_x and not x_bins) or (liquidity.amount_y and not y_bins):
        raise ProgramError("InvalidInput", "no bin on the side an amount goes to")
    check_transfer(ledger, user_x, reserve_x, sender, liquidity.amount_x)
    check_transfer(ledger, user_y, reserve_y, sender, liquidity.amount_y)
    added: dict[int, list[int]] = {}
    for side, share_bins, total in (
        (0, x_bins, liquidity.amount_x),
        (1, y_bins, liquidity.amount_y),
    ):
        weight_sum = sum(w for _, w in share_bins)
        given = 0
        for position, (bin_id, weight) in enumerate(share_bins):
            last = position == len(share_bins) - 1
            amount = total - given if last else total * weight // weight_sum
            given += amount
            added.setdefault(bin_id, [0, 0])[side] += amount
    for bin_id, (ax, ay) in added.items():
        index = dlmm.bin_array_index(bin_id)
        buf = arrays[index][1]
        slot = bin_id - index * dlmm.MAX_BIN_PER_ARRAY
        x, y = dlmm.read_bin_amounts(buf, slot)
        dlmm.write_bin_amounts(buf, slot, x + ax, y + ay)
    move_tokens(ledger, user_x, reserve_x, sender, liquidity.amount_x)
    move_tokens(ledger, user_y, reserve_y, sender, liquidity.amount_y)
    for key, buf in arrays.values():
        ledger.set_data(key, dlmm.PROGRAM_ID, bytes(buf))
    bitmap = dlmm.bitmap_with(pair.bin_array_bitmap, sorted(arrays))
    pair_buf = bytearray(dlmm.encode_lb_pair(_with_bitmap(pair, bitmap)))
    ledger.set_data(pair_key, dlmm.PROGRAM_ID, bytes(pair_buf))
    inv.log("Instruction: AddLiquidityByWeight")
    inv.log(f"lb_pair {pair_key} amount_x {liquidity.amount_x} amount_y {liquidity.amount_y}")
    return CU_DLMM_ADD_LIQUIDITY


def _position_arrays(
    ledger: Ledger, pair_key: Pubkey, keys: tuple[Pubkey, Pubkey], low: int, high: int
) -> dict[int, tuple[Pubkey, bytearray]]:
    arrays: dict[int, tuple[Pubkey, bytearray]] = {}
    for key in keys:
        index, owner, _amounts = dlmm.decode_bin_array(ledger.program_data(key, dlmm.PROGRAM_ID))
        if owner != pair_key:
            raise ProgramError("InvalidBinArray", f"{key} belongs to another pair")
        arrays[index] = (key, bytearray(ledger.data[key]))
    if {dlmm.bin_array_index(low), dlmm.bin_array_index(high)} - set(arrays):
        raise ProgramError("InvalidBinArray", "bin arrays do not cover the position")
    return arrays


def _spread(
    x_bins: list[tuple[int, int]],
    y_bins: list[tuple[int, int]],
    liquidity: launches.LiquidityByWeight,
) -> dict[int, list[int]]:
    """Each side's amount over its bins by weight; the last bin takes the rounding."""
    added: dict[int, list[int]] = {}
    for side, share_bins, total in (
        (0, x_bins, liquidity.amount_x),
        (1, y_bins, liquidity.amount_y),
    ):
        weight_sum = sum(w for _, w in share_bins)
        given = 0
        for position, (bin_id, weight) in enumerate(share_bins):
            last = position == len(share_bins) - 1
            amount = total - given if last else total * weight // weight_sum
            given += amount
            added.setdefault(bin_id, [0, 0])[side] += amount
    return added


def _with_bitmap(pair: dlmm.LbPair, bitmap: tuple[int, ...]) -> dlmm.LbPair:
    return replace(pair, bin_array_bitmap=bitmap)
