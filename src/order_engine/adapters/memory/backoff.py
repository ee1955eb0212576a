"""Retry delays: capped exponential backoff with *equal* jitter.

Shared by every queue adapter, so "how long before attempt n+1" means the same
thing in one process and on Redis.
"""

from __future__ import annotations

import math
import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one.

    The ceiling is ``min(cap, base * 2 ** (attempt - 1))`` and the delay is drawn
    uniformly from ``[ceiling / 2, ceiling]`` ("equal jitter").

    Why equal rather than full jitter (``[0, ceiling]``): our failures are
    transient infrastructure errors (a venue down, an RPC rate limit), and a
    retry fired after a few microseconds only burns an attempt of the three we
    have. Equal jitter keeps a floor of half the step, so the retry waits
    at least ``ceiling / 2``, and consecutive delays never shrink before the cap
    (attempt n's range ends where attempt n+1's begins), while the random half
    still spreads a burst of jobs that failed together. Full jitter spreads load
    slightly better, but it cannot promise a minimum wait.

    ``rng`` is passed in so that a seeded generator makes the sequence
    reproducible in tests and simulations.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1 (1-based), got {attempt}")
    if not (math.isfinite(base) and base >= 0):
        raise ValueError(f"base must be a finite number of seconds >= 0, got {base!r}")
    if not (math.isfinite(cap) and cap >= 0):
        raise ValueError(f"cap must be a finite number of seconds >= 0, got {cap!r}")
    try:
        ceiling = min(cap, math.ldexp(base, attempt - 1))
    except OverflowError:  # 2 ** (attempt - 1) beyond float range: long past the cap
        ceiling = cap
    half = ceiling / 2
    # half + uniform(0, half) never rounds above ceiling: both halves are exact.
    return half + rng.uniform(0.0, half)
