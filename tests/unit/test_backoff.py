"""Properties of the retry delay shared by every queue adapter."""

from __future__ import annotations

import itertools
import random
import statistics
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from order_engine.adapters.memory.backoff import backoff_delay

attempts = st.integers(min_value=1, max_value=10_000)
seconds = st.floats(min_value=0.0, max_value=3600.0, allow_nan=False, allow_infinity=False)
seeds = st.integers(min_value=0, max_value=2**32)


@given(attempt=attempts, base=seconds, cap=seconds, seed=seeds)
def test_a_delay_is_never_negative_and_never_above_the_cap(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(attempt, base, cap, random.Random(seed))

    assert 0.0 <= delay <= cap


@given(attempt=attempts, base=seconds, cap=seconds, seed=seeds)
def test_a_delay_lies_between_half_the_exponential_step_and_the_full_step(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    ceiling = float(min(Fraction(cap), Fraction(base) * 2 ** (attempt - 1)))  # exact oracle

    delay = backoff_delay(attempt, base, cap, random.Random(seed))

    assert ceiling / 2 <= delay <= ceiling


@given(
    attempt=st.integers(min_value=1, max_value=30),
    base=st.floats(min_value=1e-3, max_value=10.0),
    seed=seeds,
)
def test_the_next_delay_is_never_shorter_than_this_one_before_the_cap(
    attempt: int, base: float, seed: int
) -> None:
    cap = 1e12  # out of reach: only the doubling is under test
    rng = random.Random(seed)

    this_one = backoff_delay(attempt, base, cap, rng)
    next_one = backoff_delay(attempt + 1, base, cap, rng)

    assert next_one >= this_one


@settings(deadline=None)  # 1,800 draws per example; slow only on a loaded machine
@given(base=st.floats(min_value=1e-3, max_value=1.0), seed=seeds)
def test_the_mean_delay_grows_with_the_attempt_until_the_cap_then_stays(
    base: float, seed: int
) -> None:
    cap = base * 2**5  # reached at attempt 6
    rng = random.Random(seed)

    means = [
        statistics.fmean(backoff_delay(attempt, base, cap, rng) for _ in range(200))
        for attempt in range(1, 10)
    ]

    growing, capped = means[:6], means[5:]
    assert all(later > earlier for earlier, later in itertools.pairwise(growing))
    assert all(cap / 2 <= mean <= cap for mean in capped)
    assert means[0] == pytest.approx(0.75 * base, rel=0.1)


@given(attempt=attempts, base=seconds, cap=seconds, seed=seeds)
def test_a_seeded_generator_gives_the_same_delays_every_time(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    first, second = random.Random(seed), random.Random(seed)

    run_one = [backoff_delay(attempt + i, base, cap, first) for i in range(5)]
    run_two = [backoff_delay(attempt + i, base, cap, second) for i in range(5)]

    assert run_one == run_two


def test_the_jitter_actually_varies_the_delay() -> None:
    rng = random.Random(7)

    delays = {backoff_delay(3, 0.1, 10.0, rng) for _ in range(50)}

    assert len(delays) > 40


def test_an_attempt_far_past_the_float_range_gets_the_cap_not_an_overflow() -> None:
    delay = backoff_delay(10**6, 0.5, 30.0, random.Random(1))

    assert 15.0 <= delay <= 30.0


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "message"),
    [
        (0, 0.1, 1.0, "attempt must be >= 1"),
        (1, -0.1, 1.0, "base must be"),
        (1, float("nan"), 1.0, "base must be"),
        (1, 0.1, float("inf"), "cap must be"),
        (1, 0.1, -1.0, "cap must be"),
    ],
)
def test_nonsense_arguments_are_refused_with_what_was_expected(
    attempt: int, base: float, cap: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        backoff_delay(attempt, base, cap, random.Random(0))
