"""Transaction semantics: blockhash validity, the status cache, fees, signatures,
and the programs' own failure names."""

from __future__ import annotations

import dataclasses

import pytest
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, confirm, quiet_config, snapshots

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import spl
from order_engine.domain.errors import InsufficientLiquidityError
from order_engine.domain.routing import PoolQuote, PoolSnapshot
from order_engine.domain.tokens import BONK, SOL, USDC
from order_engine.ports.chain import BlockhashNotFound, TransactionRejected
from order_engine.sim import Simulator, build_simulator
from order_engine.sim.cluster import ClusterParams

FEE = 5_000 + spl.priority_fee_lamports(360_000, 50_000)


async def _pool(sim: Simulator, mint_in: str, mint_out: str, kind: str) -> PoolSnapshot:
    return next(p for p in await snapshots(sim, mint_in, mint_out) if p.pool_kind == kind)


async def _sol_to_usdc(
    sim: Simulator, wallet: Keypair, *, kind: str = "amm_v4", sol: float = 1, memo: str = "m",
    min_out: int | None = None, blockhash: str | None = None,
) -> tuple[VersionedTransaction, PoolQuote]:  # fmt: skip
    quote = (await _pool(sim, SOL.mint, USDC.mint, kind)).quote(SOL.to_base(sol))
    if blockhash is None:
        blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    leg = Leg(quote, quote.amount_out if min_out is None else min_out)
    tx = build_swap(
        sim,
        wallet,
        [leg],
        blockhash=blockhash,
        input_mint=SOL_MINT,
        output_mint=USDC.mint,
        memo=memo,
    )
    return tx, quote


async def test_a_blockhash_is_accepted_for_150_slots_and_then_not_found(
    sim: Simulator, wallet: Keypair
) -> None:
    blockhash = await sim.chain.get_latest_blockhash()
    assert blockhash.last_valid_block_height == sim.cluster.slot + 150
    sim.advance_slots(150)
    ok, _ = await _sol_to_usdc(sim, wallet, memo="a", blockhash=blockhash.blockhash)
    await sim.chain.send_transaction(bytes(ok))
    sim.advance_slots(1)
    late, _ = await _sol_to_usdc(sim, wallet, memo="b", blockhash=blockhash.blockhash)
    with pytest.raises(BlockhashNotFound):
        await sim.chain.send_transaction(bytes(late))
    assert await sim.chain.get_block_height() > blockhash.last_valid_block_height


async def test_the_same_signature_sent_twice_executes_once(sim: Simulator, wallet: Keypair) -> None:
    tx, _ = await _sol_to_usdc(sim, wallet)
    before = sim.lamports(wallet.pubkey())
    first = await sim.chain.send_transaction(bytes(tx))
    again = await sim.chain.send_transaction(bytes(tx))  # still pending
    await confirm(sim, first)
    after_landing = await sim.chain.send_transaction(bytes(tx))  # already processed
    assert first == again == after_landing
    sim.advance_slots(3)
    assert sim.executions(first) == 1
    assert before - sim.lamports(wallet.pubkey()) == SOL.to_base(1) + FEE


async def test_a_transaction_that_never_lands_is_dropped_once_its_blockhash_expires(
    wallet: Keypair,
) -> None:
    sim = build_simulator(
        quiet_config(cluster=ClusterParams(landing_base=0.0, landing_priority_gain=0.0))
    )
    sim.fund(wallet.pubkey(), lamports=10**12, tokens={})
    tx, _ = await _sol_to_usdc(sim, wallet)
    signature = await sim.chain.send_transaction(bytes(tx))
    sim.advance_slots(151)
    assert await sim.chain.get_signature_statuses([signature]) == [None]
    assert not sim.cluster.is_pending(signature)
    with pytest.raises(BlockhashNotFound):
        await sim.chain.send_transaction(bytes(tx))
    assert sim.executions(signature) == 0


async def test_fees_are_charged_even_when_the_swap_fails(sim: Simulator, wallet: Keypair) -> None:
    owner = wallet.pubkey()
    quote = (await _pool(sim, SOL.mint, USDC.mint, "amm_v4")).quote(SOL.to_base(1))
    tx, _ = await _sol_to_usdc(sim, wallet, min_out=quote.amount_out + 1)
    pool = sim.pool("SOL/USDC", "amm_v4")
    reserves_before = sim.pool_view(pool)
    lamports, usdc = sim.lamports(owner), sim.token_balance(owner, USDC.mint)
    signature = await sim.chain.send_transaction(bytes(tx))
    status = await confirm(sim, signature)
    assert status.err == "ExceededSlippage"
    result = await sim.chain.get_transaction(signature)
    assert result is not None
    assert result.fee == FEE
    assert lamports - sim.lamports(owner) == FEE  # only the fee: the wrap was reverted
    assert sim.token_balance(owner, USDC.mint) == usdc
    assert sim.ledger.tokens.get(spl.associated_token_address(owner, spl.WSOL_MINT)) is None
    assert sim.pool_view(pool) == reserves_before


@pytest.mark.parametrize(
    ("symbol", "kind", "error"),
    [
        ("SOL/USDC", "amm_v4", "ExceededSlippage"),
        ("SOL/USDC", "dlmm", "ExceededAmountSlippageTolerance"),
        ("BONK/SOL", "cpmm", "ExceededSlippage"),
    ],
)
async def test_slippage_failures_carry_each_venues_own_error_name(
    sim: Simulator, wallet: Keypair, symbol: str, kind: str, error: str
) -> None:
    mint_in, mint_out = (BONK.mint, SOL.mint) if symbol == "BONK/SOL" else (SOL.mint, USDC.mint)
    pool = await _pool(sim, mint_in, mint_out, kind)
    quote = pool.quote(BONK.to_base(10_000_000) if mint_in == BONK.mint else SOL.to_base(2))
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(quote, quote.amount_out + 1)], blockhash=blockhash,
        input_mint=mint_in, output_mint=mint_out,
    )  # fmt: skip
    status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
    assert status.err == error


async def test_a_tampered_transaction_fails_signature_verification(
    sim: Simulator, wallet: Keypair
) -> None:
    tx, _ = await _sol_to_usdc(sim, wallet, memo="pay 1 SOL")
    raw = bytearray(bytes(tx))
    at = raw.index(b"pay 1 SOL")
    raw[at + 4] = ord("9")  # "pay 9 SOL": same signature, different message
    with pytest.raises(TransactionRejected, match="signature verification failed"):
        await sim.chain.send_transaction(bytes(raw))
    forged = VersionedTransaction.populate(tx.message, [Signature.default()])
    with pytest.raises(TransactionRejected):
        await sim.chain.send_transaction(bytes(forged))


async def test_spending_more_than_the_wallet_holds_fails_with_insufficient_funds(
    sim: Simulator,
) -> None:
    poor = Keypair()
    sim.fund(poor.pubkey(), lamports=10**10, tokens={USDC.mint: 100 * 10**6})
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    for kind in ("amm_v4", "dlmm"):
        quote = (await _pool(sim, USDC.mint, SOL.mint, kind)).quote(USDC.to_base(150))
        tx = build_swap(
            sim, poor, [Leg(quote, 0)], blockhash=blockhash, input_mint=USDC.mint,
            output_mint=SOL_MINT, memo=kind,
        )  # fmt: skip
        status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
        assert status.err == "InsufficientFunds"


async def test_a_dlmm_swap_that_buys_nothing_fails_instead_of_taking_the_input(
    sim: Simulator, wallet: Keypair
) -> None:
    pool = await _pool(sim, SOL.mint, USDC.mint, "dlmm")
    dust = dataclasses.replace(pool.quote(SOL.to_base(1)), amount_in=1)  # 1 lamport: 0 USDC
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(dust, 0)], blockhash=blockhash, input_mint=SOL_MINT,
        output_mint=USDC.mint,
    )  # fmt: skip
    status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
    assert status.err == dlmm.INSUFFICIENT_OUT_AMOUNT


async def test_draining_a_dlmm_pair_fails_with_insufficient_liquidity(
    sim: Simulator, wallet: Keypair
) -> None:
    pool = await _pool(sim, SOL.mint, USDC.mint, "dlmm")
    with pytest.raises(InsufficientLiquidityError):
        pool.quote(SOL.to_base(5_000))
    small = pool.quote(SOL.to_base(1))
    huge = dataclasses.replace(small, amount_in=SOL.to_base(5_000))
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(huge, 0)], blockhash=blockhash, input_mint=SOL_MINT,
        output_mint=USDC.mint,
    )  # fmt: skip
    status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
    assert status.err == "PairInsufficientLiquidity"


async def test_running_past_the_compute_unit_limit_fails_and_costs_the_fee(
    sim: Simulator, wallet: Keypair
) -> None:
    quote = (await _pool(sim, SOL.mint, USDC.mint, "dlmm")).quote(SOL.to_base(1))
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(quote, 0)], blockhash=blockhash, input_mint=SOL_MINT,
        output_mint=USDC.mint, cu_per_leg=0,
    )  # fmt: skip
    before = sim.lamports(wallet.pubkey())
    status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
    assert status.err == "ComputationalBudgetExceeded"
    assert before - sim.lamports(wallet.pubkey()) == 5_000 + spl.priority_fee_lamports(
        60_000, 50_000
    )


async def test_a_payer_that_cannot_pay_the_fee_is_rejected_at_send(sim: Simulator) -> None:
    broke = Keypair()
    sim.fund(broke.pubkey(), lamports=1_000, tokens={USDC.mint: 10**9})
    quote = (await _pool(sim, USDC.mint, SOL.mint, "amm_v4")).quote(USDC.to_base(10))
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, broke, [Leg(quote, 0)], blockhash=blockhash, input_mint=USDC.mint,
        output_mint=SOL_MINT,
    )  # fmt: skip
    with pytest.raises(TransactionRejected, match="InsufficientFundsForFee"):
        await sim.chain.send_transaction(bytes(tx))


async def test_malformed_program_data_fails_the_transaction_instead_of_the_cluster(
    sim: Simulator, wallet: Keypair
) -> None:
    owner = wallet.pubkey()
    bogus = Instruction(dlmm.PROGRAM_ID, b"\x01\x02\x03", [AccountMeta(owner, True, False)])
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    message = MessageV0.try_compile(owner, [bogus], [], Hash.from_string(blockhash))
    tx = VersionedTransaction(message, [wallet])
    status = await confirm(sim, await sim.chain.send_transaction(bytes(tx)))
    assert status.err == "InvalidInstructionData"


async def test_a_dlmm_swap_without_the_bin_arrays_it_walks_fails_with_bin_array_not_found(
    sim: Simulator, wallet: Keypair
) -> None:
    quote = (await _pool(sim, SOL.mint, USDC.mint, "dlmm")).quote(SOL.to_base(1))
    venue = next(v for v in sim.venues if v.name == "meteora")
    full = venue.swap_instruction(quote, owner=wallet.pubkey(), min_out=0)
    stripped = Instruction(full.program_id, full.data, full.accounts[: dlmm.SWAP_FIXED_ACCOUNTS])
    owner = wallet.pubkey()
    wsol = spl.associated_token_address(owner, spl.WSOL_MINT)
    instructions = [
        spl.create_ata_idempotent(owner, owner, spl.WSOL_MINT),
        spl.system_transfer(owner, wsol, quote.amount_in),
        spl.sync_native(wsol),
        stripped,
    ]
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    message = MessageV0.try_compile(owner, instructions, [], Hash.from_string(blockhash))
    status = await confirm(
        sim, await sim.chain.send_transaction(bytes(VersionedTransaction(message, [wallet])))
    )
    assert status.err == "BinArrayNotFound"
