"""Native and SPL programs the engine's transactions use, executed on the ``Ledger``.

Semantics follow the real programs (solana-labs ``system_instruction_processor``,
``spl-token`` ``processor.rs``, ``spl-associated-token-account``, ``spl-memo``):

* System ``Transfer`` (u32 tag 2, u64 lamports): the source must sign and carry
  no data; a shortfall is ``ResultWithNegativeLamports``.
* ATA ``Create`` (``[]``/``[0]``) and ``CreateIdempotent`` (``[1]``): the address
  must be the derived one (``InvalidSeeds``); the payer funds the rent-exempt
  minimum; an existing account is accepted by the idempotent form if it has
  the right owner and mint. A wSOL account is *native*: its amount is its
  lamports above the rent reserve.
* Token ``Transfer`` (3), ``TransferChecked`` (12), ``CloseAccount`` (9),
  ``SyncNative`` (17), with the token program's error names
  (``InsufficientFunds``, ``OwnerMismatch``, ``MintMismatch``,
  ``NonNativeHasBalance``, ``NonNativeNotSupported``).
* Memo: valid UTF-8, every listed account must sign.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from solders.pubkey import Pubkey

from order_engine.dex import spl
from order_engine.dex.token_accounts import TokenAccount, decode_mint
from order_engine.sim.ledger import SYSTEM_PROGRAM_ID, Ledger, ProgramError

CU_COMPUTE_BUDGET = 150
CU_SYSTEM_TRANSFER = 150
CU_MEMO = 6_000
CU_ATA_CREATE = 22_000
CU_ATA_EXISTING = 4_000
CU_TOKEN = 4_500
CU_TOKEN_SIMPLE = 3_000


@dataclass(frozen=True, slots=True)
class Env:
    slot: int
    unix_timestamp: int


@dataclass(frozen=True, slots=True)
class Ix:
    program_id: Pubkey
    accounts: tuple[Pubkey, ...]
    signers: frozenset[Pubkey]
    data: bytes


@dataclass(slots=True)
class Invocation:
    ledger: Ledger
    ix: Ix
    env: Env
    logs: list[str] = field(default_factory=list)

    def account(self, index: int) -> Pubkey:
        if index >= len(self.ix.accounts):
            raise ProgramError(
                "NotEnoughAccountKeys",
                f"expected at least {index + 1} accounts, got {len(self.ix.accounts)}",
            )
        return self.ix.accounts[index]

    def require_signer(self, key: Pubkey) -> None:
        if key not in self.ix.signers:
            raise ProgramError("MissingRequiredSignature", f"{key} must sign")

    def log(self, message: str) -> None:
        self.logs.append(f"Program log: {message}")


Handler = Callable[[Invocation], int]

_U64 = struct.Struct("<Q")


# --- token movements, shared with the venue programs ----------------------------------


def check_transfer(
    ledger: Ledger, source: Pubkey, dest: Pubkey, authority: Pubkey, amount: int
) -> None:
    """Every check ``Transfer`` makes, without moving anything (validate first)."""
    src = ledger.token(source)
    dst = ledger.token(dest)
    if src.mint != dst.mint:
        raise ProgramError("MintMismatch", f"{source} holds {src.mint}, {dest} holds {dst.mint}")
    if authority != src.owner:
        raise ProgramError("OwnerMismatch", f"{source} is owned by {src.owner}, not {authority}")
    if src.amount < amount:
        raise ProgramError("InsufficientFunds", f"insufficient funds: {src.amount} < {amount}")


def move_tokens(
    ledger: Ledger, source: Pubkey, dest: Pubkey, authority: Pubkey, amount: int
) -> None:
    check_transfer(ledger, source, dest, authority, amount)
    src = ledger.token(source)
    ledger.set_token(source, src.with_amount(src.amount - amount))
    dst = ledger.token(dest)
    ledger.set_token(dest, dst.with_amount(dst.amount + amount))
    if src.is_native:
        ledger.debit(source, amount)
        ledger.credit(dest, amount)


# --- programs --------------------------------------------------------------------------


def compute_budget(_inv: Invocation) -> int:
    return CU_COMPUTE_BUDGET  # parsed before execution, when the fee is computed


def system(inv: Invocation) -> int:
    data = inv.ix.data
    if len(data) != 12 or struct.unpack_from("<I", data)[0] != 2:
        raise ProgramError("InvalidInstructionData", "only System Transfer is simulated")
    lamports = _U64.unpack_from(data, 4)[0]
    source, dest = inv.account(0), inv.account(1)
    inv.require_signer(source)
    if source in inv.ledger.tokens or source in inv.ledger.data:
        raise ProgramError("InvalidArgument", "Transfer: `from` must not carry data")
    inv.ledger.debit(source, lamports)
    inv.ledger.credit(dest, lamports)
    return CU_SYSTEM_TRANSFER


def memo(inv: Invocation) -> int:
    try:
        text = inv.ix.data.decode()
    except UnicodeDecodeError:
        raise ProgramError("InvalidInstructionData", "memo is not valid UTF-8") from None
    for key in inv.ix.accounts:
        inv.require_signer(key)
    inv.log(f'Memo (len {len(text)}): "{text}"')
    return CU_MEMO


def associated_token(inv: Invocation) -> int:
    data = inv.ix.data
    if data not in (b"", b"\x00", b"\x01"):
        raise ProgramError("InvalidInstructionData", "only Create and CreateIdempotent")
    idempotent = data == b"\x01"
    payer, address, wallet, mint = (inv.account(i) for i in range(4))
    ledger = inv.ledger
    if address != spl.associated_token_address(wallet, mint):
        raise ProgramError("InvalidSeeds", "address is not the wallet's associated token account")
    mint_data = ledger.data.get(mint)
    if mint_data is None or ledger.owners.get(mint) != spl.TOKEN_PROGRAM_ID:
        raise ProgramError("InvalidAccountData", f"{mint} is not a mint")
    decode_mint(mint_data)
    existing = ledger.tokens.get(address)
    if existing is not None:
        if not idempotent:
            raise ProgramError("AccountAlreadyInUse", f"{address} already exists")
        if existing.owner != wallet or existing.mint != mint:
            raise ProgramError("InvalidOwner", "existing account has another owner or mint")
        return CU_ATA_EXISTING
    inv.require_signer(payer)
    prefunded = ledger.balance(address)
    ledger.debit(payer, max(0, spl.TOKEN_ACCOUNT_RENT - prefunded))
    ledger.lamports[address] = max(prefunded, spl.TOKEN_ACCOUNT_RENT)
    native = mint == spl.WSOL_MINT
    amount = ledger.lamports[address] - spl.TOKEN_ACCOUNT_RENT if native else 0
    ledger.set_token(
        address,
        TokenAccount(mint, wallet, amount, spl.TOKEN_ACCOUNT_RENT if native else None),
    )
    inv.log("Create")
    return CU_ATA_CREATE


def token(inv: Invocation) -> int:
    data = inv.ix.data
    tag = data[0] if data else -1
    ledger = inv.ledger
    if tag == spl.TOKEN_TRANSFER and len(data) == 9:
        source, dest, authority = inv.account(0), inv.account(1), inv.account(2)
        inv.require_signer(authority)
        move_tokens(ledger, source, dest, authority, _U64.unpack_from(data, 1)[0])
        return CU_TOKEN
    if tag == 12 and len(data) == 10:  # TransferChecked
        source, mint, dest, authority = (inv.account(i) for i in range(4))
        inv.require_signer(authority)
        if ledger.token(source).mint != mint:
            raise ProgramError("MintMismatch", "source does not hold the given mint")
        if decode_mint(ledger.program_data(mint, spl.TOKEN_PROGRAM_ID)).decimals != data[9]:
            raise ProgramError("MintDecimalsMismatch", "decimals do not match the mint")
        move_tokens(ledger, source, dest, authority, _U64.unpack_from(data, 1)[0])
        return CU_TOKEN
    if tag == spl.TOKEN_SYNC_NATIVE and len(data) == 1:
        key = inv.account(0)
        account = ledger.token(key)
        if account.native_reserve is None:
            raise ProgramError("NonNativeNotSupported", "SyncNative on a non-native account")
        ledger.set_token(key, account.with_amount(ledger.balance(key) - account.native_reserve))
        return CU_TOKEN_SIMPLE
    if tag == spl.TOKEN_CLOSE_ACCOUNT and len(data) == 1:
        key, dest, authority = inv.account(0), inv.account(1), inv.account(2)
        account = ledger.token(key)
        if not account.is_native and account.amount != 0:
            raise ProgramError("NonNativeHasBalance", "close a non-native account with tokens")
        allowed = account.close_authority or account.owner
        if authority != allowed:
            raise ProgramError("OwnerMismatch", f"{key} closes only by {allowed}")
        inv.require_signer(authority)
        lamports = ledger.balance(key)
        ledger.close_token(key)
        ledger.credit(dest, lamports)
        return CU_TOKEN_SIMPLE
    raise ProgramError("InvalidInstruction", f"token instruction {tag} is not simulated")


BUILTINS: dict[Pubkey, Handler] = {
    spl.COMPUTE_BUDGET_PROGRAM_ID: compute_budget,
    SYSTEM_PROGRAM_ID: system,
    spl.MEMO_PROGRAM_ID: memo,
    spl.ATA_PROGRAM_ID: associated_token,
    spl.TOKEN_PROGRAM_ID: token,
}
