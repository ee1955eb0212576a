"""Transaction semantics: sanitize, verify, price, and execute atomically.

* ``prepare`` does what a leader does before scheduling: parse the bytes,
  sanitize the message, verify *every* signature (``solders``
  ``VersionedTransaction.verify_with_results``), read the Compute Budget
  instructions and compute the fee: 5000 lamports per signature plus
  ``ceil(cu_limit * cu_price / 1e6)``. Without ``SetComputeUnitLimit`` the
  limit is 200 000 per non-compute-budget instruction, capped at 1 400 000.
* ``execute`` charges the fee first (it is kept even when the transaction
  fails), then runs the instructions against a journal of the accounts the
  message lists; any ``ProgramError`` (or exceeding the compute-unit limit)
  restores the journal. Address lookup tables are not simulated.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.dex import meteora_dlmm as dlmm
from order_engine.dex import raydium_amm_v4 as amm
from order_engine.dex import raydium_cpmm as cpmm
from order_engine.dex import spl
from order_engine.ports.chain import TokenBalance, TransactionRejected
from order_engine.sim.builtins import BUILTINS, Env, Handler, Invocation, Ix
from order_engine.sim.launch_programs import cpmm_program, dlmm_program
from order_engine.sim.ledger import Ledger, ProgramError
from order_engine.sim.venue_programs import raydium_amm_v4

DEFAULT_CU_PER_INSTRUCTION = 200_000
MAX_CU_LIMIT = 1_400_000

PROGRAMS: dict[Pubkey, Handler] = {
    **BUILTINS,
    amm.PROGRAM_ID: raydium_amm_v4,
    cpmm.PROGRAM_ID: cpmm_program,  # swap_base_input, initialize
    dlmm.PROGRAM_ID: dlmm_program,  # swap, initialize_lb_pair, bin arrays, liquidity
}


@dataclass(frozen=True, slots=True)
class TxPlan:
    signature: str
    payer: Pubkey
    keys: tuple[Pubkey, ...]
    instructions: tuple[Ix, ...]
    blockhash: Hash
    cu_limit: int
    cu_price: int
    fee: int


@dataclass(frozen=True, slots=True)
class Execution:
    err: str | None
    fee: int
    cu_consumed: int
    logs: tuple[str, ...]
    pre_token_balances: tuple[TokenBalance, ...]
    post_token_balances: tuple[TokenBalance, ...]
    pre_lamports: int
    post_lamports: int
    # What a JSON-RPC ``getTransaction`` reports beyond the port's view: the
    # failing instruction, every listed account's lamports, and which message
    # account each token balance belongs to (``accountIndex``).
    failed_instruction: int | None = None
    pre_balances: tuple[int, ...] = ()
    post_balances: tuple[int, ...] = ()
    pre_token_indices: tuple[int, ...] = ()
    post_token_indices: tuple[int, ...] = ()


# Why ``prepare`` refused a transaction (``TransactionRejected.details["reason"]``),
# so that an RPC front end can answer with the matching error shape.
MALFORMED = "malformed"
UNSUPPORTED = "unsupported"
BAD_SIGNATURE = "signature"
DUPLICATE_INSTRUCTION = "DuplicateInstruction"
INSUFFICIENT_FUNDS_FOR_FEE = "InsufficientFundsForFee"


def reject(reason: str, *, kind: str, instruction: int | None = None) -> TransactionRejected:
    return TransactionRejected(
        f"transaction rejected: {reason}", reason=kind, instruction=instruction
    )


def prepare(raw: bytes) -> TxPlan:
    """Parse, sanitize and verify ``raw``; raises ``TransactionRejected``."""
    try:
        tx = VersionedTransaction.from_bytes(raw)
        tx.sanitize()
    except Exception as exc:  # noqa: BLE001 - solders raises several parse error types
        raise reject(f"malformed transaction ({exc})", kind=MALFORMED) from None
    message = tx.message
    if getattr(message, "address_table_lookups", None):
        raise reject("address lookup tables are not supported by the simulator", kind=UNSUPPORTED)
    try:
        verified = tx.verify_with_results()
    except Exception as exc:  # noqa: BLE001
        raise reject(f"signature verification failed ({exc})", kind=BAD_SIGNATURE) from None
    if not verified or not all(verified):
        raise reject("signature verification failed", kind=BAD_SIGNATURE)
    keys = tuple(message.account_keys)
    signers = frozenset(keys[: message.header.num_required_signatures])
    instructions = tuple(
        Ix(
            keys[ci.program_id_index],
            tuple(keys[i] for i in bytes(ci.accounts)),
            signers,
            bytes(ci.data),
        )
        for ci in message.instructions
    )
    cu_limit, cu_price = _compute_budget(instructions)
    fee = spl.LAMPORTS_PER_SIGNATURE * len(tx.signatures) + spl.priority_fee_lamports(
        cu_limit, cu_price
    )
    return TxPlan(
        signature=str(tx.signatures[0]),
        payer=keys[0],
        keys=keys,
        instructions=instructions,
        blockhash=message.recent_blockhash,
        cu_limit=cu_limit,
        cu_price=cu_price,
        fee=fee,
    )


def _compute_budget(instructions: tuple[Ix, ...]) -> tuple[int, int]:
    limit: int | None = None
    price = 0
    seen: set[str] = set()
    others = 0
    for index, ix in enumerate(instructions):
        if ix.program_id != spl.COMPUTE_BUDGET_PROGRAM_ID:
            others += 1
            continue
        kind, value = spl.decode_compute_budget(ix.data)
        if kind in seen:
            raise reject(
                f"DuplicateInstruction: two compute-budget {kind} instructions",
                kind=DUPLICATE_INSTRUCTION,
                instruction=index,
            )
        seen.add(kind)
        if kind == "limit":
            limit = value
        elif kind == "price":
            price = value
    if limit is None:
        limit = DEFAULT_CU_PER_INSTRUCTION * others
    return min(limit, MAX_CU_LIMIT), price


def token_balances(ledger: Ledger, keys: tuple[Pubkey, ...]) -> tuple[TokenBalance, ...]:
    balances = []
    for key in keys:
        account = ledger.tokens.get(key)
        if account is not None:
            # Interned: every landed transaction keeps these, and the same few
            # owners and mints recur in all of them.
            owner, mint = sys.intern(str(account.owner)), sys.intern(str(account.mint))
            balances.append(TokenBalance(owner, mint, account.amount))
    return tuple(balances)


def token_indices(ledger: Ledger, keys: tuple[Pubkey, ...]) -> tuple[int, ...]:
    """Positions in ``keys`` of the token accounts ``token_balances`` lists, in its order."""
    return tuple(i for i, key in enumerate(keys) if key in ledger.tokens)


def run_instruction(ledger: Ledger, ix: Ix, env: Env, logs: list[str]) -> int:
    """One top-level instruction; returns compute units used, raises ``ProgramError``."""
    handler = PROGRAMS.get(ix.program_id)
    logs.append(f"Program {ix.program_id} invoke [1]")
    if handler is None:
        raise ProgramError("UnsupportedProgramId", f"program {ix.program_id} is not simulated")
    inv = Invocation(ledger, ix, env)
    try:
        units = handler(inv)
    except (ValueError, IndexError, struct.error) as exc:
        # Malformed data or accounts: a program answers with an error, never a crash.
        raise ProgramError("InvalidInstructionData", str(exc)) from exc
    finally:
        logs.extend(inv.logs)
    return units


def execute(ledger: Ledger, plan: TxPlan, env: Env) -> Execution | None:
    """Charge the fee and run ``plan``; ``None`` if the payer cannot pay the fee
    (a leader drops such a transaction without recording it)."""
    if ledger.balance(plan.payer) < plan.fee or plan.payer in ledger.tokens:
        return None
    pre_tokens = token_balances(ledger, plan.keys)
    pre_token_at = token_indices(ledger, plan.keys)
    pre_balances = tuple(ledger.balance(key) for key in plan.keys)
    pre_lamports = ledger.balance(plan.payer)
    ledger.debit(plan.payer, plan.fee)
    journal = ledger.journal(plan.keys)
    logs: list[str] = []
    consumed = 0
    err: str | None = None
    failed: int | None = None
    for index, ix in enumerate(plan.instructions):
        try:
            units = run_instruction(ledger, ix, env, logs)
            consumed += units
            if consumed > plan.cu_limit:
                raise ProgramError(
                    "ComputationalBudgetExceeded",
                    f"consumed {consumed} of {plan.cu_limit} compute units",
                )
        except ProgramError as exc:
            ledger.restore(journal)
            err = exc.name
            failed = index
            logs.append(f"Program {ix.program_id} failed: {exc.message}")
            break
        logs.append(f"Program {ix.program_id} consumed {units} compute units")
        logs.append(f"Program {ix.program_id} success")
    return Execution(
        err=err,
        fee=plan.fee,
        cu_consumed=consumed,
        logs=tuple(map(sys.intern, logs)),  # the same lines recur in every landed transaction
        pre_token_balances=pre_tokens,
        post_token_balances=token_balances(ledger, plan.keys),
        pre_lamports=pre_lamports,
        post_lamports=ledger.balance(plan.payer),
        failed_instruction=failed,
        pre_balances=pre_balances,
        post_balances=tuple(ledger.balance(key) for key in plan.keys),
        pre_token_indices=pre_token_at,
        post_token_indices=token_indices(ledger, plan.keys),
    )
