"""The simulated cluster's accounts: lamports, SPL token accounts and program data.

Token accounts are kept decoded (``TokenAccount``) and encoded to their
165-byte layout when read; program accounts (pools, configs, bin arrays) are
kept as raw bytes, exactly what ``getMultipleAccounts`` returns.

A transaction may only touch the accounts its message lists, so atomicity is a
journal of those accounts taken before execution and restored on failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from solders.pubkey import Pubkey

from order_engine.dex.spl import TOKEN_PROGRAM_ID
from order_engine.dex.token_accounts import TokenAccount, encode_token_account

_V = TypeVar("_V")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")


class ProgramError(Exception):
    """An instruction failed; ``name`` is the program's own error name."""

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message or name


@dataclass(frozen=True, slots=True)
class _Saved:
    lamports: int | None
    token: TokenAccount | None
    data: bytes | None
    owner: Pubkey | None


Journal = dict[Pubkey, _Saved]


class Ledger:
    def __init__(self) -> None:
        self.lamports: dict[Pubkey, int] = {}
        self.tokens: dict[Pubkey, TokenAccount] = {}
        self.data: dict[Pubkey, bytes] = {}
        self.owners: dict[Pubkey, Pubkey] = {}  # program owner of each data account

    # --- reads -----------------------------------------------------------------------

    def exists(self, key: Pubkey) -> bool:
        return key in self.tokens or key in self.data or self.lamports.get(key, 0) > 0

    def balance(self, key: Pubkey) -> int:
        return self.lamports.get(key, 0)

    def account_data(self, key: Pubkey) -> bytes | None:
        """Raw data as RPC returns it; ``b""`` for a system account, ``None`` if absent."""
        token = self.tokens.get(key)
        if token is not None:
            return encode_token_account(token)
        data = self.data.get(key)
        if data is not None:
            return data
        return b"" if self.lamports.get(key, 0) > 0 else None

    def owner_of(self, key: Pubkey) -> Pubkey | None:
        if key in self.tokens:
            return TOKEN_PROGRAM_ID
        if key in self.data:
            return self.owners[key]
        return SYSTEM_PROGRAM_ID if self.lamports.get(key, 0) > 0 else None

    def token(self, key: Pubkey) -> TokenAccount:
        account = self.tokens.get(key)
        if account is None:
            raise ProgramError("InvalidAccountData", f"{key} is not a token account")
        return account

    def program_data(self, key: Pubkey, owner: Pubkey) -> bytes:
        data = self.data.get(key)
        if data is None or self.owners.get(key) != owner:
            raise ProgramError("AccountOwnedByWrongProgram", f"{key} is not owned by {owner}")
        return data

    # --- writes ----------------------------------------------------------------------

    def credit(self, key: Pubkey, lamports: int) -> None:
        self.lamports[key] = self.lamports.get(key, 0) + lamports

    def debit(self, key: Pubkey, lamports: int) -> None:
        have = self.lamports.get(key, 0)
        if have < lamports:
            raise ProgramError(
                "ResultWithNegativeLamports",
                f"insufficient lamports {have}, need {lamports}",
            )
        self.lamports[key] = have - lamports

    def set_token(self, key: Pubkey, account: TokenAccount) -> None:
        self.tokens[key] = account

    def close_token(self, key: Pubkey) -> None:
        self.tokens.pop(key, None)
        self.lamports.pop(key, None)

    def set_data(self, key: Pubkey, owner: Pubkey, data: bytes, lamports: int = 0) -> None:
        self.data[key] = data
        self.owners[key] = owner
        if lamports:
            self.lamports[key] = lamports

    # --- atomicity -------------------------------------------------------------------

    def journal(self, keys: Iterable[Pubkey]) -> Journal:
        return {
            key: _Saved(
                self.lamports.get(key),
                self.tokens.get(key),
                self.data.get(key),
                self.owners.get(key),
            )
            for key in keys
        }

    def restore(self, journal: Journal) -> None:
        for key, saved in journal.items():
            _put(self.lamports, key, saved.lamports)
            _put(self.tokens, key, saved.token)
            _put(self.data, key, saved.data)
            _put(self.owners, key, saved.owner)


def _put(mapping: dict[Pubkey, _V], key: Pubkey, value: _V | None) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value
