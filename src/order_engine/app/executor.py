"""The worker's job handler: drive one order from wherever it stands to a terminal state.

Exactly-once execution over an at-least-once queue rests on four rules:

1. **Claim conditionally.** ``repo.claim`` takes a lease only if no live
   worker holds one; a redelivery that finds a live lease waits up to one
   lease period for it to lapse (its holder died), then backs off.
2. **Write conditionally.** Every transition is persisted on the condition that
   the stored seq is the one this worker last saw; a stale worker gets
   ``StaleWrite`` and stops before any side effect. Giving up is no exception:
   a run fails the order only from the state it last saw, never from a fresh
   read, because a fresh read may show another worker's transaction in flight.
3. **Persist before sending.** The signed bytes, signature and
   ``lastValidBlockHeight`` are stored with the ``submitted`` event *before*
   the first broadcast, so any later run knows exactly what may be in flight.
4. **Re-sign only when the stored transaction can never execute.** A run
   that finds a stored transaction checks its status: landed → settle without
   sending; unseen but still valid → rebroadcast the same bytes; unseen and the
   chain's block height past ``lastValidBlockHeight`` → it can never land, and
   only then re-quote, rebuild and re-sign. A transaction that landed and
   failed only because the accounts it named no longer cover the pool's state
   (DLMM ``BinArrayNotFound`` after a large move) executed nothing and cannot
   run again, so it is re-quoted the same way.

Slippage at execution: when the landed transaction fails its venue's
``min_amount_out`` check, the order fails with ``slippage_exceeded`` and the
on-chain error; it is not silently re-quoted at a worse price. The client chose
``slippageBps``; a fill outside it is a fill the client did not ask for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from solders.keypair import Keypair

from order_engine.app.metrics import NULL_METRICS, ExecutionObserver
from order_engine.app.priority import compute_unit_price
from order_engine.app.reporting import Presenter, realised_fill
from order_engine.app.router import RouteDecision, Router
from order_engine.app.txbuilder import FeePolicy, build_swap_transaction, compute_budget_of
from order_engine.domain.errors import (
    EngineError,
    ErrorCode,
    PermanentError,
    StaleWrite,
    TransientError,
)
from order_engine.domain.order import (
    RUNNING,
    Order,
    OrderEvent,
    OrderStatus,
    SignedTx,
    Trigger,
)
from order_engine.domain.routing import RoutePlan
from order_engine.ports.bus import EventBus
from order_engine.ports.chain import (
    Chain,
    SignatureStatus,
    TransactionRejected,
    is_confirmed,
)
from order_engine.ports.clock import Clock
from order_engine.ports.metrics import Metrics
from order_engine.ports.queue import Job
from order_engine.ports.repository import OrderRepository

log = structlog.get_logger(__name__)

# How often a redelivery re-tries the claim while another worker's lease is live.
_LEASE_POLL_MAX_S = 0.25

# On-chain error names (by substring, lower case) mapped to stable order codes.
_CHAIN_ERRORS: tuple[tuple[str, ErrorCode], ...] = (
    ("slippage", ErrorCode.SLIPPAGE_EXCEEDED),
    ("insufficientfunds", ErrorCode.INSUFFICIENT_FUNDS),
    ("insufficient funds", ErrorCode.INSUFFICIENT_FUNDS),
    ("liquidity", ErrorCode.INSUFFICIENT_LIQUIDITY),
    # The System program's way of saying the account lacked the lamports (wrapping SOL).
    ("negativelamports", ErrorCode.INSUFFICIENT_FUNDS),
)


def chain_error_code(err: str) -> ErrorCode:
    lowered = err.lower().replace("_", "")
    for needle, code in _CHAIN_ERRORS:
        if needle.replace("_", "") in lowered:
            return code
    return ErrorCode.TRANSACTION_FAILED


# On-chain errors that mean "the transaction named accounts that no longer cover
# the pool's state" (e.g. DLMM bin arrays after a large price move). Nothing
# executed, so re-quoting is safe; slippage is deliberately not among them
# (docs/decisions/0002).
_STALE_ACCOUNT_ERRORS = ("binarraynotfound",)


def _stale_accounts(err: str) -> bool:
    lowered = err.lower()
    return any(name in lowered for name in _STALE_ACCOUNT_ERRORS)


def _named_pool(order: Order) -> tuple[str, str] | None:
    """The one pool (venue, address) the order's trigger saw, if it named one (a
    sniper's launch): routing reads it directly instead of asking every venue."""
    fired = (order.route or {}).get("trigger") or {}
    venue, pool = fired.get("dex"), fired.get("pool")
    return (venue, pool) if isinstance(venue, str) and isinstance(pool, str) else None


def check_price_impact(plan: RoutePlan, max_bps: int) -> None:
    """Refuse, before anything is signed, a route that moves the price more than
    ``max_bps``: an order that would fill at a ruinous price fails instead."""
    if max_bps and plan.price_impact_bps > max_bps:
        raise PermanentError(
            f"price impact {plan.price_impact_bps:.2f} bps on {plan.venue} exceeds "
            f"maxPriceImpactBps {max_bps}: expected a smaller order (nothing was signed)",
            code=ErrorCode.PRICE_IMPACT_TOO_HIGH,
        )


class FloorNotMet(PermanentError):
    """The route's expected output is below the order's own floor: nothing signed."""

    default_code = ErrorCode.SLIPPAGE_EXCEEDED


def floored(plan: RoutePlan, floor: int | None) -> RoutePlan:
    """The plan with ``min_out`` raised to the order's own floor (a limit order's
    price times its amount), so the fill is never worse than that whatever the
    slippage allows. A route whose expected output is already below the floor
    (the market moved back since the order fired) raises ``FloorNotMet`` before
    signing: a transaction bound to fail on-chain would only cost its fee."""
    if floor is None or plan.min_out >= floor:
        return plan
    if plan.expected_out < floor:
        raise FloorNotMet(
            f"the route's expected output {plan.expected_out} is below the order's minimum "
            f"{floor} (base units): the price moved back since the order fired; nothing "
            "was signed",
            code=ErrorCode.SLIPPAGE_EXCEEDED,
        )
    return dataclasses.replace(plan, min_out=floor)


@dataclass(frozen=True, slots=True)
class Rebuild:
    """Why the stored transaction can never execute, with the evidence recorded."""

    reason: str
    code: ErrorCode  # the failure code if the rebuilds run out
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    worker_id: str
    max_attempts: int
    lease_s: float
    poll_interval_s: float  # longest wait for a signature before re-checking expiry
    rebroadcast_every: int = 2  # polls between rebroadcasts of the same bytes
    max_rebuilds: int = 3  # re-signs (after expiry or stale accounts) before giving up
    max_poll_failures: int = 20  # consecutive RPC failures while waiting to land
    max_price_impact_bps: int = 0  # 0: no bound (see check_price_impact)
    fees: FeePolicy = dataclasses.field(
        default_factory=lambda: FeePolicy(
            compute_units_per_leg=300_000, micro_lamports_per_cu=50_000
        )
    )


class OrderExecutor:
    def __init__(
        self,
        *,
        repo: OrderRepository,
        bus: EventBus,
        router: Router,
        chain: Chain,
        wallet: Keypair,
        clock: Clock,
        presenter: Presenter,
        config: ExecutorConfig,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        self.repo = repo
        self.bus = bus
        self.router = router
        self.chain = chain
        self.wallet = wallet
        self.clock = clock
        self.present = presenter
        self.cfg = config
        self.observe = ExecutionObserver(metrics, clock)
        self._owner = str(wallet.pubkey())

    async def __call__(self, job: Job) -> None:
        """Run the order of ``job`` to a terminal state.

        May run more than once for the same order (queue redelivery, a crash, the
        reconciler): every step is idempotent, per the rules in the module doc.
        Raises to ask the queue for a retry; returns once the order is terminal,
        owned by another worker, or unknown.
        """
        # Every log line of this job names the order, and only it: a job runs in its
        # own task, which may have copied the context of whatever task started it.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(orderId=str(job.order_id))
        claiming = asyncio.ensure_future(self._claim(job))
        try:
            ahead = await self._route_ahead(job.order_id)
            order = await claiming
        finally:
            claiming.cancel()  # only if this delivery was cancelled meanwhile
        if order is None:
            return
        self.observe.claimed(order, self.clock.now())
        run = _Run(
            order,
            log.bind(order_id=str(order.id), attempt=order.attempts, job_attempt=job.attempt),
            ahead,
        )
        heartbeat = asyncio.create_task(self._heartbeat(order))
        try:
            await self._run(run)
        except StaleWrite:
            run.log.info("stale_write_stopping", reason="another worker advanced the order")
        except PermanentError as exc:
            await self._fail(run, exc)
        except Exception as exc:  # noqa: BLE001 - transient errors and bugs alike are retried
            await self._after_transient(run, job, exc)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if not run.order.is_terminal:  # a terminal write dropped the lease already
                with contextlib.suppress(Exception):
                    await self.repo.release(order.id, self.cfg.worker_id)

    async def _claim(self, job: Job) -> Order | None:
        """Take the order's lease; ``None`` if the order is terminal or unknown.

        While another worker holds a live lease, wait up to one lease period for
        it to lapse. A redelivery meets a live lease when the queue swept the job
        from a worker that died: its lease lapses at most ``lease_s`` after its
        last renewal, and only then may anyone go on. Asking the queue for quick
        retries instead spent every attempt against that lease and dropped the
        job, leaving the order to the reconciler, tens of seconds later. A holder
        that keeps its lease for a whole period is alive: the delivery then asks
        to be retried later, as before.
        """
        step = min(_LEASE_POLL_MAX_S, self.cfg.lease_s / 20)
        deadline = self.clock.monotonic() + self.cfg.lease_s + step
        while True:
            now = self.clock.now()
            order = await self.repo.claim(job.order_id, self.cfg.worker_id, now, self.cfg.lease_s)
            if order is not None:
                return order
            current = await self.repo.get(job.order_id)
            if current is None or current.status not in RUNNING:
                return None  # terminal, or waiting again: no job runs for it
            if self.clock.monotonic() > deadline:
                raise TransientError(
                    f"order {job.order_id} is leased by another worker; retrying later",
                    code=ErrorCode.SERVICE_UNAVAILABLE,
                )
            await self.clock.sleep(step)

    async def _route_ahead(self, order_id: UUID) -> _Ahead | None:
        """Quote an order about to be routed while its lease is being taken: both
        wait on I/O and neither needs the other, so the claim's write no longer
        adds to every order's latency. Quoting reads and signs nothing; the run
        uses the decision only for the order it quoted (the claimed order still
        at the same seq) and routes afresh otherwise. A quote that fails here is
        dropped: the run routes again and meets that failure itself."""
        view = await self.repo.get(order_id)
        if view is None or view.status not in _ROUTABLE:
            return None
        started = self.clock.monotonic()
        try:
            decision = await self.router.decide(
                view.input_mint,
                view.output_mint,
                view.amount_in,
                view.slippage_bps,
                pool=_named_pool(view),
            )
        except Exception:  # noqa: BLE001 - see the docstring
            return None
        return _Ahead(view.seq, decision, started)

    async def _after_transient(self, run: _Run, job: Job, exc: Exception) -> None:
        latest = await self.repo.get(run.order.id)
        if latest is None or latest.is_terminal:
            return
        if latest.seq != run.order.seq:
            # The order moved on since this run last wrote (another worker, or a
            # write of ours that committed but reported an error): this run's view
            # is too old to give up on, so the next delivery decides from the store.
            run.log.info("stale_view_retrying", error=repr(exc), seen=run.order.seq, now=latest.seq)
            raise exc
        exhausted = latest.attempts >= self.cfg.max_attempts or job.is_last_attempt
        if not exhausted:
            run.log.warning("attempt_failed_will_retry", error=repr(exc))
            self.observe.retried(exc)
            raise exc
        if latest.status is OrderStatus.SUBMITTED:
            # Never fail an order whose transaction may still land: the
            # reconciler re-enqueues it and a later run settles it for certain.
            run.log.error("outcome_unknown_left_for_reconciler", error=repr(exc))
            raise exc
        code = exc.code if isinstance(exc, EngineError) else ErrorCode.INTERNAL
        message = exc.message if isinstance(exc, EngineError) else f"internal error: {exc!r}"
        run.order.attempts = latest.attempts
        await self._fail(
            run,
            PermanentError(
                f"gave up after {latest.attempts} attempts; last error: {message}", code=code
            ),
        )

    async def _heartbeat(self, order: Order) -> None:
        while True:
            await asyncio.sleep(self.cfg.lease_s / 3)
            try:
                held = await self.repo.renew(
                    order.id, self.cfg.worker_id, self.clock.now(), self.cfg.lease_s
                )
            except Exception as exc:  # noqa: BLE001 - a missed renewal is not fatal
                log.warning("lease_renew_failed", order_id=str(order.id), error=repr(exc))
                continue
            if not held:
                log.warning("lease_lost", order_id=str(order.id))
                return

    # --- the pipeline ----------------------------------------------------------------

    async def _run(self, run: _Run) -> None:
        rebuilds = 0
        while run.order.status in RUNNING:
            if run.order.status is OrderStatus.SUBMITTED:
                rebuild = await self._land(run)
                if rebuild is not None:
                    rebuilds += 1
                    self.observe.retried("rebuild")
                    if rebuilds > self.cfg.max_rebuilds:
                        raise PermanentError(
                            f"gave up after {rebuilds} signed transactions; last: {rebuild.reason}",
                            code=rebuild.code,
                        )
                    await self._route_and_sign(run, rebuild=rebuild)
            else:
                await self._route_and_sign(run)

    async def _route_and_sign(self, run: _Run, *, rebuild: Rebuild | None = None) -> None:
        """Quote, choose, build, sign, persist, broadcast; with ``rebuild``, a re-sign
        replacing a stored transaction that can no longer execute."""
        order = run.order
        ahead, run.ahead = run.ahead, None  # good for the first routing of a run only
        if (
            ahead is not None
            and rebuild is None
            and ahead.seq == order.seq
            and self.clock.monotonic() - ahead.started <= _AHEAD_MAX_AGE_S
        ):
            decision, started = ahead.decision, ahead.started
        else:
            started = self.clock.monotonic()
            decision = await self.router.decide(
                order.input_mint,
                order.output_mint,
                order.amount_in,
                order.slippage_bps,
                pool=_named_pool(order),
            )
        routed = self.observe.since("routing", started)
        plan = decision.plan
        bound = order.max_price_impact_bps
        check_price_impact(plan, self.cfg.max_price_impact_bps if bound is None else bound)
        try:
            plan = floored(plan, order.min_amount_out)
        except FloorNotMet as exc:
            if rebuild is not None:
                raise  # a transaction was signed for this order: settle it as failed
            # Nothing signed, and the order waits for a price: it waits again,
            # rather than fail on a move that may be gone in a slot. Generic: only
            # an order carrying a floor has one to miss.
            await self._record(
                run,
                Trigger.REARM,
                {
                    "reason": exc.message,
                    "expectedAmountOutRaw": str(plan.expected_out),
                    "minAmountOutRaw": str(order.min_amount_out),
                },
            )
            return
        plan_view = self.present.plan(plan, order.output_mint)
        quotes = [self.present.quote(q) for q in plan.alternatives]
        unfilled = [self.present.unfilled(u.pool, u.amount_in, u.reason) for u in decision.unfilled]
        route = {**plan_view, "quotes": quotes, "unfilled": unfilled, "skipped": decision.skipped}
        fired = (order.route or {}).get("trigger")
        if fired is not None:  # what fired a waiting order stays on record
            route["trigger"] = fired
        building = {
            "dex": plan.venue,
            "expectedAmountOut": plan_view["expectedAmountOut"],
            "minAmountOut": plan_view["minAmountOut"],
            "legs": plan_view["legs"],
        }
        # DEBUG: the routing event in the order's history carries all of it already.
        run.log.debug(
            "route_decided", dex=plan.venue, reason=plan.reason, rebuild=rebuild is not None
        )
        if rebuild is not None:
            await self._record(
                run,
                Trigger.REBUILD,
                {
                    **building,
                    "quotes": quotes,
                    "unfilled": unfilled,
                    "plan": plan_view,
                    "reason": rebuild.reason,
                    **rebuild.evidence,
                },
                route=route,
            )
            steps: tuple[Step, ...] = ()
        else:
            # Written with the signed transaction, in one transaction: each write is
            # a whole turn of the event loop or more on the hot path, and the route
            # and build steps are history, not a guard (the submit write is the guard).
            steps = (
                (
                    Trigger.ROUTE,
                    {
                        "attempt": order.attempts,
                        "quotes": quotes,
                        "unfilled": unfilled,
                        "plan": plan_view,
                        "skipped": decision.skipped,
                    },
                    {"route": route},
                ),
                (Trigger.BUILD, building, {}),
            )
        blockhash = await self.chain.get_latest_blockhash()
        fees = await self._fees(order, plan)
        tx = build_swap_transaction(
            plan,
            payer=self.wallet,
            input_mint=order.input_mint,
            output_mint=order.output_mint,
            blockhash=blockhash.blockhash,
            venues=self.router.venues,
            memo=f"order-engine:{order.id}",
            fees=fees,
        )
        signed = SignedTx(str(tx.signatures[0]), bytes(tx), blockhash.last_valid_block_height)
        self.observe.since("building", routed)
        # Persist before the first send: from here on, any run knows what may be in flight.
        await self._record_steps(
            run,
            *steps,
            (
                Trigger.SUBMIT,
                {
                    "txHash": signed.signature,
                    "lastValidBlockHeight": signed.last_valid_block_height,
                    "computeUnitPrice": fees.micro_lamports_per_cu,
                },
                {"tx": signed},
            ),
        )
        await self._broadcast(signed, run)

    async def _fees(self, order: Order, plan: RoutePlan) -> FeePolicy:
        """The engine's fee policy, with the order's own priority fee when it names
        one (a price, or ``auto`` from the route's pools' recent fees)."""
        bid = order.priority_fee
        if bid is None:
            return self.cfg.fees
        price = await compute_unit_price(
            self.chain,
            requested=bid.micro_lamports,
            auto=bid.is_auto,
            default=self.cfg.fees.micro_lamports_per_cu,
            accounts=sorted({leg.quote.pool_id for leg in plan.legs}),
        )
        return dataclasses.replace(self.cfg.fees, micro_lamports_per_cu=price)

    async def _broadcast(self, tx: SignedTx, run: _Run) -> None:
        try:
            await self.chain.send_transaction(tx.raw)
        except TransactionRejected:
            raise
        except TransientError as exc:
            # Ambiguous (a timeout may have landed) or refused for now: the
            # status poll decides what happened; never re-sign on this alone.
            run.log.info("broadcast_uncertain", error=exc.code.value, detail=exc.message)

    async def _rebroadcast(self, tx: SignedTx, run: _Run) -> None:
        """Send the stored bytes again. A refusal now is no proof about the first
        send, which may still land (a node that has already seen the signature, a
        blockhash it has not caught up with...): only the signature's status, or
        the blockhash's expiry with the signature absent, settles the outcome."""
        try:
            await self._broadcast(tx, run)
        except TransactionRejected as exc:
            run.log.info("rebroadcast_rejected", tx=tx.signature, detail=exc.message)

    async def _land(self, run: _Run) -> Rebuild | None:
        """Wait for the stored transaction to settle; rebroadcast while valid.

        Returns ``None`` once the order is terminal, or a ``Rebuild`` when the
        stored transaction can never execute: its blockhash passed the last valid
        height with the signature unseen, or it landed and failed only because
        the accounts it named no longer matched the pool (the caller may re-sign).
        """
        tx = run.order.tx
        assert tx is not None  # noqa: S101 - SUBMITTED always carries its tx
        polls = failures = 0
        while True:
            try:
                # Returns as soon as the transaction is confirmed or its blockhash
                # expired; otherwise after one poll interval, with the status then.
                status = await self.chain.wait_for_signature(
                    tx.signature,
                    self.cfg.poll_interval_s,
                    expires_after_height=tx.last_valid_block_height,
                )
                if is_confirmed(status):
                    return await self._settle(run, tx, status)
                if status is None:
                    height = await self.chain.get_block_height()
                    if height > tx.last_valid_block_height:
                        # It may have landed in the last valid block: look once more.
                        late = (await self.chain.get_signature_statuses([tx.signature]))[0]
                        if late is None:
                            run.log.info("blockhash_expired_unseen", tx=tx.signature, height=height)
                            return Rebuild(
                                "blockhash expired before the transaction landed; re-quoted",
                                ErrorCode.BLOCKHASH_EXPIRED,
                                {
                                    "expiredTxHash": tx.signature,
                                    "lastValidBlockHeight": tx.last_valid_block_height,
                                    "blockHeight": height,
                                },
                            )
                    elif polls % self.cfg.rebroadcast_every == 0:
                        await self._rebroadcast(tx, run)
                failures = 0
            except TransientError as exc:
                failures += 1
                if failures >= self.cfg.max_poll_failures:
                    raise
                run.log.info("status_poll_failed", error=exc.code.value)
                await self.clock.sleep(self.cfg.poll_interval_s)  # no hot loop on an outage
            polls += 1

    async def _settle(self, run: _Run, tx: SignedTx, status: SignatureStatus) -> Rebuild | None:
        order = run.order
        result = await self.chain.get_transaction(tx.signature)
        if result is None:
            raise TransientError(f"transaction {tx.signature} confirmed but not yet retrievable")
        err = status.err or result.err
        if err is not None and _stale_accounts(err):
            # Landed and failed atomically (only the fee moved): it can never run
            # again, so a fresh quote against today's pool state is safe.
            run.log.info("stale_accounts_rebuild", tx=tx.signature, error=err)
            return Rebuild(
                f"transaction failed on chain with {err}: the pool moved past the accounts "
                "it named; re-quoted",
                ErrorCode.TRANSACTION_FAILED,
                {"failedTxHash": tx.signature, "chainError": err, "feeLamports": result.fee},
            )
        if err is not None:
            raise PermanentError(
                f"transaction {tx.signature} failed on chain: {err}",
                code=chain_error_code(err),
                txHash=tx.signature,
                feeLamports=result.fee,
            )
        fill = realised_fill(
            result,
            owner=self._owner,
            input_mint=order.input_mint,
            output_mint=order.output_mint,
            compute_budget=compute_budget_of(tx.raw),
        )
        token_in = self.present.tokens.by_mint(order.input_mint)
        token_out = self.present.tokens.by_mint(order.output_mint)
        dex = str((order.route or {}).get("dex", "unknown"))
        details = fill.to_details(token_in, token_out, tx.signature, dex)
        trigger_slot = ((order.route or {}).get("trigger") or {}).get("slot")
        if trigger_slot is not None:  # the slot the trigger saw, next to the landing slot
            details["triggerSlot"] = trigger_slot
        await self._record(run, Trigger.CONFIRM, details, fill=details)
        run.log.info("order_confirmed", tx=tx.signature, amount_out=details["amountOut"], dex=dex)
        return None

    # --- persistence -----------------------------------------------------------------

    async def _record(
        self, run: _Run, trigger: Trigger, details: Mapping[str, Any], **changes: Any
    ) -> None:
        await self._record_steps(run, (trigger, details, changes))

    async def _record_steps(self, run: _Run, *steps: Step) -> None:
        """Apply each (trigger, details, changes) step, persist them in one write, then
        publish; ``run.order`` becomes the new state only once the store has it, so
        the run never acts on state the store lacks."""
        candidate = run.order
        applied: list[tuple[Order, OrderEvent]] = []
        for trigger, details, changes in steps:
            candidate = dataclasses.replace(candidate, **changes)
            event = candidate.apply(trigger, self.clock.now(), details)
            applied.append((dataclasses.replace(candidate), event))
        await self.repo.record(candidate, *(event for _, event in applied))
        run.order = candidate
        for state, event in applied:
            published = False
            try:
                await self.bus.publish(event)
                published = True
            except Exception as exc:  # noqa: BLE001 - subscribers replay from the store
                log.warning(
                    "publish_failed", order_id=str(event.order_id), seq=event.seq, error=repr(exc)
                )
            self.observe.recorded(state, event, published=published)

    async def _fail(self, run: _Run, exc: EngineError) -> None:
        """Fail the order *as this run last saw it*. The write is conditional on that
        seq, so a run whose view went stale (another worker re-signed meanwhile,
        and that transaction may land) is refused instead of failing the order."""
        if run.order.is_terminal:
            return
        details: dict[str, Any] = {
            "error": exc.message,
            "code": exc.code.value,
            "attempts": run.order.attempts,
            **{k: v for k, v in exc.details.items() if v is not None},
        }
        try:
            await self._record(
                run,
                Trigger.FAIL,
                details,
                error_code=exc.code.value,
                error_message=exc.message,
            )
        except StaleWrite:
            run.log.info("fail_superseded", reason="another worker advanced the order")
            return
        run.log.warning("order_failed", code=exc.code.value, error=exc.message)


# One lifecycle step to record: its trigger, the event's details, the order's changes.
Step = tuple[Trigger, Mapping[str, Any], Mapping[str, Any]]

# What a delivery may quote before it holds the lease (``_route_ahead``), and how
# old that quote may be when the lease comes (a claim can wait out another
# worker's lease: a quote from before that wait is not one to sign).
_ROUTABLE: frozenset[OrderStatus] = RUNNING - {OrderStatus.SUBMITTED}
_AHEAD_MAX_AGE_S = 0.5


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A routing decision taken for the order at ``seq``, started at ``started``."""

    seq: int
    decision: RouteDecision
    started: float


@dataclass(slots=True)
class _Run:
    """One delivery of a job: the order as this run last read or wrote it."""

    order: Order
    log: Any
    ahead: _Ahead | None = None
