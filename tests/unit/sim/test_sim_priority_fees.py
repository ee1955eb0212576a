"""The simulated leader orders each slot's transactions by compute-unit price: of two
equal swaps in one slot, the higher bidder fills first, at the better price, and
each pays its own fee."""

from __future__ import annotations

import dataclasses

from solders.keypair import Keypair
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, snapshots

from order_engine.dex import spl
from order_engine.domain.tokens import USDC
from order_engine.sim import Simulator

CU_LIMIT = 60_000 + 300_000


async def test_of_two_swaps_in_one_slot_the_higher_fee_fills_first_at_the_better_price(
    sim: Simulator, wallet: Keypair
) -> None:
    sim.cluster.params = dataclasses.replace(sim.cluster.params, landing_base=1.0)
    other = Keypair()
    sim.fund(other.pubkey(), lamports=10**13, tokens={})
    (pool,) = [p for p in await snapshots(sim, SOL_MINT, USDC.mint) if p.venue == "raydium"]
    quote = pool.quote(5_000 * 10**9)  # big enough to move the price between the two
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    cheap = build_swap(
        sim,
        wallet,
        [Leg(quote, 1)],
        blockhash=blockhash,
        input_mint=SOL_MINT,
        output_mint=USDC.mint,
        memo="cheap",
        cu_price=1_000,
    )
    dear = build_swap(
        sim,
        other,
        [Leg(quote, 1)],
        blockhash=blockhash,
        input_mint=SOL_MINT,
        output_mint=USDC.mint,
        memo="dear",
        cu_price=900_000,
    )
    # The cheap one arrives first; arrival decides only between equal fees.
    for tx in (cheap, dear):
        await sim.chain.send_transaction(bytes(tx))
    sim.advance_slots(3)

    got = {}
    for name, tx in (("cheap", cheap), ("dear", dear)):
        result = await sim.chain.get_transaction(str(tx.signatures[0]))
        assert result is not None
        assert result.err is None
        got[name] = result
    assert got["cheap"].slot == got["dear"].slot
    owner_out = {
        name: sum(b.amount for b in r.post_token_balances if b.mint == USDC.mint and b.owner == o)
        - sum(b.amount for b in r.pre_token_balances if b.mint == USDC.mint and b.owner == o)
        for (name, r), o in zip(
            got.items(), (str(wallet.pubkey()), str(other.pubkey())), strict=True
        )
    }
    assert owner_out["dear"] == quote.amount_out  # first: exactly the quoted pool state
    assert owner_out["cheap"] < owner_out["dear"]
    assert got["dear"].fee == 5_000 + spl.priority_fee_lamports(CU_LIMIT, 900_000)
    assert got["cheap"].fee == 5_000 + spl.priority_fee_lamports(CU_LIMIT, 1_000)


async def test_recent_prioritization_fees_report_the_lowest_price_that_landed_per_slot(
    sim: Simulator, wallet: Keypair
) -> None:
    sim.cluster.params = dataclasses.replace(sim.cluster.params, landing_base=1.0)
    (pool,) = [p for p in await snapshots(sim, SOL_MINT, USDC.mint) if p.venue == "raydium"]
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    for memo, price in (("a", 7_000), ("b", 90_000)):
        tx = build_swap(
            sim,
            wallet,
            [Leg(pool.quote(10**9), 1)],
            blockhash=blockhash,
            input_mint=SOL_MINT,
            output_mint=USDC.mint,
            memo=memo,
            cu_price=price,
        )
        await sim.chain.send_transaction(bytes(tx))
    sim.advance_slots(1)

    (block,) = await sim.chain.get_recent_prioritization_fees()
    (on_pool,) = await sim.chain.get_recent_prioritization_fees([pool.pool_id])
    (elsewhere,) = await sim.chain.get_recent_prioritization_fees([str(Keypair().pubkey())])

    assert (block.slot, block.prioritization_fee) == (sim.cluster.slot, 7_000)
    assert on_pool.prioritization_fee == 7_000
    assert elsewhere.prioritization_fee == 7_000  # nobody touched it: the block's floor
