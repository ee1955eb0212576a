"""The order state machine: the table is the specification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_engine.domain.errors import InvalidTransition
from order_engine.domain.order import (
    ACTIVE,
    CANCELLABLE,
    RUNNING,
    TERMINAL,
    TRANSITIONS,
    WAITING,
    Order,
    OrderStatus,
    Trigger,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_order() -> Order:
    order, _ = Order.accept(
        order_id=uuid4(),
        input_mint="in",
        output_mint="out",
        amount_in=10,
        slippage_bps=50,
        at=T0,
    )
    return order


def test_a_new_order_is_pending_with_seq_one() -> None:
    order, event = Order.accept(
        order_id=uuid4(), input_mint="a", output_mint="b", amount_in=1, slippage_bps=1, at=T0
    )
    assert (order.status, order.seq) == (OrderStatus.PENDING, 1)
    assert (event.status, event.seq, event.order_id) == (OrderStatus.PENDING, 1, order.id)


def test_the_happy_path_passes_through_every_status_with_gapless_seqs() -> None:
    order = new_order()
    events = [
        order.apply(trigger, T0 + timedelta(seconds=i))
        for i, trigger in enumerate([Trigger.ROUTE, Trigger.BUILD, Trigger.SUBMIT, Trigger.CONFIRM])
    ]
    assert [e.status for e in events] == [
        OrderStatus.ROUTING,
        OrderStatus.BUILDING,
        OrderStatus.SUBMITTED,
        OrderStatus.CONFIRMED,
    ]
    assert [e.seq for e in events] == [2, 3, 4, 5]
    assert order.is_terminal
    assert order.seq == 5


def test_an_illegal_move_raises_and_leaves_the_order_untouched() -> None:
    order = new_order()
    for trigger in (Trigger.ROUTE, Trigger.BUILD, Trigger.SUBMIT):
        order.apply(trigger, T0)
    before = (order.status, order.seq, order.updated_at)
    with pytest.raises(InvalidTransition, match="submitted -> route"):
        order.apply(Trigger.ROUTE, T0 + timedelta(hours=1))
    assert (order.status, order.seq, order.updated_at) == before


def test_terminal_statuses_have_no_outgoing_edges() -> None:
    for status, _ in TRANSITIONS:
        assert status not in TERMINAL
    order = new_order()
    order.apply(Trigger.FAIL, T0)
    for trigger in Trigger:
        with pytest.raises(InvalidTransition, match="terminal"):
            order.apply(trigger, T0)


def test_active_and_terminal_partition_the_statuses() -> None:
    assert set(OrderStatus) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL


def test_every_running_status_can_fail() -> None:
    for status in RUNNING:
        assert TRANSITIONS[(status, Trigger.FAIL)] is OrderStatus.FAILED


def test_waiting_and_running_partition_the_active_statuses() -> None:
    assert WAITING | RUNNING == ACTIVE
    assert not WAITING & RUNNING


def test_a_waiting_order_fires_then_joins_the_market_path_with_gapless_seqs() -> None:
    order = new_order()
    triggers = [Trigger.WAIT, Trigger.FIRE, Trigger.ROUTE, Trigger.BUILD, Trigger.SUBMIT]
    events = [order.apply(trigger, T0) for trigger in [*triggers, Trigger.CONFIRM]]
    assert [e.status for e in events] == [
        OrderStatus.OPEN,
        OrderStatus.TRIGGERED,
        OrderStatus.ROUTING,
        OrderStatus.BUILDING,
        OrderStatus.SUBMITTED,
        OrderStatus.CONFIRMED,
    ]
    assert [e.seq for e in events] == [2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("trigger", "end"),
    [(Trigger.EXPIRE, OrderStatus.EXPIRED), (Trigger.CANCEL, OrderStatus.CANCELLED)],
)
def test_an_open_order_ends_by_expiry_or_cancel_exactly_once(
    trigger: Trigger, end: OrderStatus
) -> None:
    order = new_order()
    order.apply(Trigger.WAIT, T0)
    assert order.apply(trigger, T0).status is end
    assert order.is_terminal
    for again in (Trigger.EXPIRE, Trigger.CANCEL, Trigger.FIRE):
        with pytest.raises(InvalidTransition, match="terminal"):
            order.apply(again, T0)


def test_only_a_waiting_order_can_be_cancelled_or_expired() -> None:
    for trigger in (Trigger.CANCEL, Trigger.EXPIRE):
        assert {status for status, t in TRANSITIONS if t is trigger} == CANCELLABLE == WAITING


def test_a_note_keeps_an_open_order_open_with_its_own_event_and_nothing_else_takes_one() -> None:
    order = new_order()
    order.apply(Trigger.WAIT, T0)
    event = order.apply(Trigger.NOTE, T0, {"failedFilter": "minLiquidity"})
    assert (order.status, event.status, event.seq) == (OrderStatus.OPEN, OrderStatus.OPEN, 3)
    assert {status for status, t in TRANSITIONS if t is Trigger.NOTE} == WAITING


def test_a_market_order_never_enters_the_waiting_states() -> None:
    order = new_order()
    order.apply(Trigger.ROUTE, T0)
    for trigger in (Trigger.WAIT, Trigger.FIRE, Trigger.CANCEL):
        with pytest.raises(InvalidTransition, match="routing -> "):
            order.apply(trigger, T0)


def test_a_fired_order_waits_again_only_before_anything_is_signed() -> None:
    rearmed = {status for status, t in TRANSITIONS if t is Trigger.REARM}
    assert rearmed == {OrderStatus.TRIGGERED, OrderStatus.ROUTING, OrderStatus.BUILDING}
    assert {TRANSITIONS[(status, Trigger.REARM)] for status in rearmed} == {OrderStatus.OPEN}
    assert (OrderStatus.SUBMITTED, Trigger.REARM) not in TRANSITIONS


def test_an_expired_transaction_is_rebuilt_but_never_rerouted_from_submitted() -> None:
    assert TRANSITIONS[(OrderStatus.SUBMITTED, Trigger.REBUILD)] is OrderStatus.BUILDING
    assert (OrderStatus.SUBMITTED, Trigger.ROUTE) not in TRANSITIONS


def test_the_wire_message_flattens_details_and_uses_utc_z_timestamps() -> None:
    order = new_order()
    event = order.apply(Trigger.ROUTE, T0, {"quotes": [1], "status": "ignored"})
    message = event.to_message()
    assert message["status"] == "routing"  # core fields win over details
    assert message["seq"] == 2
    assert message["orderId"] == str(order.id)
    assert message["timestamp"] == "2026-01-01T00:00:00Z"
    assert message["quotes"] == [1]


@given(st.lists(st.sampled_from(list(Trigger)), max_size=30))
def test_any_sequence_of_triggers_keeps_seq_equal_to_accepted_moves(
    triggers: list[Trigger],
) -> None:
    order = new_order()
    accepted = 0
    for trigger in triggers:
        was_terminal = order.is_terminal
        try:
            event = order.apply(trigger, T0)
        except InvalidTransition:
            continue
        assert not was_terminal
        accepted += 1
        assert event.seq == order.seq == accepted + 1
        assert event.status is order.status
