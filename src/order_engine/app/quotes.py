"""A dry run of routing: what the engine would do with an order, in Jupiter's shape.

Nothing is persisted, enqueued, signed or sent: the router reads pool state
from every venue, plans exactly as the executor would, and the plan is
presented with Jupiter's quote fields (raw base-unit strings for amounts,
``routePlan`` legs with their ``percent``) next to every venue's own quote.
The market moves, so an order submitted afterwards is routed afresh.
"""

from __future__ import annotations

from typing import Any

from order_engine.app.orders import OrderRequest
from order_engine.app.reporting import Presenter, fmt
from order_engine.app.router import Router
from order_engine.ports.clock import Clock


class QuoteService:
    def __init__(self, router: Router, presenter: Presenter, clock: Clock) -> None:
        self.router = router
        self.present = presenter
        self.clock = clock

    async def quote(self, request: OrderRequest) -> dict[str, Any]:
        started = self.clock.monotonic()
        decision = await self.router.decide(
            request.input.mint, request.output.mint, request.amount_in, request.slippage_bps
        )
        plan = decision.plan
        show = self.present
        out_mint = request.output.mint
        return {
            "inputMint": request.input.mint,
            "outputMint": out_mint,
            "inputToken": request.input.symbol,
            "outputToken": request.output.symbol,
            "inAmount": str(plan.amount_in),
            "outAmount": str(plan.expected_out),
            "otherAmountThreshold": str(plan.min_out),
            "swapMode": "ExactIn",
            "slippageBps": request.slippage_bps,
            "priceImpactPct": fmt(plan.price_impact_bps / 100),
            "routePlan": [
                {
                    "swapInfo": {
                        "ammKey": leg.quote.pool_id,
                        "label": f"{leg.quote.venue}/{leg.quote.pool_kind}",
                        "venue": leg.quote.venue,
                        "inputMint": leg.quote.input_mint,
                        "outputMint": leg.quote.output_mint,
                        "inAmount": str(leg.quote.amount_in),
                        "outAmount": str(leg.quote.amount_out),
                        "feeAmount": str(leg.quote.fee),
                        "feeMint": leg.quote.input_mint,
                    },
                    "percent": leg.share_bps / 100,
                    "hop": hop_number,
                }
                for hop_number, hop in enumerate(plan.hops, 1)
                for leg in hop
            ],
            "dex": plan.venue,
            "reason": plan.reason,
            "ui": {
                "inAmount": show.amount(request.input.mint, plan.amount_in),
                "outAmount": show.amount(out_mint, plan.expected_out),
                "otherAmountThreshold": show.amount(out_mint, plan.min_out),
            },
            "quotes": [show.quote(q) for q in plan.alternatives],
            "unfilled": [show.unfilled(u.pool, u.amount_in, u.reason) for u in decision.unfilled],
            "skipped": decision.skipped,
            "timeTaken": round(self.clock.monotonic() - started, 6),
        }
