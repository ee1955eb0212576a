"""Exactly-once execution over an at-least-once queue, whatever the chain does.

Each test drives the real executor against the real store and the simulated
cluster; the simulator's own knobs make transactions get lost, time out
ambiguously or wait to land. Where a worker must die at an exact point, its
Chain port is wrapped in ``CrashAfter``, which forwards the call and then
kills the worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from order_engine.adapters.venues import meteora as meteora_client
from order_engine.bootstrap import Engine
from order_engine.domain.errors import StaleWrite, TransientError
from order_engine.domain.order import OrderStatus, Trigger
from order_engine.domain.tokens import SOL, USDC
from order_engine.ports.chain import BlockhashNotFound
from order_engine.ports.queue import Job
from order_engine.sim import Simulator
from tests.integration.helpers import (
    CrashAfter,
    SkewedClock,
    WorkerKilled,
    assert_one_gapless_terminal_history,
    deliver_until_done,
    executed_signatures,
    executor_of,
    next_event,
    recent_blockhash,
    set_landing,
    sim_of,
    statuses,
    submit,
    submitted_signatures,
    wait_for_event,
    wait_terminal,
    wallet_of,
    wallet_value,
    worker,
)


def _lose_every_send(sim: Simulator) -> None:
    """Every sendTransaction times out and never reaches the leader."""
    sim.faults.send_timeout_rate = 1.0
    sim.faults.ambiguous_share = 0.0


def _deliver_every_send(sim: Simulator) -> None:
    sim.faults.send_timeout_rate = 0.0


async def test_a_transaction_that_never_lands_is_re_signed_only_once_its_blockhash_expired(
    engine: Engine,
) -> None:
    sim = sim_of(engine)
    _lose_every_send(sim)
    live = await engine.bus.subscribe()
    order = await submit(engine, "SOL", "USDC", "2")

    first = await next_event(live, order.id, OrderStatus.SUBMITTED)
    stored = await engine.repo.get(order.id)
    assert stored is not None
    assert stored.tx is not None
    assert stored.tx.signature == first.details["txHash"]
    old_raw, old_lvbh = stored.tx.raw, int(first.details["lastValidBlockHeight"])
    await next_event(live, order.id, OrderStatus.BUILDING)
    _deliver_every_send(sim)  # from the re-sign on, sends reach the leader
    await live.close()
    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert statuses(events) == [
        "pending", "routing", "building", "submitted", "building", "submitted", "confirmed",
    ]  # fmt: skip
    assert_one_gapless_terminal_history(events)
    old_sig, new_sig = submitted_signatures(events)
    rebuild = events[4]
    assert rebuild.details["expiredTxHash"] == old_sig
    # Re-signed past the last valid height, and at the first poll that saw it.
    assert old_lvbh < int(rebuild.details["blockHeight"]) <= old_lvbh + 2
    assert int(rebuild.details["lastValidBlockHeight"]) == old_lvbh
    assert new_sig != old_sig
    assert done.tx is not None
    assert done.tx.signature == new_sig == events[-1].details["txHash"]
    assert recent_blockhash(done.tx.raw) != recent_blockhash(old_raw)
    assert int(events[5].details["lastValidBlockHeight"]) > old_lvbh
    # The first transaction never executed, and never can: its blockhash is gone.
    assert executed_signatures(sim) == {new_sig: 1}
    with pytest.raises(BlockhashNotFound):
        await sim.chain.send_transaction(old_raw)


async def test_a_transaction_slow_to_land_is_rebroadcast_as_the_same_bytes_and_never_re_signed(
    engine: Engine,
) -> None:
    sim = sim_of(engine)
    _lose_every_send(sim)
    live = await engine.bus.subscribe()
    order = await submit(engine, "SOL", "USDC", "2")
    submitted = await next_event(live, order.id, OrderStatus.SUBMITTED)
    await live.close()
    lvbh = int(submitted.details["lastValidBlockHeight"])
    async with asyncio.timeout(10):
        while True:  # let most of its validity pass in limbo
            if sim.cluster.block_height() >= lvbh - 30:
                break
            await asyncio.sleep(0)
    _deliver_every_send(sim)
    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert events[-1].details["txHash"] == submitted.details["txHash"]
    assert done.fill is not None
    assert executed_signatures(sim) == {submitted.details["txHash"]: 1}
    # The same bytes went out again and again.
    assert sim.chain.faults.injected["send_timeout_lost"] > 1


async def test_an_ambiguous_send_timeout_that_landed_confirms_exactly_one_swap(
    engine: Engine,
) -> None:
    sim = sim_of(engine)
    owner = wallet_of(engine).pubkey()
    sim.faults.send_timeout_rate = 1.0
    sim.faults.ambiguous_share = 1.0
    usdc_before = wallet_value(sim, owner, USDC.mint)
    sol_before = wallet_value(sim, owner, SOL.mint)

    order = await submit(engine, "SOL", "USDC", "3")
    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert done.status is OrderStatus.CONFIRMED, statuses(events)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    signature = events[-1].details["txHash"]
    assert submitted_signatures(events) == [signature]
    assert executed_signatures(sim) == {signature: 1}
    assert sim.chain.faults.injected["send_timeout_landed"] >= 1
    assert sim.chain.faults.injected.get("send_timeout_lost", 0) == 0
    # The wallet moved once, by exactly the reported fill.
    fill = events[-1].details
    assert wallet_value(sim, owner, USDC.mint) - usdc_before == int(fill["amountOutRaw"])
    spent = sol_before - wallet_value(sim, owner, SOL.mint) - int(fill["feeLamports"])
    assert spent == SOL.to_base(3)


@pytest.mark.parametrize("reached", [True, False], ids=["send-reached-leader", "send-was-lost"])
async def test_a_worker_killed_after_sending_is_settled_by_the_redelivery_without_re_signing(
    idle_engine: Engine, reached: bool
) -> None:
    engine = idle_engine
    sim = sim_of(engine)
    order = await submit(engine, "SOL", "USDC", "5")
    if not reached:
        _lose_every_send(sim)
    doomed = CrashAfter(engine.chain)

    with pytest.raises(WorkerKilled):
        await worker(engine, "worker-a", chain=doomed)(Job(order.id, 1, 3))

    crashed = await engine.repo.get(order.id)
    assert crashed is not None
    assert crashed.status is OrderStatus.SUBMITTED
    assert crashed.tx is not None
    assert doomed.sent == [crashed.tx.raw]  # persisted before it was sent
    signature = crashed.tx.signature
    assert sim.cluster.is_pending(signature) is reached
    assert executed_signatures(sim) == {}

    _deliver_every_send(sim)
    await worker(engine, "worker-b")(Job(order.id, 1, 3))  # the reconciler's fresh job

    done = await engine.repo.get(order.id)
    assert done is not None
    events = await engine.repo.events(order.id)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert events[-1].details["txHash"] == signature
    assert done.tx is not None
    assert done.tx.raw == crashed.tx.raw
    assert executed_signatures(sim) == {signature: 1}
    assert done.attempts == 2


async def test_a_worker_killed_between_the_re_sign_decision_and_the_new_signature_re_routes_once(
    idle_engine: Engine,
) -> None:
    """Killed after recording the re-sign but before persisting the new transaction:
    the order sits in ``building`` holding only the expired one, and the next
    delivery routes afresh from there."""
    engine = idle_engine
    sim = sim_of(engine)
    _lose_every_send(sim)
    order = await submit(engine, "SOL", "USDC", "3")
    # The 2nd blockhash fetch is the re-sign's, right after the rebuild was recorded.
    doomed = CrashAfter(engine.chain, "get_latest_blockhash", nth=2)
    with pytest.raises(WorkerKilled):
        await worker(engine, "worker-a", chain=doomed)(Job(order.id, 1, 3))
    crashed = await engine.repo.get(order.id)
    assert crashed is not None
    assert crashed.status is OrderStatus.BUILDING
    assert crashed.tx is not None
    expired = crashed.tx.signature

    _deliver_every_send(sim)
    await worker(engine, "worker-b")(Job(order.id, 1, 3))

    events = await engine.repo.events(order.id)
    assert_one_gapless_terminal_history(events)
    assert statuses(events) == [
        "pending", "routing", "building", "submitted",  # the first transaction, lost
        "building",  # worker A: expired, re-sign (then A dies)
        "routing", "building", "submitted", "confirmed",  # worker B
    ]  # fmt: skip
    first_sig, second_sig = submitted_signatures(events)
    assert first_sig == expired != second_sig
    assert events[-1].details["txHash"] == second_sig
    assert executed_signatures(sim) == {second_sig: 1}


async def test_a_redelivery_that_finds_the_transaction_landed_settles_it_without_sending(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    sim = sim_of(engine)
    order = await submit(engine, "SOL", "USDC", "5")
    with pytest.raises(WorkerKilled):
        await worker(engine, "worker-a", chain=CrashAfter(engine.chain))(Job(order.id, 1, 3))
    crashed = await engine.repo.get(order.id)
    assert crashed is not None
    assert crashed.tx is not None
    signature = crashed.tx.signature
    for _ in range(100):  # the cluster goes on: the transaction lands meanwhile
        if sim.executions(signature):
            break
        sim.advance_slots(1)
    sim.advance_slots(2)  # and is confirmed
    assert sim.executions(signature) == 1

    # Worker B would die on any send: it must settle from the status alone.
    careful = CrashAfter(engine.chain)
    await worker(engine, "worker-b", chain=careful)(Job(order.id, 1, 3))

    assert careful.sent == []
    events = await engine.repo.events(order.id)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert events[-1].details["txHash"] == signature
    assert executed_signatures(sim) == {signature: 1}


async def test_a_redelivery_waits_while_the_first_worker_still_holds_the_lease(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    sim = sim_of(engine)
    order = await submit(engine, "SOL", "USDC", "5")
    # Worker A broadcasts, polls once, and is still waiting for its transaction.
    slow_a = worker(engine, "worker-a", poll_interval_s=5.0)
    first = asyncio.create_task(slow_a(Job(order.id, 1, 3)))
    submitted = await wait_for_event(engine, order.id, OrderStatus.SUBMITTED)

    # The redelivered job finds a live lease: it does nothing and asks to be retried.
    with pytest.raises(TransientError, match="leased by another worker"):
        await worker(engine, "worker-b")(Job(order.id, 1, 3))
    assert [e.seq for e in await engine.repo.events(order.id)][-1] == submitted.seq

    first.cancel()  # worker A dies; its lease is dropped on the way out
    with pytest.raises(asyncio.CancelledError):
        await first
    await worker(engine, "worker-b")(Job(order.id, 1, 3))

    events = await engine.repo.events(order.id)
    assert statuses(events) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert events[-1].details["txHash"] == submitted.details["txHash"]
    assert executed_signatures(sim) == {submitted.details["txHash"]: 1}


async def test_a_job_delivered_twice_at_once_executes_one_swap_with_a_gapless_history(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    sim = sim_of(engine)
    orders = [await submit(engine, "SOL", "USDC", str(n)) for n in range(1, 9)]
    a, b = worker(engine, "worker-a"), worker(engine, "worker-b")

    async with asyncio.timeout(30):
        await asyncio.gather(*(deliver_until_done(w, engine, o.id) for o in orders for w in (a, b)))

    signatures = []
    for order in orders:
        events = await engine.repo.events(order.id)
        assert_one_gapless_terminal_history(events)
        assert events[-1].status is OrderStatus.CONFIRMED, statuses(events)
        assert submitted_signatures(events) == [events[-1].details["txHash"]]
        signatures.append(events[-1].details["txHash"])
    assert executed_signatures(sim) == dict.fromkeys(signatures, 1)


async def test_two_workers_that_both_think_they_hold_the_lease_still_execute_each_order_once(
    idle_engine: Engine,
) -> None:
    """Worker B's clock runs an hour ahead, so every lease A takes looks expired to
    B, and both run every order at the same time: only the conditional writes
    keep them apart. Every send is lost until the first transactions expired,
    so the two also race to re-sign; then sends time out ambiguously now and then."""
    engine = idle_engine
    sim = sim_of(engine)
    _lose_every_send(sim)
    orders = [await submit(engine, "SOL", "USDC", str(n)) for n in range(1, 9)]
    a = worker(engine, "worker-a")
    b = worker(engine, "worker-b", clock=SkewedClock(timedelta(hours=1)))

    async with asyncio.timeout(60):
        both = asyncio.gather(
            *(deliver_until_done(w, engine, o.id) for o in orders for w in (a, b))
        )
        while True:  # every first transaction has expired unseen
            if sim.cluster.block_height() > 200:
                break
            await asyncio.sleep(0.001)
        sim.faults.send_timeout_rate = 0.3
        sim.faults.ambiguous_share = 0.5
        await both

    executed = executed_signatures(sim)
    assert all(count == 1 for count in executed.values())
    for order in orders:
        events = await engine.repo.events(order.id)
        assert_one_gapless_terminal_history(events)
        assert any("expiredTxHash" in e.details for e in events), statuses(events)
        mine = [s for s in submitted_signatures(events) if s in executed]
        if events[-1].status is OrderStatus.CONFIRMED:
            assert mine == [events[-1].details["txHash"]], statuses(events)
        else:  # failed: never while one of its transactions executed
            assert mine == [], (statuses(events), events[-1].details)


async def test_a_stale_worker_that_gives_up_cannot_fail_an_order_another_worker_re_signed(
    idle_engine: Engine,
) -> None:
    """Worker A waits on its transaction; it never lands and expires. Worker B (whose
    clock says A's lease ran out) re-signs and broadcasts, then dies. When A wakes
    and finds its own transaction expired with no re-sign left to spend, it gives
    up; its failure must be refused, because B's transaction may still land."""
    engine = idle_engine
    sim = sim_of(engine)
    order = await submit(engine, "SOL", "USDC", "4")
    _lose_every_send(sim)
    slow_a = worker(engine, "worker-a", poll_interval_s=1.0, max_rebuilds=0)
    a_task = asyncio.create_task(slow_a(Job(order.id, 1, 3)))
    first = await wait_for_event(engine, order.id, OrderStatus.SUBMITTED)
    await asyncio.sleep(0.05)  # A has polled once and sleeps until its next poll

    sim.advance_slots(int(first.details["lastValidBlockHeight"]) - sim.cluster.slot + 1)
    _deliver_every_send(sim)
    set_landing(sim, possible=False)  # B's transaction is in flight, not yet landed
    b_chain = CrashAfter(engine.chain)
    b = worker(engine, "worker-b", chain=b_chain, clock=SkewedClock(timedelta(hours=1)))
    with pytest.raises(WorkerKilled):
        await b(Job(order.id, 1, 3))
    in_flight = await engine.repo.get(order.id)
    assert in_flight is not None
    assert in_flight.status is OrderStatus.SUBMITTED
    assert in_flight.tx is not None
    assert in_flight.tx.signature != first.details["txHash"]
    assert sim.cluster.is_pending(in_flight.tx.signature)

    async with asyncio.timeout(10):
        await a_task  # A wakes, sees its own transaction expired, and gives up

    after_a = await engine.repo.get(order.id)
    assert after_a is not None
    assert after_a.status is OrderStatus.SUBMITTED, after_a.error_message
    set_landing(sim, possible=True)
    await worker(engine, "worker-c")(Job(order.id, 1, 3))
    events = await engine.repo.events(order.id)
    assert_one_gapless_terminal_history(events)
    assert events[-1].status is OrderStatus.CONFIRMED
    assert events[-1].details["txHash"] == in_flight.tx.signature
    assert executed_signatures(sim) == {in_flight.tx.signature: 1}


async def test_a_write_from_a_stale_view_of_the_order_is_refused_and_leaves_no_trace(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    order = await submit(engine, "SOL", "USDC", "1")
    now = executor_of(engine).clock.now()
    mine = await engine.repo.get(order.id)
    theirs = await engine.repo.get(order.id)
    assert mine is not None
    assert theirs is not None

    event = mine.apply(Trigger.ROUTE, now, {"by": "worker-a"})
    await engine.repo.record(mine, event)
    stale = theirs.apply(Trigger.FAIL, now, {"by": "worker-b"})
    with pytest.raises(StaleWrite, match="expected stored seq 1 to write seq 2, found seq 2"):
        await engine.repo.record(dataclasses.replace(theirs, error_code="x"), stale)

    stored = await engine.repo.get(order.id)
    assert stored is not None
    assert stored.status is OrderStatus.ROUTING
    assert stored.error_code is None
    events = await engine.repo.events(order.id)
    assert [(e.seq, e.status.value, e.details.get("by")) for e in events] == [
        (1, "pending", None),
        (2, "routing", "worker-a"),
    ]


@pytest.mark.parametrize(
    ("sol", "venue", "chain_error"),
    [("1", "meteora", "ExceededAmountSlippageTolerance"), ("30000", "raydium", "ExceededSlippage")],
)
async def test_a_tight_slippage_bound_fails_when_the_market_moves_before_the_transaction_lands(
    engine: Engine, sol: str, venue: str, chain_error: str
) -> None:
    sim = sim_of(engine)
    owner = wallet_of(engine).pubkey()
    usdc_before = wallet_value(sim, owner, USDC.mint)
    sol_before = wallet_value(sim, owner, SOL.mint)
    subscription = await engine.bus.subscribe()
    order = await submit(engine, "SOL", "USDC", sol, slippage_bps=1)

    # Between the quote and the landing slot, someone sells SOL into the chosen pool.
    async with asyncio.timeout(10):
        async for event in subscription:
            if event.order_id == order.id and event.status is OrderStatus.BUILDING:
                break
    pool_id = event.details["legs"][0]["pool"]
    record = next(r for r in sim.records if r.listing.address == pool_id)
    before = sim.pool_view(record.listing).price
    whale = SOL.to_base(50 if venue == "meteora" else 2_000)
    assert sim.market.swap(record, a_to_b=True, amount_in=whale, env=sim.cluster.env())
    assert sim.pool_view(record.listing).price < before
    await subscription.close()

    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert events[2].details["dex"] == venue
    assert statuses(events) == ["pending", "routing", "building", "submitted", "failed"]
    failed = events[-1].details
    assert failed["code"] == "slippage_exceeded"
    assert chain_error in failed["error"]
    assert failed["attempts"] == 1
    assert done.error_code == "slippage_exceeded"
    assert done.error_message is not None
    assert chain_error in done.error_message
    # It landed and failed: executed once, paid its fee, moved no tokens.
    signature = submitted_signatures(events)[0]
    assert failed["txHash"] == signature
    assert executed_signatures(sim) == {signature: 1}
    assert wallet_value(sim, owner, USDC.mint) == usdc_before
    assert sol_before - wallet_value(sim, owner, SOL.mint) == failed["feeLamports"]


async def test_a_swap_whose_bin_arrays_went_stale_is_requoted_and_fills_exactly_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Narrow the window of bin arrays a swap names, so that a whale can move the
    # price past it between the quote and the landing slot.
    monkeypatch.setattr(meteora_client, "ARRAYS_BEHIND", 0)
    sim = sim_of(engine)
    # Freeze the slot clock: the purchase waits in flight (no slot, so no landing,
    # no expiry, no market flow) until the whale has traded.
    ticking = sim.cluster.params
    sim.cluster.params = dataclasses.replace(ticking, advance_on_poll=False)
    # ... and keep arbitrageurs from trading the pool back before it lands.
    sim.market.params = dataclasses.replace(
        sim.market.params, arbitrage_probability=0.0, noise_probability=0.0
    )
    order = await submit(engine, "USDC", "SOL", "15", slippage_bps=5000)
    building = await wait_for_event(engine, order.id, OrderStatus.BUILDING)
    await wait_for_event(engine, order.id, OrderStatus.SUBMITTED)
    assert building.details["dex"] == "meteora"
    pool_id = building.details["legs"][0]["pool"]
    record = next(r for r in sim.records if r.listing.address == pool_id)
    # Selling SOL pushes the active bin down, behind this purchase's bin arrays.
    assert sim.market.swap(record, a_to_b=True, amount_in=SOL.to_base(200), env=sim.cluster.env())
    sim.cluster.params = ticking

    done = await wait_terminal(engine, order.id)
    events = await engine.repo.events(order.id)

    assert statuses(events) == [
        "pending",
        "routing",
        "building",
        "submitted",
        "building",
        "submitted",
        "confirmed",
    ]
    first, second = submitted_signatures(events)
    rebuild = events[4].details
    assert "BinArrayNotFound" in rebuild["reason"]
    assert rebuild["failedTxHash"] == first
    assert rebuild["chainError"].startswith("BinArrayNotFound")
    # The stale transaction landed and failed (fee only); the re-signed one filled.
    assert executed_signatures(sim) == {first: 1, second: 1}
    assert done.fill is not None
    assert done.fill["txHash"] == second
    assert_one_gapless_terminal_history(events)
