"""A hundred orders at once through the whole engine: one terminal state each,
gapless histories, unique transactions, and no swap executed twice, with and
without RPC faults."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from order_engine.bootstrap import Engine
from order_engine.domain.order import Order, OrderStatus
from tests.integration.helpers import (
    assert_one_gapless_terminal_history,
    executed_signatures,
    sim_of,
    statuses,
    submit,
    submitted_signatures,
    wait_all_terminal,
)
from tests.support.harness import engine_settings, running_engine

ORDERS = 100
# (input, output, amount): small orders over every listed pair, both directions,
# two-hop routes included, so that the workers contend for the same pools.
MIX = [
    ("SOL", "USDC", "1.5"),
    ("USDC", "SOL", "120"),
    ("SOL", "USDT", "0.8"),
    ("USDT", "USDC", "250"),
    ("JUP", "USDC", "400"),
    ("BONK", "SOL", "2000000"),
    ("BONK", "USDC", "3000000"),
    ("USDC", "JUP", "90"),
]
ON_CHAIN_CODES = {"slippage_exceeded", "insufficient_funds", "transaction_failed"}


@pytest.fixture
async def wide_engine(tmp_path: Path) -> AsyncIterator[Engine]:
    settings = engine_settings(tmp_path, worker_concurrency=ORDERS, backoff_base_ms=2)
    async with running_engine(settings) as engine:
        yield engine


async def _submit_all(engine: Engine) -> list[Order]:
    return list(await asyncio.gather(*(submit(engine, *MIX[i % len(MIX)]) for i in range(ORDERS))))


async def _check_exactly_once(engine: Engine, orders: list[Order]) -> Counter[str]:
    """Every invariant at once; returns how many orders ended with each code (and
    how many transactions were re-signed after expiry, as ``re-signed``)."""
    sim = sim_of(engine)
    done = await wait_all_terminal(engine, [o.id for o in orders], within_s=90)
    executed = executed_signatures(sim)
    assert set(executed.values()) <= {1}, "a signature executed twice"
    outcomes: Counter[str] = Counter()
    confirmed_hashes: list[str] = []
    landed_by_orders = 0
    for order in done:
        events = await engine.repo.events(order.id)
        assert_one_gapless_terminal_history(events)
        terminal = events[-1]
        mine = [s for s in submitted_signatures(events) if s in executed]
        landed_by_orders += len(mine)
        for resign in (e for e in events if "expiredTxHash" in e.details):
            # Re-signed only past the old transaction's last valid height, and
            # that transaction never executed.
            assert resign.details["blockHeight"] > resign.details["lastValidBlockHeight"]
            assert resign.details["expiredTxHash"] not in executed
            outcomes["re-signed"] += 1
        if terminal.status is OrderStatus.CONFIRMED:
            outcomes["confirmed"] += 1
            assert mine == [terminal.details["txHash"]], statuses(events)
            assert order.tx is not None
            assert order.tx.signature == terminal.details["txHash"]
            confirmed_hashes.append(str(terminal.details["txHash"]))
        else:
            code = str(terminal.details["code"])
            outcomes[code] += 1
            assert terminal.details["attempts"] >= 1
            if code in ON_CHAIN_CODES:
                # Failed on chain: it landed once, and with an error.
                assert mine == [terminal.details["txHash"]], statuses(events)
                [status] = sim.cluster.signature_statuses(mine)
                assert status is not None
                assert status.err is not None
            else:
                assert mine == [], (statuses(events), terminal.details)
    assert len(confirmed_hashes) == len(set(confirmed_hashes)), "a txHash was reused"
    assert landed_by_orders == sum(executed.values()), "an execution belongs to no order"
    return outcomes


async def test_a_hundred_orders_at_once_each_reach_exactly_one_terminal_state(
    wide_engine: Engine,
) -> None:
    orders = await _submit_all(wide_engine)

    outcomes = await _check_exactly_once(wide_engine, orders)

    assert outcomes["confirmed"] + outcomes["slippage_exceeded"] == ORDERS
    # Without faults the only way to fail is the market moving past slippageBps.
    assert set(outcomes) <= {"confirmed", "slippage_exceeded", "re-signed"}, outcomes
    assert outcomes["confirmed"] >= ORDERS * 0.9, outcomes


async def test_a_hundred_orders_under_transient_faults_still_execute_at_most_once_each(
    wide_engine: Engine,
) -> None:
    faults = sim_of(wide_engine).faults
    faults.transient_failure_rate = 0.1
    faults.rate_limit_rate = 0.1
    faults.send_timeout_rate = 0.1
    faults.ambiguous_share = 0.5
    orders = await _submit_all(wide_engine)

    outcomes = await _check_exactly_once(wide_engine, orders)

    assert sum(n for code, n in outcomes.items() if code != "re-signed") == ORDERS
    injected = sim_of(wide_engine).chain.faults.injected
    assert injected["unavailable"] > 0
    assert injected["rate_limited"] > 0
    assert injected.get("send_timeout_landed", 0) + injected.get("send_timeout_lost", 0) > 0
    assert outcomes["confirmed"] >= ORDERS * 0.8, outcomes


async def test_at_time_scale_zero_no_blockhash_expires_before_its_first_send_under_load(
    wide_engine: Engine,
) -> None:
    orders = list(
        await asyncio.gather(*(submit(wide_engine, "SOL", "USDC", "1") for _ in range(ORDERS)))
    )
    await wait_all_terminal(wide_engine, [o.id for o in orders], within_s=90)

    re_signed = 0
    for order in orders:
        events = await wide_engine.repo.events(order.id)
        re_signed += sum(1 for e in events if "expiredTxHash" in e.details)
    # Nothing was lost on the way and nothing waited 150 slots to land: no re-sign.
    assert re_signed == 0
