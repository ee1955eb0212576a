"""SPL Token account and mint layouts, byte-compatible with mainnet.

Source: solana-labs/solana-program-library ``token/program/src/state.rs``
(``Account::LEN == 165``, ``Mint::LEN == 82``; ``COption`` is a u32 tag
followed by the value).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

TOKEN_ACCOUNT_LEN = 165
MINT_LEN = 82
ACCOUNT_STATE_INITIALIZED = 1

_ACCOUNT = struct.Struct("<32s32sQI32sBIQQI32s")
_MINT = struct.Struct("<I32sQBBI32s")
_AMOUNT = struct.Struct("<Q")
_ZERO_KEY = bytes(32)


@dataclass(frozen=True, slots=True)
class TokenAccount:
    """An SPL token account. ``native_reserve`` is set for wrapped SOL accounts:
    it is the rent-exempt reserve, and ``amount == lamports - native_reserve``."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    native_reserve: int | None = None
    close_authority: Pubkey | None = None

    @property
    def is_native(self) -> bool:
        return self.native_reserve is not None

    def with_amount(self, amount: int) -> TokenAccount:
        return TokenAccount(
            self.mint, self.owner, amount, self.native_reserve, self.close_authority
        )


def encode_token_account(account: TokenAccount) -> bytes:
    native = account.native_reserve
    close = account.close_authority
    return _ACCOUNT.pack(
        bytes(account.mint),
        bytes(account.owner),
        account.amount,
        0,
        _ZERO_KEY,
        ACCOUNT_STATE_INITIALIZED,
        0 if native is None else 1,
        0 if native is None else native,
        0,
        0 if close is None else 1,
        _ZERO_KEY if close is None else bytes(close),
    )


def decode_token_account(data: bytes) -> TokenAccount:
    if len(data) != TOKEN_ACCOUNT_LEN:
        raise ValueError(f"token account: expected {TOKEN_ACCOUNT_LEN} bytes, got {len(data)}")
    mint, owner, amount, _dtag, _dkey, state, ntag, native, _damt, ctag, close = _ACCOUNT.unpack(
        data
    )
    if state != ACCOUNT_STATE_INITIALIZED:
        raise ValueError(f"token account: expected state 1 (initialized), got {state}")
    return TokenAccount(
        Pubkey.from_bytes(mint),
        Pubkey.from_bytes(owner),
        amount,
        native if ntag else None,
        Pubkey.from_bytes(close) if ctag else None,
    )


def token_account_amount(data: bytes) -> int:
    """The ``amount`` field alone (offset 64), without decoding the rest."""
    if len(data) != TOKEN_ACCOUNT_LEN:
        raise ValueError(f"token account: expected {TOKEN_ACCOUNT_LEN} bytes, got {len(data)}")
    value: int = _AMOUNT.unpack_from(data, 64)[0]
    return value


@dataclass(frozen=True, slots=True)
class Mint:
    """An SPL mint. ``None`` authorities are revoked (``COption::None``): nobody can
    mint more, or freeze holders' accounts, ever again."""

    decimals: int
    supply: int = 0
    mint_authority: Pubkey | None = None
    freeze_authority: Pubkey | None = None


def encode_mint(mint: Mint) -> bytes:
    auth, freeze = mint.mint_authority, mint.freeze_authority
    return _MINT.pack(
        0 if auth is None else 1,
        _ZERO_KEY if auth is None else bytes(auth),
        mint.supply,
        mint.decimals,
        1,
        0 if freeze is None else 1,
        _ZERO_KEY if freeze is None else bytes(freeze),
    )


def decode_mint(data: bytes) -> Mint:
    if len(data) != MINT_LEN:
        raise ValueError(f"mint: expected {MINT_LEN} bytes, got {len(data)}")
    atag, auth, supply, decimals, initialized, ftag, fkey = _MINT.unpack(data)
    if not initialized:
        raise ValueError("mint: not initialized")
    return Mint(
        decimals,
        supply,
        Pubkey.from_bytes(auth) if atag else None,
        Pubkey.from_bytes(fkey) if ftag else None,
    )
