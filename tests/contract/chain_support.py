"""What the Chain and Venue contracts share: waiting for a signature as a client
does, reading amounts out of ``getTransaction``, a portable transfer
transaction, and the simulator configuration the in-process subclasses use.

Everything here talks to the Chain *port* only, so a JSON-RPC subclass (against
``order-engine chain`` or devnet) reuses it unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.dex import spl
from order_engine.ports.chain import (
    Chain,
    Commitment,
    SignatureStatus,
    TokenBalance,
    TransactionResult,
)
from order_engine.sim import SimConfig, Simulator

# ``await advance(n)`` returns once at least ``n`` more blocks exist. The simulator
# advances its slot clock; an RPC subclass polls ``getBlockHeight``, sleeping in between.
Advance = Callable[[int], Awaitable[None]]

RANK = {Commitment.PROCESSED: 0, Commitment.CONFIRMED: 1, Commitment.FINALIZED: 2}

# Generous: a transaction that has not landed within its blockhash's validity
# (150 blocks) never will, so polling longer than that only hides a bug.
WITHIN_BLOCKS = 200

TRANSFER_CU_LIMIT = 200_000
TRANSFER_CU_PRICE = 50_000  # micro-lamports: lands in a few blocks, as the engine's default


def quiet_sim_config(**overrides: object) -> SimConfig:
    """Time scale 0, a fixed seed, every fault knob off, no congestion.

    Contract tests check the happy semantics of the ports; the faults have
    their own tests in ``tests/unit/sim``.
    """
    values: dict[str, object] = {
        "time_scale": 0.0,
        "seed": 20_250_101,
        "transient_failure_rate": 0.0,
        "rate_limit_rate": 0.0,
        "send_timeout_rate": 0.0,
        "congestion_share": 0.0,
        "market_moves": False,
    }
    values.update(overrides)
    return SimConfig(**values)  # type: ignore[arg-type]


def advance_simulator(sim: Simulator) -> Advance:
    """The in-process subclasses' ``advance``: produce the slots at once (block
    height equals the slot there), then yield as a network round trip would."""

    async def advance(blocks: int) -> None:
        sim.advance_slots(blocks)
        await asyncio.sleep(0)

    return advance


async def statuses_until(
    chain: Chain,
    advance: Advance,
    signature: str,
    commitment: Commitment = Commitment.CONFIRMED,
    *,
    within_blocks: int = WITHIN_BLOCKS,
) -> list[SignatureStatus | None]:
    """Poll ``signature`` once per block until it reaches ``commitment``; every
    status seen, in order (the last one reached ``commitment``)."""
    seen: list[SignatureStatus | None] = []
    for _ in range(within_blocks):
        (status,) = await chain.get_signature_statuses([signature])
        seen.append(status)
        if status is not None and RANK[status.confirmation_status] >= RANK[commitment]:
            return seen
        await advance(1)
    raise AssertionError(
        f"expected {signature} to reach {commitment} within {within_blocks} blocks; "
        f"the last statuses seen were {seen[-3:]}"
    )


async def wait_for(
    chain: Chain,
    advance: Advance,
    signature: str,
    commitment: Commitment = Commitment.CONFIRMED,
) -> SignatureStatus:
    status = (await statuses_until(chain, advance, signature, commitment))[-1]
    assert status is not None
    return status


async def landed(chain: Chain, advance: Advance, signature: str) -> TransactionResult:
    """Wait until ``signature`` is confirmed, then ``getTransaction`` it."""
    status = await wait_for(chain, advance, signature)
    result = await chain.get_transaction(signature)
    assert result is not None, f"{signature} is {status} but getTransaction returned None"
    return result


def token_delta(result: TransactionResult, owner: Pubkey, mint: str) -> int:
    """How much of ``mint`` the token accounts of ``owner`` gained in the transaction
    (an account absent before or after counts as holding 0 then)."""

    def held(balances: tuple[TokenBalance, ...]) -> int:
        return sum(b.amount for b in balances if (b.owner, b.mint) == (str(owner), mint))

    return held(result.post_token_balances) - held(result.pre_token_balances)


def fee_for(tx: VersionedTransaction, cu_limit: int, cu_price: int) -> int:
    """Solana's fee: 5 000 lamports per signature plus ceil(limit x price / 1e6)."""
    return spl.LAMPORTS_PER_SIGNATURE * len(tx.signatures) + spl.priority_fee_lamports(
        cu_limit, cu_price
    )


def wsol_transfer(
    payer: Keypair,
    recipient: Pubkey,
    lamports: int,
    *,
    blockhash: str,
    memo: str,
    send: int | None = None,
) -> VersionedTransaction:
    """Wrap ``lamports`` into the payer's wSOL account and transfer ``send``
    (default: all of it) to ``recipient``'s wSOL account, created on the way;
    then close the payer's wSOL account.

    Only System, Associated Token Account, SPL Token, Memo and Compute Budget
    instructions: every Solana cluster runs them, so the contract needs nothing
    but lamports. ``send > lamports`` makes the token transfer fail with the
    token program's insufficient-funds error, after the wrap succeeded.
    """
    owner = payer.pubkey()
    wsol = spl.WSOL_MINT
    mine = spl.associated_token_address(owner, wsol)
    theirs = spl.associated_token_address(recipient, wsol)
    instructions: list[Instruction] = [
        spl.set_compute_unit_limit(TRANSFER_CU_LIMIT),
        spl.set_compute_unit_price(TRANSFER_CU_PRICE),
        spl.memo(memo, owner),
        spl.create_ata_idempotent(owner, owner, wsol),
        spl.system_transfer(owner, mine, lamports),
        spl.sync_native(mine),
        spl.create_ata_idempotent(owner, recipient, wsol),
        spl.token_transfer(mine, theirs, owner, lamports if send is None else send),
        spl.close_account(mine, owner, owner),
    ]
    message = MessageV0.try_compile(owner, instructions, [], Hash.from_string(blockhash))
    return VersionedTransaction(message, [payer])
