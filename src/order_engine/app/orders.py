"""Accepting orders: validate, persist as pending, publish, enqueue.

The order is durable (``pending``, seq 1) before the caller hears its id. If
the enqueue then fails, the order is still accepted: the reconciler
re-enqueues every active order that has no live job, so it will run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID, uuid4

import structlog
from solders.pubkey import Pubkey

from order_engine.app.metrics import NULL_METRICS
from order_engine.app.order_terms import (
    NO_OPTIONS,
    WAITING_KINDS,
    OrderOptions,
    Resolved,
    resolve_options,
)
from order_engine.app.reporting import ui_amount
from order_engine.app.router import Router
from order_engine.app.waiting_details import open_details, settings_details
from order_engine.domain.errors import (
    ErrorCode,
    NoRouteError,
    OrderNotCancellable,
    OrderNotFound,
    StaleWrite,
    ValidationError,
)
from order_engine.domain.order import (
    CANCELLABLE,
    WAITING,
    Order,
    OrderEvent,
    OrderKind,
    Trigger,
)
from order_engine.domain.tokens import Token, TokenRegistry
from order_engine.ports.bus import EventBus
from order_engine.ports.clock import Clock
from order_engine.ports.metrics import Metrics
from order_engine.ports.queue import JobQueue
from order_engine.ports.repository import OrderRepository
from order_engine.ports.unit_of_work import UnitOfWork, UnitsOfWork

log = structlog.get_logger(__name__)

MIN_SLIPPAGE_BPS, MAX_SLIPPAGE_BPS = 1, 5000
# A cancel that loses a conditional write re-reads and decides again; the order
# can only move towards triggered or terminal, so a few rounds always settle it.
_CANCEL_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A request that passed validation: tokens resolved, amount in base units."""

    input: Token
    output: Token
    amount_in: int
    slippage_bps: int
    kind: OrderKind = OrderKind.MARKET
    options: Resolved = NO_OPTIONS


class OrderService:
    def __init__(
        self,
        *,
        repo: OrderRepository,
        units: UnitsOfWork,
        bus: EventBus,
        queue: JobQueue,
        clock: Clock,
        tokens: TokenRegistry,
        router: Router,
        default_slippage_bps: int,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        self.repo = repo
        self.units = units
        self.bus = bus
        self.queue = queue
        self.clock = clock
        self.tokens = tokens
        self.router = router
        self.default_slippage_bps = default_slippage_bps
        self.metrics = metrics
        # Called with every order accepted as open, in this process: the trigger
        # services start watching it at once (others find it in the database).
        self.watchers: list[Callable[[Order], None]] = []
        # The kinds this engine accepts: a waiting kind only once its trigger service runs.
        self.kinds: frozenset[OrderKind] = frozenset({OrderKind.MARKET})

    def validate(
        self,
        input_token: str,
        output_token: str,
        amount: Decimal | str | int | float,
        slippage_bps: int | None = None,
        *,
        kind: OrderKind = OrderKind.MARKET,
        options: OrderOptions | None = None,
    ) -> OrderRequest:
        """Raise ``ValidationError`` with a stable code for anything a client got wrong."""
        token_in = self.tokens.resolve(input_token)
        token_out = self._output_token(output_token, kind)
        if token_in == token_out:
            raise ValidationError(
                f"inputToken and outputToken are both {token_in.symbol}: expected two different "
                "tokens",
                code=ErrorCode.SAME_TOKEN,
            )
        slippage = self.default_slippage_bps if slippage_bps is None else slippage_bps
        if isinstance(slippage, bool) or not MIN_SLIPPAGE_BPS <= slippage <= MAX_SLIPPAGE_BPS:
            raise ValidationError(
                f"slippageBps {slippage_bps!r} out of range: expected an integer from "
                f"{MIN_SLIPPAGE_BPS} to {MAX_SLIPPAGE_BPS}",
                code=ErrorCode.INVALID_SLIPPAGE,
            )
        amount_in = token_in.to_base(amount)  # exact, or a ValidationError
        # A sniper's pool does not exist yet: that is what it waits for.
        if kind is not OrderKind.SNIPER and not self.router.has_route(
            token_in.mint, token_out.mint
        ):
            raise NoRouteError(
                f"no route for {token_in.symbol}/{token_out.symbol}: no venue has a pool for the "
                "pair, directly or through SOL or USDC"
            )
        resolved = resolve_options(
            kind,
            options or OrderOptions(),
            token_in=token_in,
            token_out=token_out,
            amount_in=amount_in,
            now=self.clock.now(),
        )
        return OrderRequest(token_in, token_out, amount_in, slippage, kind, resolved)

    def _output_token(self, name: str, kind: OrderKind) -> Token:
        """A known token; for a sniper order also any well-formed mint address (32
        bytes, base58), known or not: its token may not exist on chain yet."""
        try:
            return self.tokens.resolve(name)
        except ValidationError:
            if kind is not OrderKind.SNIPER:
                raise
        try:
            Pubkey.from_string(name)
        except ValueError:
            raise ValidationError(
                f"outputToken {name[:64]!r}: expected a known token or, for a sniper order, "
                "a mint address (32 bytes in base58)",
                code=ErrorCode.UNKNOWN_TOKEN,
            ) from None
        return self.tokens.lookup(name)

    async def submit(
        self,
        request: OrderRequest,
        owner: str | None = None,
        *,
        order_id: UUID | None = None,
        uow: UnitOfWork | None = None,
    ) -> Order:
        """Persist the order as pending, then publish and enqueue it. With ``uow``,
        a unit of work in which the caller staged writes of its own (the
        ``Idempotency-Key``'s completion: ``app/submit.py``), the order is
        created in the same transaction.

        An order that waits (limit, sniper) is stored ``pending`` and ``open`` in
        the same transaction and is not enqueued: its trigger service fires it
        (``app/waiting.py``)."""
        at = self.clock.now()
        options = request.options
        order, event = Order.accept(
            order_id=order_id or uuid4(),
            input_mint=request.input.mint,
            output_mint=request.output.mint,
            amount_in=request.amount_in,
            slippage_bps=request.slippage_bps,
            at=at,
            owner=owner,
            kind=request.kind,
            details={
                "orderType": request.kind.value,
                "inputToken": request.input.symbol,
                "outputToken": request.output.symbol,
                "amountIn": ui_amount(request.input, request.amount_in),
                "amountInRaw": str(request.amount_in),
                "slippageBps": request.slippage_bps,
                **settings_details(options),
            },
            terms=options.terms,
            expires_at=options.expiry.deadline(at),
            max_price_impact_bps=options.max_price_impact_bps,
            priority_fee=options.priority_fee,
        )
        events = [event]
        if request.kind in WAITING_KINDS:
            events.append(order.apply(Trigger.WAIT, at, open_details(order, request.output)))
        uow = uow or self.units()
        uow.create_order(order, *events)
        await uow.commit()
        structlog.contextvars.bind_contextvars(orderId=str(order.id))
        self.metrics.order_submitted()
        log.info("order_accepted", owner=owner, amount_in=order.amount_in, kind=order.kind.value)
        for each in events:
            await self._publish(each)
        if order.status in WAITING:
            for watcher in self.watchers:
                watcher(order)
            return order
        try:
            await self.queue.enqueue(order.id)
        except Exception as exc:  # noqa: BLE001 - the order is durable; the reconciler enqueues it
            log.warning(
                "enqueue_failed_reconciler_will_retry", order_id=str(order.id), error=repr(exc)
            )
        return order

    async def _publish(self, event: OrderEvent) -> None:
        try:
            await self.bus.publish(event)
        except Exception as exc:  # noqa: BLE001 - subscribers replay from the store
            log.warning("publish_failed", order_id=str(event.order_id), error=repr(exc))
        else:
            self.metrics.event_published()

    async def history(
        self, order_id: UUID, owner: str | None = None, *, after_seq: int = 0
    ) -> tuple[Order, list[OrderEvent]]:
        """The caller's order and its events after ``after_seq`` (``OrderNotFound``
        for another key's order, as for one that does not exist)."""
        order = await self.get(order_id, owner)
        return order, await self.repo.events(order.id, after_seq=after_seq)

    async def get(self, order_id: UUID, owner: str | None = None) -> Order:
        order = await self.repo.get(order_id)
        if order is None or (owner is not None and order.owner != owner):
            raise OrderNotFound(f"no order with id {order_id}")
        return order

    async def cancel(self, order_id: UUID, owner: str | None = None) -> Order:
        """Cancel an order still waiting for its trigger; returns it ``cancelled``.

        The write is conditional on the seq read, so a cancel racing a trigger
        (or an expiry) has exactly one winner: if the other write lands first,
        the re-read order is no longer open and this raises ``OrderNotCancellable``.
        """
        for _ in range(_CANCEL_ROUNDS):
            order = await self.get(order_id, owner)
            if order.status not in CANCELLABLE:
                raise OrderNotCancellable(
                    f"order {order_id} is {order.status.value}: only an open order (still "
                    "waiting for its trigger) can be cancelled"
                )
            event = order.apply(Trigger.CANCEL, self.clock.now(), {"reason": "cancelled by owner"})
            try:
                await self.repo.record(order, event)
            except StaleWrite:
                continue  # it moved underneath us: decide again on what it is now
            log.info("order_cancelled", order_id=str(order_id))
            await self._publish(event)
            for watcher in self.watchers:
                watcher(order)  # no longer open: its trigger service drops it
            return order
        raise OrderNotCancellable(f"order {order_id} kept changing: try again")
