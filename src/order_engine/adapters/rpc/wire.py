"""What the chain server and the RPC client agree on beyond the JSON-RPC spec.

* base58 for arbitrary byte strings (``sendTransaction``'s default encoding);
* the JSON-RPC error codes a Solana node answers with;
* how a program error *name* (``ExceededSlippage``) travels as a Solana
  ``TransactionError`` and comes back as the same name;
* the pool list that ``GET /pools`` publishes.

Error names on the wire: a name that is one of Solana's built-in
``InstructionError`` variants (``InvalidInstructionData``,
``ComputationalBudgetExceeded``, ``InsufficientFunds``, ...) travels as that
variant, ``{"InstructionError": [index, "InvalidSeeds"]}``. Any other program
error travels as ``{"InstructionError": [index, {"Custom": code}]}``. A status
carries only the instruction index and the code, not the program, and real
programs' codes collide (1 is ``InsufficientFunds`` for SPL Token and
``ResultWithNegativeLamports`` for System), so the simulator numbers its error
names itself: ``SIM_ERROR_BASE + position in SIM_CUSTOM_ERRORS``, far above
any real program's codes. A code outside that table decodes to the Anchor error
name in the logs when there are logs, else to ``Custom(<code>)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from solders.transaction_status import InstructionErrorFieldless

from order_engine.adapters.venues.listing import PoolListing

# --- JSON-RPC error codes (solana rpc_custom_error.rs and JSON-RPC 2.0) ------------------

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PREFLIGHT_FAILURE = -32002  # SendTransactionPreflightFailure
SIGNATURE_VERIFICATION_FAILURE = -32003
NODE_UNHEALTHY = -32005
UNSUPPORTED_TRANSACTION_VERSION = -32015
TOO_MANY_REQUESTS = 429  # what public RPC providers put in the body of an HTTP 429
TIMEOUT = -32000  # the body of the simulator's HTTP 504 (a gateway timing out)

# --- base58 ---------------------------------------------------------------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_B58[rest])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Raises ``ValueError`` on a character outside the base58 alphabet."""
    number = 0
    for char in text:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {char!r}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


# --- program error names <-> TransactionError ----------------------------------------------

BUILTIN_INSTRUCTION_ERRORS = frozenset(
    name for name in dir(InstructionErrorFieldless) if not name.startswith("_")
)

SIM_ERROR_BASE = 0x0051_0000
# Append only: a published code keeps its meaning.
SIM_CUSTOM_ERRORS: tuple[str, ...] = (
    # System, SPL Token, Associated Token Account
    "ResultWithNegativeLamports",
    "AccountAlreadyInUse",
    "OwnerMismatch",
    "MintMismatch",
    "NonNativeHasBalance",
    "NonNativeNotSupported",
    "MintDecimalsMismatch",
    "InvalidOwner",
    # Anchor's framework errors (CPMM, DLMM)
    "AccountNotEnoughKeys",
    "AccountNotSigner",
    "AccountOwnedByWrongProgram",
    "ConstraintAddress",
    "ConstraintHasOne",
    "ConstraintSeeds",
    "RequireGtViolated",
    "RequireGteViolated",
    "InvalidProgramAddress",
    "InvalidInstruction",
    # Raydium AMM v4
    "ExceededSlippage",
    "InvalidInput",
    "InvalidUserToken",
    "InvalidCoinVault",
    "InvalidPCVault",
    "InvalidSignAccount",
    "WrongAccountsNumber",
    "InvalidStatus",
    # Raydium CPMM
    "NotApproved",
    "InvalidVault",
    "ZeroTradingTokens",
    # Meteora DLMM
    "ExceededAmountSlippageTolerance",
    "PairInsufficientLiquidity",
    "BinArrayNotFound",
    "InvalidTokenMint",
    "PoolDisabled",
    "MathOverflow",
    "InvalidBinArray",
    "InsufficientOutAmount",  # appended: codes are positions, so existing ones keep theirs
    # Pool creation (sim/launch_programs.py)
    "AccountNotInitialized",
    "ConstraintAssociated",
    "InitLpAmountTooLess",
    "ExceededBinSlippageTolerance",
    "InvalidBinId",
    "InvalidBinStep",
    "InvalidPosition",
)
_CODE_BY_NAME = {name: SIM_ERROR_BASE + i for i, name in enumerate(SIM_CUSTOM_ERRORS)}
_NAME_BY_CODE = {code: name for name, code in _CODE_BY_NAME.items()}
UNKNOWN_ERROR_CODE = SIM_ERROR_BASE + 0xFFFF  # a name missing from the table
_ANCHOR_ERROR = re.compile(r"Error Code: (\w+)\.")


def encode_error(name: str, instruction: int) -> dict[str, Any]:
    """The ``TransactionError`` JSON of program error ``name`` raised by ``instruction``."""
    if name in BUILTIN_INSTRUCTION_ERRORS:
        return {"InstructionError": [instruction, name]}
    return {
        "InstructionError": [instruction, {"Custom": _CODE_BY_NAME.get(name, UNKNOWN_ERROR_CODE)}]
    }


def decode_error(err: Any, logs: tuple[str, ...] = ()) -> str:
    """The error name in a ``TransactionError`` JSON (``err`` of a status or meta)."""
    if isinstance(err, str):
        return err  # transaction-level, e.g. "InsufficientFundsForFee"
    if isinstance(err, Mapping) and len(err) == 1:
        ((kind, payload),) = err.items()
        if kind != "InstructionError":
            return str(kind)  # e.g. {"DuplicateInstruction": 2}
        if isinstance(payload, list) and len(payload) == 2:
            inner = payload[1]
            if isinstance(inner, str):
                return inner
            if isinstance(inner, Mapping) and "Custom" in inner:
                return _custom_name(int(inner["Custom"]), logs)
            if isinstance(inner, Mapping) and len(inner) == 1:
                return str(next(iter(inner)))
    return str(err)


def _custom_name(code: int, logs: tuple[str, ...]) -> str:
    name = _NAME_BY_CODE.get(code)
    if name is not None:
        return name
    for line in reversed(logs):
        found = _ANCHOR_ERROR.search(line)
        if found:
            return found.group(1)
    return f"Custom({code})"


# --- the pool list --------------------------------------------------------------------------


def listing_to_json(listing: PoolListing) -> dict[str, Any]:
    return {
        "venue": listing.venue,
        "kind": listing.kind,
        "address": listing.address,
        "mintA": listing.mint_a,
        "mintB": listing.mint_b,
        "symbol": listing.symbol,
        "keys": dict(listing.keys),
    }


def listing_from_json(item: Mapping[str, Any]) -> PoolListing:
    """Raises ``KeyError``/``TypeError`` on an entry missing a field."""
    keys = item["keys"]
    if not isinstance(keys, Mapping):
        raise TypeError(f"pool {item.get('address')}: keys must be an object, got {keys!r}")
    return PoolListing(
        venue=str(item["venue"]),
        kind=str(item["kind"]),
        address=str(item["address"]),
        mint_a=str(item["mintA"]),
        mint_b=str(item["mintB"]),
        symbol=str(item["symbol"]),
        keys={str(k): str(v) for k, v in keys.items()},
    )
