"""The bench's arithmetic: histogram summaries, stream completeness, tallies."""

from __future__ import annotations

import pytest

from order_engine.bench.stats import (
    HIST_HIGHEST_US,
    StreamTally,
    check_stream,
    new_histogram,
    outcome_key,
    per_second,
    record_seconds,
    summarize,
    tally_outcomes,
)

LIFECYCLE = ["pending", "routing", "building", "submitted", "confirmed"]


def test_an_empty_histogram_summarizes_as_nothing_observed() -> None:
    summary = summarize(new_histogram())
    assert summary.count == 0
    assert summary.p50_ms == summary.p99_ms == summary.max_ms == 0.0


def test_percentiles_of_a_known_distribution_are_within_the_histograms_precision() -> None:
    histogram = new_histogram()
    for millis in range(1, 1001):  # 1 ms .. 1000 ms, one each
        record_seconds(histogram, millis / 1000)
    summary = summarize(histogram)
    assert summary.count == 1000
    # Three significant digits: each reported value within 0.1 % of the exact one.
    assert summary.p50_ms == pytest.approx(500, rel=1e-3)
    assert summary.p95_ms == pytest.approx(950, rel=1e-3)
    assert summary.p99_ms == pytest.approx(990, rel=1e-3)
    assert summary.max_ms == pytest.approx(1000, rel=1e-3)
    assert summary.mean_ms == pytest.approx(500.5, rel=1e-3)


def test_a_value_beyond_the_range_is_clamped_and_still_counted() -> None:
    histogram = new_histogram()
    record_seconds(histogram, 10 * HIST_HIGHEST_US / 1e6)
    record_seconds(histogram, -1.0)
    summary = summarize(histogram)
    assert summary.count == 2
    assert summary.max_ms == pytest.approx(HIST_HIGHEST_US / 1000, rel=1e-3)


def test_a_gapless_stream_ending_in_its_terminal_event_is_complete() -> None:
    check = check_stream([1, 2, 3, 4, 5], LIFECYCLE)
    assert check.complete
    assert (check.received, check.expected, check.missing) == (5, 5, 0)


def test_a_stream_with_a_gap_is_missing_that_event() -> None:
    check = check_stream([1, 2, 4, 5], ["pending", "routing", "submitted", "confirmed"])
    assert not check.complete
    assert check.missing == 1
    assert check.expected == 5


def test_a_repeated_event_is_a_duplicate() -> None:
    check = check_stream([1, 2, 2, 3, 4, 5], ["pending", "routing", "routing", *LIFECYCLE[2:]])
    assert not check.complete
    assert check.duplicates == 1
    assert check.missing == 0


def test_events_delivered_out_of_order_are_counted() -> None:
    check = check_stream([1, 3, 2, 4, 5], ["pending", "building", "routing", *LIFECYCLE[3:]])
    assert not check.complete
    assert check.out_of_order == 1


def test_a_stream_that_stops_before_a_terminal_event_is_incomplete() -> None:
    check = check_stream([1, 2, 3], LIFECYCLE[:3])
    assert not check.complete
    assert not check.ends_terminal
    assert check.expected == 3  # a lower bound: the highest seq seen


def test_a_second_terminal_event_makes_a_stream_incomplete() -> None:
    check = check_stream([1, 2, 3, 4], ["pending", "failed", "routing", "failed"])
    assert not check.complete
    assert check.terminal_events == 2


def test_a_retried_order_with_more_events_is_complete_when_gapless() -> None:
    statuses = ["pending", "routing", "building", "submitted", "building", "submitted", "confirmed"]
    assert check_stream(list(range(1, 8)), statuses).complete


def test_the_stream_tally_counts_orders_per_defect() -> None:
    tally = StreamTally()
    tally.add(check_stream([1, 2, 3, 4, 5], LIFECYCLE), 1000)
    tally.add(check_stream([1, 2, 4, 5], [*LIFECYCLE[:2], *LIFECYCLE[3:]]), 1000)
    tally.add(check_stream([1, 2], LIFECYCLE[:2]), 1006)
    assert tally.streams == 3
    assert tally.complete == 1
    assert tally.incomplete == 2
    assert tally.with_missing == 1
    assert tally.without_terminal == 1
    assert tally.abnormal_close == 1
    assert tally.events_received == 11
    assert tally.events_expected == 12


def test_outcomes_are_keyed_by_status_and_failure_code() -> None:
    assert outcome_key("confirmed", None) == "confirmed"
    assert outcome_key("failed", "slippage_exceeded") == "failed:slippage_exceeded"
    assert outcome_key("failed", None) == "failed:?"
    tally = tally_outcomes(
        [("confirmed", None), ("failed", "x"), ("confirmed", None), ("failed", "y")]
    )
    assert tally == {"confirmed": 2, "failed:x": 1, "failed:y": 1}
    assert next(iter(tally)) == "confirmed"  # most frequent first


def test_per_second_buckets_leave_out_the_ramp_and_the_partial_last_second() -> None:
    profile = per_second([0.1, 0.5, 1.2, 1.3, 1.9, 2.0, 2.5, 3.1], 3.1)
    assert profile.per_second == [2, 3, 2, 1]
    assert profile.steady == [3, 2]
    assert profile.quantile(0.0) == 2
    assert profile.quantile(1.0) == 3


def test_per_second_of_nothing_is_zero() -> None:
    profile = per_second([], 0.0)
    assert profile.quantile(0.5) == 0.0


def test_a_stream_ending_expired_or_cancelled_is_complete_like_one_ending_confirmed() -> None:
    for last in ("expired", "cancelled"):
        check = check_stream([1, 2, 3], ["pending", "open", last])
        assert check.ends_terminal
        assert check.complete
    assert not check_stream([1, 2], ["pending", "open"]).ends_terminal
