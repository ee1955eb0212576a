"""The engine's v0 transaction, end to end on the simulated cluster: balances move
exactly as the pools' math says."""

from __future__ import annotations

from solders.keypair import Keypair
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, confirm, route, snapshots

from order_engine.dex import spl
from order_engine.domain.routing import best_single
from order_engine.domain.tokens import BONK, SOL, USDC
from order_engine.sim import Simulator

FEE_50K = 5_000 + spl.priority_fee_lamports(60_000 + 300_000, 50_000)


async def test_a_sol_to_usdc_split_moves_balances_exactly_as_quoted(
    sim: Simulator, wallet: Keypair
) -> None:
    owner = wallet.pubkey()
    pools = await snapshots(sim, SOL.mint, USDC.mint)
    plan = route(pools, SOL.to_base(150))
    assert plan.is_split
    legs = [Leg(leg.quote, leg.quote.amount_out) for leg in plan.legs]
    usdc_before, lamports_before = sim.token_balance(owner, USDC.mint), sim.lamports(owner)
    blockhash = await sim.chain.get_latest_blockhash()
    tx = build_swap(
        sim, wallet, legs, blockhash=blockhash.blockhash, input_mint=SOL_MINT, output_mint=USDC.mint
    )
    signature = await sim.chain.send_transaction(bytes(tx))
    assert signature == str(tx.signatures[0])
    status = await confirm(sim, signature)
    assert status.err is None
    result = await sim.chain.get_transaction(signature)
    assert result is not None
    fee = 5_000 + spl.priority_fee_lamports(60_000 + 300_000 * 2, 50_000)
    assert result.fee == fee
    # The market is still, so the pools are exactly where the quotes saw them.
    assert sim.token_balance(owner, USDC.mint) - usdc_before == plan.expected_out
    # SOL spent: the amount and the fee; the wSOL account's rent came back on close.
    assert lamports_before - sim.lamports(owner) == plan.amount_in + fee
    assert result.pre_lamports - result.post_lamports == plan.amount_in + fee
    assert sim.ledger.tokens.get(spl.associated_token_address(owner, spl.WSOL_MINT)) is None
    assert sim.executions(signature) == 1


async def test_a_usdc_to_sol_swap_unwraps_the_output_into_the_wallet(
    sim: Simulator, wallet: Keypair
) -> None:
    owner = wallet.pubkey()
    pools = await snapshots(sim, USDC.mint, SOL.mint)
    quote = best_single(pools, USDC.to_base(1_500))[0]
    blockhash = await sim.chain.get_latest_blockhash()
    tx = build_swap(
        sim,
        wallet,
        [Leg(quote, quote.amount_out)],
        blockhash=blockhash.blockhash,
        input_mint=USDC.mint,
        output_mint=SOL_MINT,
    )
    lamports_before = sim.lamports(owner)
    usdc_before = sim.token_balance(owner, USDC.mint)
    signature = await sim.chain.send_transaction(bytes(tx))
    assert (await confirm(sim, signature)).err is None
    assert usdc_before - sim.token_balance(owner, USDC.mint) == USDC.to_base(1_500)
    assert sim.lamports(owner) - lamports_before == quote.amount_out - FEE_50K


async def test_a_bonk_to_sol_swap_on_the_cpmm_pool_matches_its_quote(
    sim: Simulator, wallet: Keypair
) -> None:
    owner = wallet.pubkey()
    raydium = next(v for v in sim.venues if v.name == "raydium")
    (pool,) = await raydium.snapshots(BONK.mint, SOL.mint)
    assert pool.pool_kind == "cpmm"
    quote = pool.quote(BONK.to_base(50_000_000))
    blockhash = await sim.chain.get_latest_blockhash()
    tx = build_swap(
        sim,
        wallet,
        [Leg(quote, quote.amount_out)],
        blockhash=blockhash.blockhash,
        input_mint=BONK.mint,
        output_mint=SOL_MINT,
    )
    lamports_before = sim.lamports(owner)
    signature = await sim.chain.send_transaction(bytes(tx))
    assert (await confirm(sim, signature)).err is None
    assert sim.lamports(owner) - lamports_before == quote.amount_out - FEE_50K
    # The CPMM pool now owes its protocol and fund their shares of the fee.
    view = sim.pool_view(sim.pool("BONK/SOL", "cpmm"))
    assert view.reserve_a > 0


async def test_a_two_hop_route_spends_the_intermediate_token_in_the_same_transaction(
    sim: Simulator, wallet: Keypair
) -> None:
    owner = wallet.pubkey()
    first = next(p for p in await snapshots(sim, BONK.mint, SOL.mint) if p.pool_kind == "cpmm")
    hop1 = first.quote(BONK.to_base(100_000_000))  # about $2000 of BONK
    mid = hop1.amount_out * 9_950 // 10_000  # the second hop spends hop 1's minimum
    second = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
    hop2 = second.quote(mid)
    blockhash = await sim.chain.get_latest_blockhash()
    tx = build_swap(
        sim, wallet, [Leg(hop1, mid), Leg(hop2, hop2.amount_out)], blockhash=blockhash.blockhash,
        input_mint=BONK.mint, output_mint=USDC.mint,
    )  # fmt: skip
    usdc, bonk = sim.token_balance(owner, USDC.mint), sim.token_balance(owner, BONK.mint)
    signature = await sim.chain.send_transaction(bytes(tx))
    assert (await confirm(sim, signature)).err is None
    assert bonk - sim.token_balance(owner, BONK.mint) == BONK.to_base(100_000_000)
    assert sim.token_balance(owner, USDC.mint) - usdc == hop2.amount_out
    # The intermediate SOL beyond hop 2's input stays wrapped in the wallet's wSOL account.
    assert sim.token_balance(owner, SOL.mint) == hop1.amount_out - mid
