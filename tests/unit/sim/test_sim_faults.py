"""RPC faults: ambiguous send timeouts, rate limits and transient failures."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction
from tests.unit.sim.simkit import SOL_MINT, Leg, build_swap, confirm, quiet_config, snapshots

from order_engine.domain.errors import TransientError
from order_engine.domain.tokens import SOL, USDC
from order_engine.ports.chain import RateLimited, SendTimeout
from order_engine.sim import Simulator, build_simulator
from order_engine.sim.faults import RpcUnavailable


async def _swap_bytes(sim: Simulator, wallet: Keypair) -> bytes:
    pool = next(p for p in await snapshots(sim, SOL.mint, USDC.mint) if p.pool_kind == "amm_v4")
    quote = pool.quote(SOL.to_base(1))
    blockhash = (await sim.chain.get_latest_blockhash()).blockhash
    tx = build_swap(
        sim, wallet, [Leg(quote, 0)], blockhash=blockhash, input_mint=SOL_MINT,
        output_mint=USDC.mint,
    )  # fmt: skip
    return bytes(tx)


async def test_a_send_timeout_that_reached_the_leader_lands_exactly_once(
    sim: Simulator, wallet: Keypair
) -> None:
    raw = await _swap_bytes(sim, wallet)
    sim.faults.send_timeout_rate, sim.faults.ambiguous_share = 1.0, 1.0
    with pytest.raises(SendTimeout):
        await sim.chain.send_transaction(raw)
    signature = _signature(raw)
    status = await confirm(sim, signature)  # the client finds it by its signature
    assert status.err is None
    sim.faults.send_timeout_rate = 0.0
    assert await sim.chain.send_transaction(raw) == signature  # rebroadcast: a no-op
    sim.advance_slots(5)
    assert sim.executions(signature) == 1


async def test_a_send_timeout_that_never_arrived_leaves_no_trace_until_rebroadcast(
    sim: Simulator, wallet: Keypair
) -> None:
    raw = await _swap_bytes(sim, wallet)
    signature = _signature(raw)
    sim.faults.send_timeout_rate, sim.faults.ambiguous_share = 1.0, 0.0
    with pytest.raises(SendTimeout):
        await sim.chain.send_transaction(raw)
    for _ in range(20):
        assert await sim.chain.get_signature_statuses([signature]) == [None]
    sim.faults.send_timeout_rate = 0.0
    assert await sim.chain.send_transaction(raw) == signature
    await confirm(sim, signature)
    assert sim.executions(signature) == 1


async def test_account_reads_can_be_rate_limited_and_quotes_fail_transiently(
    sim: Simulator,
) -> None:
    sim.faults.rate_limit_rate = 1.0
    with pytest.raises(RateLimited):
        await sim.venues[0].snapshots(SOL.mint, USDC.mint)
    assert (await sim.chain.get_latest_blockhash()).blockhash  # other calls are not limited
    sim.faults.rate_limit_rate = 0.0
    assert await sim.venues[0].snapshots(SOL.mint, USDC.mint)


async def test_the_transient_failure_rate_applies_to_every_rpc_call_and_can_be_changed_live(
    sim: Simulator,
) -> None:
    sim.faults.transient_failure_rate = 1.0
    calls = [
        sim.chain.get_latest_blockhash(),
        sim.chain.get_block_height(),
        sim.chain.get_signature_statuses(["1" * 64]),
        sim.chain.get_multiple_accounts([SOL.mint]),
        sim.venues[1].snapshots(SOL.mint, USDC.mint),
    ]
    for call in calls:
        with pytest.raises(RpcUnavailable) as info:
            await call
        assert isinstance(info.value, TransientError)
    sim.faults.transient_failure_rate = 0.0
    assert await sim.chain.get_block_height() == 0


async def test_default_fault_rates_are_small_but_not_zero() -> None:
    sim = build_simulator(quiet_config(transient_failure_rate=0.02, rate_limit_rate=0.01))
    failures = 0
    for _ in range(2_000):
        try:
            await sim.chain.get_multiple_accounts([SOL.mint])
        except TransientError:
            failures += 1
    assert 20 <= failures <= 110  # about 3 % of 2000


def _signature(raw: bytes) -> str:
    return str(VersionedTransaction.from_bytes(raw).signatures[0])
