"""Idempotency keys on order submission, with Stripe's semantics.

* same key, same request: the first response again (status, body, Location),
  and no second order;
* same key, a different request: refused (``Mismatch``);
* same key while the first request is still being handled: ``InFlight``
  (409), however many arrive at once; only one of them can hold the key.

"Same request" means the same order once validated: input and output mint,
amount in base units, slippage and kind. ``{"amount": 10}`` and
``{"amount": "10.0"}`` are the same order; key order and whitespace do not
matter. Requests that fail validation never touch a key, as at Stripe.

Keys are per owner (the API key's id; ``""`` for anonymous callers), kept
``retention`` (at least 24 h) and purged after that by every API process
(``purge_forever``, in bounded batches).
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import orjson
import structlog

from order_engine.app.orders import OrderRequest
from order_engine.domain.terms import terms_to_json
from order_engine.ports.clock import Clock
from order_engine.ports.idempotency import IdempotencyStore, Outcome, Reservation

log = structlog.get_logger(__name__)

MAX_KEY_LENGTH = 255
# Visible ASCII without spaces: what survives any header (values are trimmed) as is.
KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,255}")
ENDPOINT = "POST /api/orders/execute"


def request_fingerprint(request: OrderRequest) -> str:
    canonical = {
        "endpoint": ENDPOINT,
        "inputMint": request.input.mint,
        "outputMint": request.output.mint,
        "amountIn": str(request.amount_in),
        "slippageBps": request.slippage_bps,
        "kind": request.kind.value,
    }
    # Only when present, so that a market order's fingerprint is what it always was.
    extra = {
        "terms": terms_to_json(request.options.terms),
        "expiry": request.options.expiry.fingerprint(),
        "maxPriceImpactBps": request.options.max_price_impact_bps,
        "priorityFee": (
            None if request.options.priority_fee is None else request.options.priority_fee.to_text()
        ),
    }
    canonical.update({k: v for k, v in extra.items() if v is not None})
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Idempotency:
    def __init__(
        self, store: IdempotencyStore, clock: Clock, *, retention_h: float, in_flight_s: float
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention = timedelta(hours=retention_h)
        self.in_flight = timedelta(seconds=in_flight_s)

    async def begin(self, owner: str | None, key: str, request: OrderRequest) -> Outcome:
        now = self.clock.now()
        return await self.store.begin(
            owner or "",
            key,
            request_fingerprint(request),
            now,
            expired_before=now - self.retention,
            stale_before=now - self.in_flight,
        )

    async def abandon(self, reservation: Reservation) -> None:
        await self.store.abandon(reservation)

    async def purge(self) -> int:
        """Forget keys past their retention; returns how many."""
        return await self.store.purge(self.clock.now() - self.retention)

    async def purge_forever(self, interval_s: float) -> None:
        """Purge every ``interval_s``, in every process that serves the API: the
        keys are written there, whether or not a worker or reconciler runs beside."""
        while True:
            await self.clock.sleep(interval_s)
            try:
                purged = await self.purge()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("idempotency_purge_failed", error=repr(exc))
                continue
            if purged:
                log.info("idempotency_keys_purged", count=purged)
