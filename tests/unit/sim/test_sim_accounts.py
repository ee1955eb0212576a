"""Account reads: what getMultipleAccounts, getAccountInfo and getBalance return."""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import spl
from order_engine.dex.sysvar import CLOCK_SYSVAR_ID, decode_clock
from order_engine.dex.token_accounts import decode_token_account
from order_engine.domain.tokens import USDC
from order_engine.sim import Simulator


async def test_pool_accounts_come_back_as_the_programs_raw_bytes(sim: Simulator) -> None:
    v4, pair = sim.pool("SOL/USDC", "amm_v4"), sim.pool("SOL/USDC", "dlmm")
    raw_v4, raw_pair, missing = await sim.chain.get_multiple_accounts(
        [v4.address, pair.address, str(Pubkey.new_unique())]
    )
    assert raw_v4 is not None
    assert raw_pair is not None
    assert len(raw_v4) == amm.AMM_INFO_LEN
    info = amm.decode_amm_info(raw_v4)
    assert str(info.coin_vault) == v4.keys["coin_vault"]
    assert dlmm.decode_lb_pair(raw_pair).bin_step == 4
    assert missing is None
    (vault,) = await sim.chain.get_multiple_accounts([v4.keys["coin_vault"]])
    assert vault is not None
    assert decode_token_account(vault).owner == amm.AUTHORITY


async def test_the_clock_sysvar_follows_simulated_time(sim: Simulator) -> None:
    (before,) = await sim.chain.get_multiple_accounts([str(CLOCK_SYSVAR_ID)])
    sim.advance_slots(25)  # ten seconds
    (after,) = await sim.chain.get_multiple_accounts([str(CLOCK_SYSVAR_ID)])
    assert before is not None
    assert after is not None
    assert decode_clock(after).slot == 25
    assert decode_clock(after).unix_timestamp - decode_clock(before).unix_timestamp == 10


def test_balances_and_owners_are_readable_for_a_json_rpc_front_end(
    sim: Simulator, wallet: Keypair
) -> None:
    owner = wallet.pubkey()
    ata = spl.associated_token_address(owner, Pubkey.from_string(USDC.mint))
    assert sim.cluster.balance(owner) == sim.lamports(owner) > 0
    assert sim.cluster.token_account_balance(ata) == sim.token_balance(owner, USDC.mint)
    info = sim.cluster.account_info(ata)
    assert info is not None
    assert info[0] == spl.TOKEN_ACCOUNT_RENT
    assert info[1] == spl.TOKEN_PROGRAM_ID
    assert sim.cluster.account_info(Pubkey.new_unique()) is None
