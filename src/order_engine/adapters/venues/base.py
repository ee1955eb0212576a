"""What the venue clients share: their transient error and the pool-list lookup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from order_engine.adapters.venues.listing import PoolListing
from order_engine.domain.errors import ErrorCode, TransientError

# A venue client's own latency (its API and SDK work), awaited once per quote.
Delay = Callable[[], Awaitable[None]]


class VenueUnavailable(TransientError):
    """The venue's pool state could not be read or made no sense; try again later."""

    default_code = ErrorCode.VENUE_UNAVAILABLE


class PoolBook:
    """The static pool list of one venue, indexed for ``has_pool`` and lookups."""

    def __init__(self, venue: str, listings: Sequence[PoolListing]) -> None:
        self.venue = venue
        self.pools = [p for p in listings if p.venue == venue]
        self.by_address = {p.address: p for p in self.pools}
        self._pairs = {frozenset((p.mint_a, p.mint_b)) for p in self.pools}

    def add(self, listing: PoolListing) -> bool:
        """Learn a new pool (a launch seen on chain); ``False`` if known or not ours."""
        if listing.venue != self.venue or listing.address in self.by_address:
            return False
        self.pools.append(listing)
        self.by_address[listing.address] = listing
        self._pairs.add(frozenset((listing.mint_a, listing.mint_b)))
        return True

    def has_pool(self, mint_a: str, mint_b: str) -> bool:
        return mint_a != mint_b and frozenset((mint_a, mint_b)) in self._pairs

    def for_pair(self, mint_in: str, mint_out: str) -> list[PoolListing]:
        return [p for p in self.pools if p.trades(mint_in, mint_out)]

    def get(self, address: str) -> PoolListing:
        listing = self.by_address.get(address)
        if listing is None:
            raise KeyError(f"{self.venue} lists no pool {address}")
        return listing


def require_data(data: bytes | None, what: str, venue: str) -> bytes:
    if data is None:
        raise VenueUnavailable(f"{venue}: {what} account not found on chain")
    return data
