"""The router against the simulator's real pools, end to end through the engine.

Sizes come from docs/simulation.md ("Where the route flips", SOL/USDC at
genesis): Meteora alone up to ~89 SOL, a split from there to ~20 000 SOL,
Raydium alone beyond; the best *single* pool flips near 139 SOL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from order_engine.bootstrap import Engine
from order_engine.domain.order import OrderEvent, OrderStatus
from order_engine.domain.tokens import BONK, SOL, USDC
from tests.integration.helpers import (
    assert_one_gapless_terminal_history,
    executed_signatures,
    sim_of,
    statuses,
    submit,
    venue_swaps,
    wait_terminal,
    wallet_of,
    wallet_value,
)


def _event(events: list[OrderEvent], status: OrderStatus) -> dict[str, Any]:
    return dict(next(e for e in events if e.status is status).details)


def _quotes_by_venue(routing: dict[str, Any]) -> dict[str, Decimal]:
    return {q["venue"]: Decimal(q["amountOut"]) for q in routing["quotes"]}


@pytest.mark.parametrize(
    ("sol", "venue"),
    [("1", "meteora"), ("30000", "raydium")],
    ids=["small-goes-to-meteora", "large-goes-to-raydium"],
)
async def test_a_small_sol_order_goes_to_meteora_alone_and_a_large_one_to_raydium_alone(
    engine: Engine, sol: str, venue: str
) -> None:
    order = await submit(engine, "SOL", "USDC", sol)
    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    routing = _event(events, OrderStatus.ROUTING)
    assert routing["plan"]["kind"] == "single"
    assert [leg["venue"] for leg in routing["plan"]["legs"]] == [venue]
    assert _event(events, OrderStatus.BUILDING)["dex"] == venue
    assert _event(events, OrderStatus.CONFIRMED)["dex"] == venue
    assert done.tx is not None
    assert venue_swaps(done.tx.raw) == [venue]


async def test_the_best_single_venue_flips_from_meteora_to_raydium_as_the_order_grows(
    engine: Engine,
) -> None:
    small = await engine.router.decide(SOL.mint, USDC.mint, SOL.to_base(10), 50)
    large = await engine.router.decide(SOL.mint, USDC.mint, SOL.to_base(300), 50)

    best_small = small.plan.alternatives[0]
    best_large = large.plan.alternatives[0]
    assert best_small.venue == "meteora"
    assert best_large.venue == "raydium"
    assert {q.venue for q in small.plan.alternatives} == {"meteora", "raydium"}
    assert {q.venue for q in large.plan.alternatives} == {"meteora", "raydium"}


@pytest.mark.parametrize("sol", ["120", "500"])
async def test_a_split_beats_both_single_venues_and_executes_as_one_transaction_with_a_swap_per_leg(
    engine: Engine, sol: str
) -> None:
    sim = sim_of(engine)
    owner = wallet_of(engine).pubkey()
    sol_before = wallet_value(sim, owner, SOL.mint)
    usdc_before = wallet_value(sim, owner, USDC.mint)

    order = await submit(engine, "SOL", "USDC", sol)
    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    assert_one_gapless_terminal_history(events)
    routing = _event(events, OrderStatus.ROUTING)
    plan = routing["plan"]
    assert plan["kind"] == "split"
    assert plan["dex"] == "meteora+raydium"
    assert "split across 2 pools" in plan["reason"]
    expected = Decimal(plan["expectedAmountOut"])
    singles = _quotes_by_venue(routing)
    assert all(expected > out for out in singles.values()), (expected, singles)
    # A pool that cannot fill the whole amount alone is still accounted for.
    unfilled = {u["venue"]: u["reason"] for u in routing["unfilled"]}
    assert set(singles) | set(unfilled) == {"meteora", "raydium"}
    assert all("insufficient liquidity" in why for why in unfilled.values()), unfilled
    legs = plan["legs"]
    assert sorted(leg["venue"] for leg in legs) == ["meteora", "raydium"]
    assert sum(Decimal(str(leg["percent"])) for leg in legs) == 100
    assert sum(Decimal(leg["amountIn"]) for leg in legs) == Decimal(sol)

    # One transaction, one swap instruction per leg, in the plan's leg order.
    assert done.tx is not None
    assert venue_swaps(done.tx.raw) == [leg["venue"] for leg in legs]
    assert submitted_once(events) == done.tx.signature
    assert executed_signatures(sim) == {done.tx.signature: 1}

    # The fill is the wallet's real balance change, and at least the minimum.
    confirmed = _event(events, OrderStatus.CONFIRMED)
    assert int(confirmed["amountInRaw"]) == SOL.to_base(sol)
    assert int(confirmed["amountOutRaw"]) >= int(plan["minAmountOutRaw"])
    assert wallet_value(sim, owner, USDC.mint) - usdc_before == int(confirmed["amountOutRaw"])
    assert sol_before - wallet_value(sim, owner, SOL.mint) == SOL.to_base(sol) + int(
        confirmed["feeLamports"]
    )


def submitted_once(events: list[OrderEvent]) -> str:
    submitted = [e for e in events if e.status is OrderStatus.SUBMITTED]
    assert len(submitted) == 1, statuses(events)
    return str(submitted[0].details["txHash"])


async def test_bonk_to_usdc_has_no_direct_pool_and_routes_in_two_hops_through_sol(
    engine: Engine,
) -> None:
    sim = sim_of(engine)
    owner = wallet_of(engine).pubkey()
    usdc_before = wallet_value(sim, owner, USDC.mint)
    bonk_before = wallet_value(sim, owner, BONK.mint)

    order = await submit(engine, "BONK", "USDC", "50000000")  # about $1 000
    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    plan = _event(events, OrderStatus.ROUTING)["plan"]
    assert plan["kind"] == "two-hop"
    assert "two hops via SOL" in plan["reason"]
    hops = [(leg["hop"], leg["inputToken"], leg["outputToken"]) for leg in plan["legs"]]
    assert hops == [(1, "BONK", "SOL"), (2, "SOL", "USDC")]
    assert done.tx is not None
    assert len(venue_swaps(done.tx.raw)) == 2
    assert executed_signatures(sim) == {done.tx.signature: 1}
    confirmed = _event(events, OrderStatus.CONFIRMED)
    assert bonk_before - wallet_value(sim, owner, BONK.mint) == BONK.to_base("50000000")
    assert wallet_value(sim, owner, USDC.mint) - usdc_before == int(confirmed["amountOutRaw"])
    assert int(confirmed["amountOutRaw"]) >= int(plan["minAmountOutRaw"])


async def test_the_routing_event_carries_every_quote_the_chosen_plan_and_why_it_won(
    engine: Engine,
) -> None:
    order = await submit(engine, "SOL", "USDC", "200", slippage_bps=30)
    await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)
    routing = _event(events, OrderStatus.ROUTING)

    assert routing["attempt"] == 1
    assert routing["skipped"] == {}
    quote_fields = {"venue", "pool", "poolKind", "amountIn", "amountOut", "fee", "priceImpactBps"}
    assert routing["unfilled"] == []  # both pools can fill 200 SOL alone
    for quote in routing["quotes"]:
        assert quote_fields <= set(quote)
        assert Decimal(quote["amountIn"]) == 200
        assert Decimal(quote["fee"]) > 0
        assert Decimal(quote["priceImpactBps"]) > 0
    assert {(q["venue"], q["poolKind"]) for q in routing["quotes"]} == {
        ("meteora", "dlmm"),
        ("raydium", "amm_v4"),
    }
    plan = routing["plan"]
    assert plan["reason"]
    assert Decimal(plan["priceImpactBps"]) > 0
    expected, minimum = int(plan["expectedAmountOutRaw"]), int(plan["minAmountOutRaw"])
    assert minimum == expected * (10_000 - 30) // 10_000
    assert all({"percent", "hop", "venue", "amountOut"} <= set(leg) for leg in plan["legs"])
    # The order record keeps the same decision for post-mortem.
    stored = await engine.repo.get(order.id)
    assert stored is not None
    assert stored.route is not None
    assert stored.route["reason"] == plan["reason"]
    assert stored.route["quotes"] == routing["quotes"]
    building = _event(events, OrderStatus.BUILDING)
    assert building["expectedAmountOut"] == plan["expectedAmountOut"]
    assert building["minAmountOut"] == plan["minAmountOut"]


@pytest.mark.parametrize(
    ("side", "amount"), [("SOL", "10"), ("USDC", "1500")], ids=["sol-in", "sol-out"]
)
async def test_a_sol_fill_excludes_a_wrapped_sol_account_an_earlier_two_hop_left_behind(
    engine: Engine, side: str, amount: str
) -> None:
    """A BONK->USDC route through SOL leaves a wSOL account (rent plus the first
    hop's surplus) in the wallet; the next SOL order closes it. The reported fill
    must still be the swap's, not the swap plus what the closed account returned."""
    sim = sim_of(engine)
    owner = wallet_of(engine).pubkey()
    first = await submit(engine, "BONK", "USDC", "50000000")
    assert (await wait_terminal(engine, first.id)).status is OrderStatus.CONFIRMED
    assert sim.token_balance(owner, SOL.mint) > 0  # the surplus of the first hop
    usdc_before = wallet_value(sim, owner, USDC.mint)
    sol_before = wallet_value(sim, owner, SOL.mint)

    pair = ("SOL", "USDC") if side == "SOL" else ("USDC", "SOL")
    order = await submit(engine, *pair, amount)
    done = await wait_terminal(engine, order.id)

    assert done.status is OrderStatus.CONFIRMED
    assert done.fill is not None
    fill_in, fill_out = int(done.fill["amountInRaw"]), int(done.fill["amountOutRaw"])
    fee = int(done.fill["feeLamports"])
    usdc_change = wallet_value(sim, owner, USDC.mint) - usdc_before
    sol_change = wallet_value(sim, owner, SOL.mint) - sol_before + fee
    assert sim.token_balance(owner, SOL.mint) == 0  # the wSOL account was closed
    if side == "SOL":
        assert fill_in == SOL.to_base(amount) == -sol_change
        assert fill_out == usdc_change
    else:
        assert fill_in == USDC.to_base(amount) == -usdc_change
        assert fill_out == sol_change


async def test_a_named_pool_is_routed_on_alone_and_an_unknown_one_falls_back_to_every_venue(
    engine: Engine,
) -> None:
    sim = sim_of(engine)
    raydium = sim.pool("SOL/USDC", "amm_v4")
    amount = SOL.to_base(10)  # alone, Meteora would win this size

    named = await engine.router.decide(
        SOL.mint, USDC.mint, amount, 50, pool=("raydium", raydium.address)
    )
    unknown = await engine.router.decide(
        SOL.mint, USDC.mint, amount, 50, pool=("raydium", USDC.mint)
    )

    assert [leg.quote.pool_id for leg in named.plan.legs] == [raydium.address]
    assert [leg.quote.venue for leg in unknown.plan.legs] == ["meteora"]
