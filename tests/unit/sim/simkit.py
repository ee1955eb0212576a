"""Helpers for the simulator tests: a quiet configuration, the engine's swap
transaction layout (as ``app/txbuilder.py`` builds it, rebuilt here so these
tests stand on their own) and a scale-0 confirmation loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.dex import spl
from order_engine.domain.routing import (
    PoolQuote,
    PoolSnapshot,
    RoutePlan,
    RouterConfig,
    plan_direct,
)
from order_engine.domain.tokens import SOL
from order_engine.ports.chain import SignatureStatus
from order_engine.sim import SimConfig, Simulator

SOL_MINT = SOL.mint
WALLET_LAMPORTS = 100_000 * 10**9


def quiet_config(**overrides: object) -> SimConfig:
    """Scale 0, fixed seed, no RPC faults, no congestion, a still market."""
    values: dict[str, object] = {
        "time_scale": 0.0,
        "seed": 7,
        "transient_failure_rate": 0.0,
        "rate_limit_rate": 0.0,
        "send_timeout_rate": 0.0,
        "congestion_share": 0.0,
        "market_moves": False,
    }
    values.update(overrides)
    return SimConfig(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Leg:
    quote: PoolQuote
    min_out: int


async def snapshots(sim: Simulator, mint_in: str, mint_out: str) -> list[PoolSnapshot]:
    found: list[PoolSnapshot] = []
    for venue in sim.venues:
        found += await venue.snapshots(mint_in, mint_out)
    return found


def build_swap(
    sim: Simulator,
    payer: Keypair,
    legs: Sequence[Leg],
    *,
    blockhash: str,
    input_mint: str,
    output_mint: str,
    memo: str = "order",
    cu_price: int = 50_000,
    cu_per_leg: int = 300_000,
) -> VersionedTransaction:
    """The engine's layout: budget, memo, ATAs, wrap, one swap per leg, unwrap."""
    owner = payer.pubkey()
    venues = {v.name: v for v in sim.venues}
    wsol = spl.WSOL_MINT
    sol_in, sol_out = input_mint == SOL_MINT, output_mint == SOL_MINT
    amount_in = sum(leg.quote.amount_in for leg in legs if leg.quote.input_mint == input_mint)
    instructions: list[Instruction] = [
        spl.set_compute_unit_limit(60_000 + cu_per_leg * len(legs)),
        spl.set_compute_unit_price(cu_price),
        spl.memo(memo, owner),
    ]
    atas: list[Pubkey] = [wsol] if (sol_in or sol_out) else []
    for leg in legs:
        mint = Pubkey.from_string(leg.quote.output_mint)
        if mint not in atas:
            atas.append(mint)
    instructions += [spl.create_ata_idempotent(owner, owner, mint) for mint in atas]
    wsol_ata = spl.associated_token_address(owner, wsol)
    if sol_in:
        instructions += [spl.system_transfer(owner, wsol_ata, amount_in), spl.sync_native(wsol_ata)]
    for leg in legs:
        venue = venues[leg.quote.venue]
        instructions.append(venue.swap_instruction(leg.quote, owner=owner, min_out=leg.min_out))
    if sol_in or sol_out:
        instructions.append(spl.close_account(wsol_ata, owner, owner))
    message = MessageV0.try_compile(owner, instructions, [], Hash.from_string(blockhash))
    return VersionedTransaction(message, [payer])


async def confirm(sim: Simulator, signature: str, *, polls: int = 400) -> SignatureStatus:
    """Poll as the engine does at scale 0 (each repeat poll lets a slot pass)."""
    for _ in range(polls):
        (status,) = await sim.chain.get_signature_statuses([signature])
        if status is not None and status.confirmation_status != "processed":
            return status
    raise AssertionError(f"{signature} not confirmed after {polls} polls")


def route(pools: Sequence[PoolSnapshot], amount_in: int, slippage_bps: int = 50) -> RoutePlan:
    """``plan_direct`` with the router's defaults; the genesis pools always yield a plan."""
    plan = plan_direct(pools, amount_in, slippage_bps, RouterConfig())
    assert plan is not None, f"no plan for {amount_in}"
    return plan
