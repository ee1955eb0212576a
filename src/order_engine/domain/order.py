"""The order lifecycle as data: a transition table and one ``apply()``.

Every change to an order goes through ``Order.apply``: it validates the edge
against ``TRANSITIONS`` first and mutates last, and it returns the
``OrderEvent`` that records the change with the next gapless ``seq``. The
repository persists that event under a conditional write on the previous seq,
so the event log is the order's history and ``seq`` doubles as its version.

Re-entry edges exist because a job may run more than once:

* ``(ROUTING|BUILDING, ROUTE)`` - a retry before anything was signed re-quotes.
* ``(SUBMITTED, REBUILD)`` - the blockhash expired and the chain never saw the
  transaction, so the executor may re-quote and re-sign (and only then).

There is deliberately no edge from ``SUBMITTED`` back to ``ROUTING``: once a
signed transaction is persisted, only expiry (``REBUILD``), landing
(``CONFIRM``) or a proven failure (``FAIL``) may follow.

Orders that wait for a condition (limit, sniper) add rows, not code paths:
``pending -> open`` (``WAIT``), then ``open -> triggered`` (``FIRE``) when a
trigger service sees the condition hold, and ``triggered -> routing`` joins the
market path. ``open -> expired | cancelled`` end an order that never fired.
``REARM`` takes a fired order back to ``open`` when, routed, its own floor (a
limit's price) is no longer reachable and nothing has been signed yet.
``open -> open`` (``NOTE``) records what a trigger service saw without firing
(a sniper's new pool that failed a filter): the order waits on.
An ``open`` order is ``WAITING``: no job runs for it, so the queue's claim and
the reconciler leave it to its trigger service (``RUNNING`` is what they take).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from order_engine.domain.errors import InvalidTransition
from order_engine.domain.terms import LimitTerms, OrderTerms, PriorityFee


class OrderStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    TRIGGERED = "triggered"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL: frozenset[OrderStatus] = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED}
)
ACTIVE: frozenset[OrderStatus] = frozenset(OrderStatus) - TERMINAL
# Waiting for a condition, owned by a trigger service; no job runs for it.
WAITING: frozenset[OrderStatus] = frozenset({OrderStatus.OPEN})
# What a job works on: the queue's claim and the reconciler take only these.
RUNNING: frozenset[OrderStatus] = ACTIVE - WAITING
# Only these may be cancelled; from ``triggered`` on, the swap is on its way.
CANCELLABLE: frozenset[OrderStatus] = WAITING


class Trigger(StrEnum):
    """What happened to the order; the table maps (status, trigger) to the next status."""

    ROUTE = "route"  # quotes gathered, a plan chosen
    BUILD = "build"  # building the transaction for the chosen plan
    SUBMIT = "submit"  # signed transaction persisted; broadcasting
    REBUILD = "rebuild"  # blockhash expired unseen; re-quoted and rebuilding
    CONFIRM = "confirm"  # landed and confirmed on chain
    FAIL = "fail"  # permanent failure, or attempts exhausted
    WAIT = "wait"  # accepted with a condition: watched until it holds
    FIRE = "fire"  # the condition held (price reached, pool appeared): enqueue the job
    EXPIRE = "expire"  # the condition did not hold before the order's expiry
    CANCEL = "cancel"  # the owner withdrew the order while it was still waiting
    REARM = "rearm"  # fired, but its floor was no longer met when routed: waiting again
    NOTE = "note"  # still waiting: the trigger saw something to report (a pool failing a filter)


class OrderKind(StrEnum):
    """Order types. Non-market kinds add a trigger that decides *when* to enqueue;
    the execution pipeline is the same for all of them."""

    MARKET = "market"
    LIMIT = "limit"
    SNIPER = "sniper"


S, T = OrderStatus, Trigger
TRANSITIONS: Mapping[tuple[OrderStatus, Trigger], OrderStatus] = {
    (S.PENDING, T.ROUTE): S.ROUTING,
    (S.ROUTING, T.ROUTE): S.ROUTING,
    (S.BUILDING, T.ROUTE): S.ROUTING,
    (S.ROUTING, T.BUILD): S.BUILDING,
    (S.BUILDING, T.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, T.REBUILD): S.BUILDING,
    (S.SUBMITTED, T.CONFIRM): S.CONFIRMED,
    **{(status, T.FAIL): S.FAILED for status in RUNNING},
    (S.PENDING, T.WAIT): S.OPEN,
    (S.OPEN, T.FIRE): S.TRIGGERED,
    (S.TRIGGERED, T.ROUTE): S.ROUTING,
    (S.OPEN, T.EXPIRE): S.EXPIRED,
    (S.OPEN, T.CANCEL): S.CANCELLED,
    # Only before anything is signed: from SUBMITTED a transaction may be in flight.
    **{(status, T.REARM): S.OPEN for status in (S.TRIGGERED, S.ROUTING, S.BUILDING)},
    (S.OPEN, T.NOTE): S.OPEN,
}
del S, T


def next_status(status: OrderStatus, trigger: Trigger) -> OrderStatus:
    try:
        return TRANSITIONS[(status, trigger)]
    except KeyError:
        raise InvalidTransition(
            f"{status.value} -> {trigger.value}: no such edge from {status.value}"
            + (" (terminal)" if status in TERMINAL else "")
        ) from None


def wire_time(at: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as every message and view shows a time
    (``app/reporting.py`` presents everything else)."""
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One persisted, published status change. ``seq`` is gapless per order from 1."""

    order_id: UUID
    seq: int
    status: OrderStatus
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_message(self) -> dict[str, Any]:
        """The wire form sent on WebSockets: details are flattened alongside."""
        return {
            **self.details,
            "orderId": str(self.order_id),
            "seq": self.seq,
            "status": self.status.value,
            "timestamp": wire_time(self.at),
        }


@dataclass(slots=True)
class SignedTx:
    """A signed transaction exactly as it was (or will be) broadcast."""

    signature: str
    raw: bytes
    last_valid_block_height: int


@dataclass(slots=True)
class Order:
    id: UUID
    input_mint: str
    output_mint: str
    amount_in: int
    slippage_bps: int
    created_at: datetime
    updated_at: datetime
    kind: OrderKind = OrderKind.MARKET
    owner: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    seq: int = 0
    attempts: int = 0
    route: dict[str, Any] | None = None
    tx: SignedTx | None = None
    fill: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    # The order's definition beyond the swap (domain/terms.py), immutable once accepted.
    terms: OrderTerms | None = None
    expires_at: datetime | None = None  # a waiting order expires here, if still open
    max_price_impact_bps: int | None = None  # overrides MAX_PRICE_IMPACT_BPS when set
    priority_fee: PriorityFee | None = None  # overrides the engine's compute-unit price

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def min_amount_out(self) -> int | None:
        """The least total output this order accepts, whatever its slippage allows
        (a limit order's price times its amount), or ``None``: the executor floors
        the route's ``minAmountOut`` with it and knows nothing of order types."""
        return self.terms.min_amount_out if isinstance(self.terms, LimitTerms) else None

    @classmethod
    def accept(
        cls,
        *,
        order_id: UUID,
        input_mint: str,
        output_mint: str,
        amount_in: int,
        slippage_bps: int,
        at: datetime,
        owner: str | None = None,
        kind: OrderKind = OrderKind.MARKET,
        details: Mapping[str, Any] | None = None,
        terms: OrderTerms | None = None,
        expires_at: datetime | None = None,
        max_price_impact_bps: int | None = None,
        priority_fee: PriorityFee | None = None,
    ) -> tuple[Order, OrderEvent]:
        """Create a pending order and its first event (seq 1)."""
        order = cls(
            id=order_id,
            input_mint=input_mint,
            output_mint=output_mint,
            amount_in=amount_in,
            slippage_bps=slippage_bps,
            created_at=at,
            updated_at=at,
            kind=kind,
            owner=owner,
            seq=1,
            terms=terms,
            expires_at=expires_at,
            max_price_impact_bps=max_price_impact_bps,
            priority_fee=priority_fee,
        )
        return order, OrderEvent(order_id, 1, OrderStatus.PENDING, at, dict(details or {}))

    def apply(
        self, trigger: Trigger, at: datetime, details: Mapping[str, Any] | None = None
    ) -> OrderEvent:
        """Move along one edge of ``TRANSITIONS`` and return the event recording it.

        Raises ``InvalidTransition`` (and leaves the order untouched) for an
        edge the table lacks.
        """
        status = next_status(self.status, trigger)
        event = OrderEvent(self.id, self.seq + 1, status, at, dict(details or {}))
        self.status = status
        self.seq = event.seq
        self.updated_at = at
        return event
