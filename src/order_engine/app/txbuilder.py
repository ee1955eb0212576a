"""Build and sign the swap transaction for a route plan (Solana v0 message).

Layout, in order:

1. Compute Budget: unit limit (scaled by the number of swap legs) and unit price
   (the priority fee that buys landing probability);
2. Memo with the order id, so that two orders with identical parameters never
   produce identical bytes (and signatures) within one blockhash;
3. idempotent ATA creation for the token accounts the swap writes;
4. wSOL wrap when SOL is the input: transfer lamports into the wSOL ATA + SyncNative;
5. one venue swap instruction per leg, hop by hop;
6. wSOL unwrap (CloseAccount back to the wallet) when SOL is on either side.

Every leg carries its own ``min_amount_out``: on the final hop each leg's share
of the plan's minimum, on an earlier hop exactly what the next hop spends, so
that the next hop can never run short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.dex import spl
from order_engine.domain.routing import RoutePlan
from order_engine.ports.venue import Venue

BASE_COMPUTE_UNITS = 60_000  # compute budget, memo, ATA creation, wrap/unwrap


@dataclass(frozen=True, slots=True)
class FeePolicy:
    compute_units_per_leg: int
    micro_lamports_per_cu: int


def leg_minimums(plan: RoutePlan) -> list[list[int]]:
    """The ``min_amount_out`` of every leg, hop by hop (see module docstring)."""
    mins: list[list[int]] = []
    for index, hop in enumerate(plan.hops):
        hop_expected = sum(leg.quote.amount_out for leg in hop)
        if index == len(plan.hops) - 1:
            hop_floor = plan.min_out
        else:
            hop_floor = sum(leg.quote.amount_in for leg in plan.hops[index + 1])
        # Pro-rata by expected output; flooring keeps the sum within the hop's floor.
        shares = [
            leg.quote.amount_out * hop_floor // hop_expected if hop_expected else 0 for leg in hop
        ]
        # Flooring may leave the sum a few units short: the floor is a promise about
        # the sum (a limit order's price), so the shortfall goes to legs with room.
        # (Never negative: a floor above the expected output, as a caller asking the
        # chain to refuse the swap sets it, is kept, not lowered to what is expected.)
        short = max(0, min(hop_floor, hop_expected) - sum(shares))
        for j, leg in enumerate(hop):
            add = max(0, min(short, leg.quote.amount_out - shares[j]))
            shares[j] += add
            short -= add
        mins.append(shares)
    return mins


def build_swap_transaction(
    plan: RoutePlan,
    *,
    payer: Keypair,
    input_mint: str,
    output_mint: str,
    blockhash: str,
    venues: Mapping[str, Venue],
    memo: str,
    fees: FeePolicy,
) -> VersionedTransaction:
    owner = payer.pubkey()
    wsol = spl.WSOL_MINT
    sol_in = input_mint == str(wsol)
    sol_out = output_mint == str(wsol)
    legs = plan.legs
    instructions: list[Instruction] = [
        spl.set_compute_unit_limit(BASE_COMPUTE_UNITS + fees.compute_units_per_leg * len(legs)),
        spl.set_compute_unit_price(fees.micro_lamports_per_cu),
        spl.memo(memo, owner),
    ]
    # Every mint a leg writes to needs an account; the input's exists unless it is wSOL.
    written = [Pubkey.from_string(leg.quote.output_mint) for leg in legs]
    needs_ata: list[Pubkey] = [wsol] if (sol_in or sol_out) else []
    for mint in written:
        if mint not in needs_ata:
            needs_ata.append(mint)
    instructions += [spl.create_ata_idempotent(owner, owner, mint) for mint in needs_ata]
    if sol_in:
        wsol_ata = spl.associated_token_address(owner, wsol)
        instructions.append(spl.system_transfer(owner, wsol_ata, plan.amount_in))
        instructions.append(spl.sync_native(wsol_ata))
    for hop, hop_mins in zip(plan.hops, leg_minimums(plan), strict=True):
        for leg, leg_min in zip(hop, hop_mins, strict=True):
            venue = venues[leg.quote.venue]
            instructions.append(venue.swap_instruction(leg.quote, owner=owner, min_out=leg_min))
    if sol_in or sol_out:
        wsol_ata = spl.associated_token_address(owner, wsol)
        instructions.append(spl.close_account(wsol_ata, owner, owner))
    message = MessageV0.try_compile(owner, instructions, [], Hash.from_string(blockhash))
    return VersionedTransaction(message, [payer])


def compute_budget_of(raw: bytes) -> tuple[int, int]:
    """(compute-unit limit, compute-unit price) a signed transaction bids, as its
    Compute Budget instructions say ((0, 0) for what it does not set)."""
    message = VersionedTransaction.from_bytes(raw).message
    keys = message.account_keys
    limit = price = 0
    for ix in message.instructions:
        if keys[ix.program_id_index] != spl.COMPUTE_BUDGET_PROGRAM_ID:
            continue
        kind, value = spl.decode_compute_budget(bytes(ix.data))
        if kind == "limit":
            limit = value
        elif kind == "price":
            price = value
    return limit, price
