"""Time scale 0 with a slot driver: slots only while something waits, and waiting costs no polls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from solders.keypair import Keypair
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, quiet_config, snapshots

from order_engine.domain.tokens import SOL, USDC
from order_engine.ports.chain import Commitment, SignatureStatus
from order_engine.sim import Simulator, build_simulator


def driven(**overrides: object) -> Simulator:
    return build_simulator(quiet_config(zero_scale_slot_s=0.001, **overrides))


def funded(sim: Simulator) -> Keypair:
    wallet = Keypair()
    sim.fund(wallet.pubkey(), lamports=100 * 10**9, tokens={})
    return wallet


async def a_swap(sim: Simulator, wallet: Keypair) -> bytes:
    pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(pool.quote(SOL.to_base(1)), 0)], blockhash=blockhash,
        input_mint=SOL_MINT, output_mint=USDC.mint,
    )  # fmt: skip
    return bytes(tx)


async def test_an_idle_cluster_produces_no_slots() -> None:
    sim = driven()
    await sim.chain.get_latest_blockhash()
    await asyncio.sleep(0.02)
    assert sim.cluster.slot == 0


async def test_waiting_for_a_signature_returns_at_confirmation_without_polling() -> None:
    sim = driven()
    signature = await sim.chain.send_transaction(await a_swap(sim, funded(sim)))
    looks: list[object] = []
    poll = sim.cluster.poll_signature_statuses

    def counted(signatures: Sequence[str]) -> list[SignatureStatus | None]:
        looks.append(signatures)
        return poll(signatures)

    sim.cluster.poll_signature_statuses = counted  # type: ignore[method-assign]
    status = await sim.chain.wait_for_signature(signature, timeout_s=5.0)
    assert status is not None
    assert status.confirmation_status is Commitment.CONFIRMED
    assert status.err is None
    assert sim.executions(signature) == 1
    assert sim.cluster.slot >= 2  # landed, then confirmed a slot or two later
    assert len(looks) == 1  # one look on entry; the rest was a notification
    await asyncio.sleep(0.02)  # nothing pending or watched any more: the clock stops
    stopped = sim.cluster.slot
    await asyncio.sleep(0.02)
    assert sim.cluster.slot == stopped


async def test_a_wait_on_a_transaction_that_never_arrived_ends_when_its_blockhash_expires() -> None:
    sim = driven()
    latest = await sim.chain.get_latest_blockhash()
    unseen = "4" * 64
    status = await sim.chain.wait_for_signature(
        unseen, timeout_s=10.0, expires_after_height=latest.last_valid_block_height
    )
    assert status is None
    assert sim.cluster.block_height() == latest.last_valid_block_height + 1


async def test_a_held_driver_leaves_a_sent_transaction_pending_until_released() -> None:
    sim = driven()
    assert sim.driver is not None
    sim.driver.held = True
    signature = await sim.chain.send_transaction(await a_swap(sim, funded(sim)))
    assert await sim.chain.wait_for_signature(signature, timeout_s=0.02) is None
    assert sim.cluster.is_pending(signature)
    sim.driver.held = False
    status = await sim.chain.wait_for_signature(signature, timeout_s=5.0)
    assert status is not None
    assert status.confirmation_status is Commitment.CONFIRMED


def test_a_pool_read_lazily_is_in_the_state_eager_per_slot_flow_would_have_left_it() -> None:
    eager, lazy = (build_simulator(quiet_config(market_moves=True, seed=3)) for _ in range(2))
    amm, dlmm = eager.pool("SOL/USDC", "amm_v4"), eager.pool("SOL/USDC", "dlmm")
    for _ in range(300):
        eager.advance_slots(1)
        eager.pool_view(amm)  # touched every slot: flow applied slot by slot
        eager.pool_view(dlmm)
        lazy.advance_slots(1)  # never touched until the end
    assert lazy.pool_view(amm) == eager.pool_view(amm)
    assert lazy.pool_view(dlmm) == eager.pool_view(dlmm)
    assert lazy.market.trades == eager.market.trades > 0


async def test_a_block_height_someone_waits_for_is_work_for_the_slot_driver() -> None:
    sim = build_simulator(quiet_config(zero_scale_slot_s=0.001))
    start = sim.cluster.slot

    reached = await sim.chain.wait_for_block_height(start + 3, 5.0)

    assert reached == start + 4
    await sim.stop()
