"""Steps the JSON-RPC integration tests share: plan and sign a swap the way a
worker does (venues from ``GET /pools``, state over ``RpcChain``, the app's
router and transaction builder), and wait for a signature as a client does."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from solders.keypair import Keypair
from solders.transaction import VersionedTransaction

from order_engine.adapters.rpc import RpcChain, fetch_pool_listing
from order_engine.adapters.venues import MeteoraVenue, RaydiumVenue
from order_engine.app.router import Router
from order_engine.app.txbuilder import FeePolicy, build_swap_transaction
from order_engine.domain.routing import RoutePlan, RouterConfig
from order_engine.domain.tokens import SOL, USDC, Token
from order_engine.ports.chain import Commitment, SignatureStatus
from order_engine.ports.venue import Venue

FEES = FeePolicy(compute_units_per_leg=300_000, micro_lamports_per_cu=50_000)


@dataclasses.dataclass(frozen=True)
class SignedSwap:
    tx: VersionedTransaction
    plan: RoutePlan
    last_valid_block_height: int

    @property
    def signature(self) -> str:
        return str(self.tx.signatures[0])


async def venues_over_rpc(url: str, chain: RpcChain, *, only: str | None = None) -> list[Venue]:
    listings = await fetch_pool_listing(url)
    venues: list[Venue] = [RaydiumVenue(chain, listings), MeteoraVenue(chain, listings)]
    return [v for v in venues if only is None or v.name == only]


async def signed_swap(
    chain: RpcChain,
    venues: list[Venue],
    owner: Keypair,
    *,
    sell: Token,
    buy: Token,
    amount: int,
    min_out_above_quote: bool = False,
) -> SignedSwap:
    """Route ``amount`` of ``sell`` into ``buy`` and sign the engine's transaction.
    ``min_out_above_quote`` asks one base unit more than the route quotes, so the
    venue program must refuse it on chain."""
    router = Router(
        venues,
        timeout_s=5,
        config=RouterConfig(),
        intermediates={SOL.mint: SOL.symbol, USDC.mint: USDC.symbol},
    )
    plan = (await router.decide(sell.mint, buy.mint, amount, slippage_bps=100)).plan
    if min_out_above_quote:
        plan = dataclasses.replace(plan, min_out=plan.expected_out + 1)
    latest = await chain.get_latest_blockhash()
    tx = build_swap_transaction(
        plan,
        payer=owner,
        input_mint=sell.mint,
        output_mint=buy.mint,
        blockhash=latest.blockhash,
        venues=router.venues,
        memo=f"rpc-integration {uuid.uuid4()}",
        fees=FEES,
    )
    return SignedSwap(tx, plan, latest.last_valid_block_height)


async def settle(
    chain: RpcChain, signature: str, last_valid_block_height: int, *, within_s: float = 30.0
) -> SignatureStatus | None:
    """Poll until ``signature`` is confirmed (its status) or the block height has
    passed ``last_valid_block_height`` with it unseen (``None``: it never lands)."""
    async with asyncio.timeout(within_s):
        while True:
            (status,) = await chain.get_signature_statuses([signature])
            if status is not None and status.confirmation_status is not Commitment.PROCESSED:
                return status
            if status is None and await chain.get_block_height() > last_valid_block_height:
                (late,) = await chain.get_signature_statuses([signature])
                if late is None:
                    return None
            await asyncio.sleep(0.005)
