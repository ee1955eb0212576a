"""SPL Token, Associated Token Account, System, Memo and Compute Budget programs:
ids, address derivation and instruction encodings, byte-compatible with mainnet."""

from __future__ import annotations

import struct
from functools import lru_cache

from solders import compute_budget
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer

from order_engine.domain.tokens import SOL

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
COMPUTE_BUDGET_PROGRAM_ID = compute_budget.ID
WSOL_MINT = Pubkey.from_string(SOL.mint)  # native SOL, wrapped

LAMPORTS_PER_SIGNATURE = 5_000
# Rent-exempt minimum of a 165-byte token account, which a wSOL account keeps
# on top of the wrapped amount and returns on close.
TOKEN_ACCOUNT_RENT = 2_039_280

# SPL Token instruction tags.
TOKEN_TRANSFER = 3
TOKEN_CLOSE_ACCOUNT = 9
TOKEN_SYNC_NATIVE = 17
# Associated Token Account instruction tag.
ATA_CREATE_IDEMPOTENT = 1


@lru_cache(maxsize=65_536)
def associated_token_address(owner: Pubkey, mint: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address(
        [bytes(owner), bytes(TOKEN_PROGRAM_ID), bytes(mint)], ATA_PROGRAM_ID
    )
    return address


def create_ata_idempotent(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    return Instruction(
        ATA_PROGRAM_ID,
        bytes([ATA_CREATE_IDEMPOTENT]),
        [
            AccountMeta(payer, is_signer=True, is_writable=True),
            AccountMeta(associated_token_address(owner, mint), is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=False, is_writable=False),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
            AccountMeta(TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        ],
    )


def system_transfer(source: Pubkey, dest: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=source, to_pubkey=dest, lamports=lamports))


def sync_native(account: Pubkey) -> Instruction:
    return Instruction(
        TOKEN_PROGRAM_ID,
        bytes([TOKEN_SYNC_NATIVE]),
        [AccountMeta(account, is_signer=False, is_writable=True)],
    )


def close_account(account: Pubkey, destination: Pubkey, owner: Pubkey) -> Instruction:
    return Instruction(
        TOKEN_PROGRAM_ID,
        bytes([TOKEN_CLOSE_ACCOUNT]),
        [
            AccountMeta(account, is_signer=False, is_writable=True),
            AccountMeta(destination, is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=True, is_writable=False),
        ],
    )


def token_transfer(source: Pubkey, dest: Pubkey, owner: Pubkey, amount: int) -> Instruction:
    return Instruction(
        TOKEN_PROGRAM_ID,
        struct.pack("<BQ", TOKEN_TRANSFER, amount),
        [
            AccountMeta(source, is_signer=False, is_writable=True),
            AccountMeta(dest, is_signer=False, is_writable=True),
            AccountMeta(owner, is_signer=True, is_writable=False),
        ],
    )


def memo(text: str, signer: Pubkey) -> Instruction:
    return Instruction(
        MEMO_PROGRAM_ID, text.encode(), [AccountMeta(signer, is_signer=True, is_writable=False)]
    )


def set_compute_unit_limit(units: int) -> Instruction:
    return compute_budget.set_compute_unit_limit(units)


def set_compute_unit_price(micro_lamports: int) -> Instruction:
    return compute_budget.set_compute_unit_price(micro_lamports)


def decode_compute_budget(data: bytes) -> tuple[str, int]:
    """(``"limit"`` | ``"price"`` | ``"other"``, value) from a Compute Budget instruction."""
    if data[:1] == b"\x02" and len(data) == 5:
        return "limit", struct.unpack_from("<I", data, 1)[0]
    if data[:1] == b"\x03" and len(data) == 9:
        return "price", struct.unpack_from("<Q", data, 1)[0]
    return "other", 0


def priority_fee_lamports(cu_limit: int, cu_price_micro_lamports: int) -> int:
    """ceil(limit * price / 1e6), as the runtime charges it."""
    return -(-cu_limit * cu_price_micro_lamports // 1_000_000)
