"""Open-loop arrivals, the order mix and the bench's option strings."""

from __future__ import annotations

import itertools
import random
import statistics

import orjson
import pytest

from order_engine.bench.schedule import (
    Arrivals,
    OrderMix,
    Pair,
    arrival_offsets,
    is_loopback_url,
    normalize_base_url,
    parse_pairs,
    parse_sizes,
)


def _first(rate: float, arrivals: Arrivals, count: int, seed: int = 1) -> list[float]:
    return list(itertools.islice(arrival_offsets(rate, arrivals, random.Random(seed)), count))


def test_fixed_arrivals_are_evenly_spaced_from_zero() -> None:
    assert _first(4.0, Arrivals.FIXED, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_poisson_arrivals_average_the_requested_rate() -> None:
    offsets = _first(500.0, Arrivals.POISSON, 20_001)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert offsets[0] == 0.0
    assert all(gap >= 0 for gap in gaps)
    assert statistics.fmean(gaps) == pytest.approx(1 / 500, rel=0.03)
    # Exponential gaps: the standard deviation equals the mean (fixed spacing has none).
    assert statistics.pstdev(gaps) == pytest.approx(1 / 500, rel=0.05)


def test_poisson_arrivals_are_reproducible_from_the_seed() -> None:
    assert _first(100.0, Arrivals.POISSON, 50, seed=3) == _first(100.0, Arrivals.POISSON, 50, 3)
    assert _first(100.0, Arrivals.POISSON, 50, seed=3) != _first(100.0, Arrivals.POISSON, 50, 4)


def test_a_rate_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="above 0"):
        next(arrival_offsets(0.0, Arrivals.FIXED, random.Random(1)))


def test_pairs_parse_and_refuse_malformed_input() -> None:
    assert parse_pairs("SOL/USDC, BONK/USDC") == [Pair("SOL", "USDC"), Pair("BONK", "USDC")]
    for bad in ("SOL", "SOL/", "SOL/USDC/JUP", "SOL/sol", " , "):
        with pytest.raises(ValueError, match="expected"):
            parse_pairs(bad)


def test_sizes_keep_their_exact_decimal_spelling_and_must_be_positive() -> None:
    assert parse_sizes("0.1,1,10.000000001") == ["0.1", "1", "10.000000001"]
    for bad in ("0", "-1", "abc", "nan", ""):
        with pytest.raises(ValueError, match="expected"):
            parse_sizes(bad)


def test_the_order_mix_is_reproducible_and_draws_from_every_choice() -> None:
    pairs, sizes = parse_pairs("SOL/USDC,USDC/SOL"), ["0.1", "1", "10"]
    first = [OrderMix(pairs, sizes, seed=9).next_body() for _ in range(1)]
    mix_a, mix_b = OrderMix(pairs, sizes, seed=9), OrderMix(pairs, sizes, seed=9)
    draws = [mix_a.next_body() for _ in range(200)]
    assert draws == [mix_b.next_body() for _ in range(200)]
    assert draws[0] == first[0]
    assert {str(pair) for pair, _, _ in draws} == {"SOL/USDC", "USDC/SOL"}
    assert {size for _, size, _ in draws} == set(sizes)
    pair, size, body = draws[0]
    assert orjson.loads(body) == {
        "inputToken": pair.input_token,
        "outputToken": pair.output_token,
        "amount": size,
    }


def test_the_order_mix_sends_slippage_only_when_given() -> None:
    _, _, body = OrderMix([Pair("SOL", "USDC")], ["1"], seed=1, slippage_bps=300).next_body()
    assert orjson.loads(body)["slippageBps"] == 300


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:3000", True),
        ("http://127.8.9.10:3000", True),
        ("http://localhost:3000", True),
        ("http://[::1]:3000", True),
        ("http://10.0.0.5:3000", False),
        ("http://8.8.8.8", False),
        ("http://", False),
    ],
)
def test_only_loopback_urls_count_as_loopback(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_base_urls_lose_their_trailing_slash_and_need_a_scheme() -> None:
    assert normalize_base_url("http://127.0.0.1:3000/") == "http://127.0.0.1:3000"
    with pytest.raises(ValueError, match="base URL"):
        normalize_base_url("127.0.0.1:3000")
