"""The rule ``--verify`` applies to each stored order."""

from __future__ import annotations

from dataclasses import replace

from order_engine.bench.verify import KINDS, Inspection, StoredOrder, classify

CLEAN = StoredOrder(
    order_id="a",
    status="confirmed",
    seq=5,
    events=5,
    min_seq=1,
    max_seq=5,
    terminal_events=1,
    terminal_seq=5,
    last_event_status="confirmed",
)


def test_a_terminal_order_with_gapless_events_ending_in_its_terminal_event_is_clean() -> None:
    assert classify(CLEAN) == []


def test_an_order_the_database_does_not_hold_is_missing() -> None:
    assert classify(StoredOrder(order_id="a")) == ["missing"]


def test_an_unfinished_order_is_a_violation() -> None:
    unfinished = replace(
        CLEAN,
        status="submitted",
        last_event_status="submitted",
        seq=4,
        max_seq=4,
        events=4,
        terminal_events=0,
        terminal_seq=None,
    )
    assert classify(unfinished) == ["not_terminal"]


def test_two_terminal_events_are_a_violation() -> None:
    twice = replace(
        CLEAN, seq=6, events=6, max_seq=6, terminal_events=2, last_event_status="confirmed"
    )
    assert "terminal_count" in classify(twice)
    assert "terminal_not_last" in classify(twice)  # the first terminal event is seq 5 of 6


def test_a_gap_in_seqs_is_a_violation() -> None:
    assert classify(replace(CLEAN, events=4)) == ["seq_gap"]
    assert classify(replace(CLEAN, min_seq=2, events=4)) == ["seq_gap"]


def test_a_row_that_disagrees_with_its_last_event_is_a_violation() -> None:
    assert classify(replace(CLEAN, seq=4)) == ["row_mismatch"]
    assert classify(replace(CLEAN, last_event_status="failed")) == ["row_mismatch"]


def test_an_inspection_counts_orders_not_violations_and_names_examples() -> None:
    inspection = Inspection()
    inspection.add(CLEAN)
    inspection.add(replace(CLEAN, order_id="b", seq=6, events=6, max_seq=6, terminal_events=2))
    inspection.add(StoredOrder(order_id="c"))
    report = inspection.as_dict()
    assert report["checked"] == 3
    assert report["violating_orders"] == 2
    violations = report["violations"]
    assert isinstance(violations, dict)
    assert set(violations) <= set(KINDS)
    assert violations["missing"]["examples"] == ["c"]
