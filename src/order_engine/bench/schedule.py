"""Pure planning: when orders arrive (open loop), what each order is, and the
option strings that describe both."""

from __future__ import annotations

import enum
import ipaddress
import random
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import orjson


class Arrivals(enum.StrEnum):
    POISSON = "poisson"
    FIXED = "fixed"


def arrival_offsets(rate: float, arrivals: Arrivals, rng: random.Random) -> Iterator[float]:
    """Seconds from the start at which successive orders are due, at ``rate``/s.

    Open loop: the times do not depend on how fast the engine answers. Fixed
    spacing is ``i / rate``; Poisson arrivals have exponential gaps of mean
    ``1 / rate`` (what independent clients produce). The first order is due at 0.
    """
    if rate <= 0:
        raise ValueError(f"expected a rate above 0 orders/s, got {rate}")
    if arrivals is Arrivals.FIXED:
        index = 0
        while True:
            yield index / rate
            index += 1
    due = 0.0
    while True:
        yield due
        due += rng.expovariate(rate)


@dataclass(frozen=True)
class Pair:
    input_token: str
    output_token: str

    def __str__(self) -> str:
        return f"{self.input_token}/{self.output_token}"


def parse_pairs(text: str) -> list[Pair]:
    """``"SOL/USDC,BONK/USDC"`` -> pairs; the engine validates the symbols themselves."""
    pairs: list[Pair] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split("/")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"expected pairs like SOL/USDC, got {item!r}")
        if parts[0].upper() == parts[1].upper():
            raise ValueError(f"expected two different tokens in a pair, got {item!r}")
        pairs.append(Pair(parts[0], parts[1]))
    if not pairs:
        raise ValueError(f"expected at least one pair like SOL/USDC, got {text!r}")
    return pairs


def parse_sizes(text: str) -> list[str]:
    """``"0.1,1,10"`` -> the amounts as exact decimal strings (UI units of the input token)."""
    sizes: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            value = Decimal(item)
        except InvalidOperation:
            raise ValueError(f"expected decimal sizes like 0.1,1,10, got {item!r}") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"expected sizes above 0, got {item!r}")
        sizes.append(item)
    if not sizes:
        raise ValueError(f"expected at least one size, got {text!r}")
    return sizes


class OrderMix:
    """The i-th order's body: a pair and a size drawn at random, reproducibly
    from ``seed``, serialized once (the hot path sends bytes)."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        sizes: Sequence[str],
        *,
        seed: int,
        slippage_bps: int | None = None,
    ) -> None:
        self._pairs = list(pairs)
        self._sizes = list(sizes)
        # Reproducible load, not security: a seeded PRNG is the point.
        self._rng = random.Random(seed)  # noqa: S311
        self._slippage_bps = slippage_bps

    def next_body(self) -> tuple[Pair, str, bytes]:
        pair = self._rng.choice(self._pairs)
        size = self._rng.choice(self._sizes)
        body: dict[str, object] = {
            "inputToken": pair.input_token,
            "outputToken": pair.output_token,
            "amount": size,
        }
        if self._slippage_bps is not None:
            body["slippageBps"] = self._slippage_bps
        return pair, size, orjson.dumps(body)


def is_loopback_url(url: str) -> bool:
    """Whether every address ``url``'s host names is a loopback address."""
    host = urlsplit(url).hostname
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def normalize_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s)://host:port base URL, got {url!r}")
    return url.rstrip("/")
