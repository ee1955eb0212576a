"""Simulated time: the slot clock at scale 0 and above, landing and congestion."""

from __future__ import annotations

import asyncio

from solders.keypair import Keypair
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, confirm, quiet_config, snapshots

from order_engine.domain.tokens import SOL, USDC
from order_engine.ports.chain import BlockhashNotFound
from order_engine.sim import Simulator, build_simulator
from order_engine.sim.cluster import Cluster, ClusterParams
from order_engine.sim.ledger import Ledger


async def test_at_scale_zero_only_a_repeated_poll_for_a_waiting_signature_advances_a_slot(
    sim: Simulator,
) -> None:
    waiting = "5" * 64
    await sim.chain.get_signature_statuses([waiting])
    assert sim.cluster.slot == 0
    await sim.chain.get_latest_blockhash()
    await sim.chain.get_block_height()
    assert sim.cluster.slot == 0
    await sim.chain.get_signature_statuses([waiting])
    assert sim.cluster.slot == 1
    await sim.chain.get_signature_statuses([waiting])
    assert sim.cluster.slot == 2


async def test_a_hundred_concurrent_orders_at_scale_zero_all_land_without_expiring(
    sim: Simulator,
) -> None:
    pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
    wallets = [Keypair() for _ in range(100)]
    for w in wallets:
        sim.fund(w.pubkey(), lamports=10 * 10**9, tokens={})

    async def order(index: int, wallet: Keypair) -> str:
        blockhash = (await sim.chain.get_latest_blockhash()).blockhash
        for _ in range(index % 7):
            await asyncio.sleep(0)  # others poll meanwhile
        quote = pool.quote(SOL.to_base(0.1))
        tx = build_swap(
            sim, wallet, [Leg(quote, 0)], blockhash=blockhash, input_mint=SOL_MINT,
            output_mint=USDC.mint, memo=f"order-{index}", cu_price=0,
        )  # fmt: skip
        signature = await sim.chain.send_transaction(bytes(tx))
        await confirm(sim, signature)
        return signature

    signatures = await asyncio.gather(*(order(i, w) for i, w in enumerate(wallets)))
    assert len(set(signatures)) == 100
    assert all(sim.executions(s) == 1 for s in signatures)
    assert sim.cluster.slot < 150  # about one slot per round of polls, not one per poll


async def test_above_scale_zero_a_background_clock_produces_slots() -> None:
    sim = build_simulator(quiet_config(time_scale=0.005))  # 2 ms slots
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sim.start()
    try:
        await asyncio.sleep(0.1)
    finally:
        await sim.stop()
    elapsed = loop.time() - started
    produced = sim.cluster.slot
    assert 1 <= produced <= elapsed / 0.002 + 1  # one slot per period, never ahead of time
    await asyncio.sleep(0.02)
    assert sim.cluster.slot == produced  # stopped means stopped
    await sim.chain.get_signature_statuses(["5" * 64])
    await sim.chain.get_signature_statuses(["5" * 64])
    assert sim.cluster.slot == produced  # polls do not drive the clock above scale 0


async def test_a_blockhash_fetched_before_many_slots_pass_expires_for_real(
    sim: Simulator, wallet: Keypair
) -> None:
    pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "dlmm")
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    for _ in range(152):
        await sim.chain.get_signature_statuses(["5" * 64])
    tx = build_swap(
        sim, wallet, [Leg(pool.quote(SOL.to_base(1)), 0)], blockhash=blockhash,
        input_mint=SOL_MINT, output_mint=USDC.mint,
    )  # fmt: skip
    try:
        await sim.chain.send_transaction(bytes(tx))
    except BlockhashNotFound:
        return
    raise AssertionError("a blockhash older than 150 slots was accepted")


def test_landing_is_likelier_with_a_higher_priority_fee_and_rarer_under_congestion() -> None:
    cluster = Cluster(Ledger(), ClusterParams())
    cheap, paid, generous = (cluster.landing_probability(p) for p in (0, 50_000, 500_000))
    assert cheap < paid < generous <= 1.0
    cluster.congested = True
    assert cluster.landing_probability(50_000) < paid * 0.5


def test_the_congested_regime_holds_about_a_tenth_of_the_slots() -> None:
    cluster = Cluster(Ledger(), ClusterParams(), seed=3)
    congested = 0
    for _ in range(40_000):
        cluster.advance_slot()
        congested += cluster.congested
    assert 0.05 < congested / 40_000 < 0.16


async def test_a_confirmed_transaction_is_finalized_32_slots_after_it_landed(
    sim: Simulator, wallet: Keypair
) -> None:
    pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(pool.quote(SOL.to_base(1)), 0)], blockhash=blockhash,
        input_mint=SOL_MINT, output_mint=USDC.mint,
    )  # fmt: skip
    signature = await sim.chain.send_transaction(bytes(tx))
    status = await confirm(sim, signature)
    assert status.confirmation_status == "confirmed"
    assert status.slot >= 1
    sim.advance_slots(32)
    (final,) = await sim.chain.get_signature_statuses([signature])
    assert final is not None
    assert final.confirmation_status == "finalized"
