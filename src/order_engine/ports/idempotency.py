"""Idempotency-key port: Stripe's semantics for ``POST /api/orders/execute``.

A key is reserved atomically (a unique ``(owner, key)`` row, never
check-then-set) *before* the order is created, and completed in the very
transaction that creates the order (one unit of work:
``ports/unit_of_work.py``). So a key is either in flight with no order, or completed
with exactly one order and the response that was sent for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response sent for a key's first request, replayed to every retry."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reservation:
    """This request holds the key; ``token`` tells its reservation from a later takeover."""

    owner: str
    key: str
    token: datetime


@dataclass(frozen=True, slots=True)
class Completion:
    """What ``UnitOfWork.complete_key`` stores with the order, in the same transaction."""

    reservation: Reservation
    response: StoredResponse


@dataclass(frozen=True, slots=True)
class Started:
    reservation: Reservation


@dataclass(frozen=True, slots=True)
class Replay:
    response: StoredResponse


@dataclass(frozen=True, slots=True)
class InFlight:
    since: datetime


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was first used with a different request."""


Outcome = Started | Replay | InFlight | Mismatch


class IdempotencyKeyTaken(Exception):
    """The reservation was taken over (it was presumed dead) before it completed."""


class IdempotencyStore(Protocol):
    async def begin(
        self,
        owner: str,
        key: str,
        request_hash: str,
        now: datetime,
        *,
        expired_before: datetime,
        stale_before: datetime,
    ) -> Outcome:
        """Reserve ``(owner, key)`` or report what holds it.

        A record created before ``expired_before`` no longer counts (retention
        is over), nor does one still in flight since before ``stale_before``
        (its request died without creating an order): either is taken over by
        a conditional update, so of two racing takers exactly one wins.
        """
        ...

    async def abandon(self, reservation: Reservation) -> None:
        """Release a reservation whose request created nothing."""
        ...

    async def purge(self, older_than: datetime) -> int:
        """Delete records created before ``older_than``; returns how many."""
        ...
