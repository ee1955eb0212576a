"""Anchor framework conventions used by the Raydium CPMM and Meteora DLMM programs.

* An instruction's data starts with ``sha256("global:<snake_case_name>")[:8]``.
* An account's data starts with ``sha256("account:<StructName>")[:8]``.
* ``#[event_cpi]`` programs take a PDA of ``[b"__event_authority"]`` and the
  program itself as their last two fixed accounts.
* An ``Option<Account>`` that is ``None`` is passed as the program id.

Source: coral-xyz/anchor ``lang/syn/src/codegen`` (discriminators, event CPI).
"""

from __future__ import annotations

import hashlib
from functools import cache

from solders.pubkey import Pubkey


@cache
def instruction_discriminator(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


@cache
def account_discriminator(name: str) -> bytes:
    return hashlib.sha256(f"account:{name}".encode()).digest()[:8]


@cache
def event_authority(program_id: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address([b"__event_authority"], program_id)
    return address
