"""Transactions and token amounts rendered as a Solana node renders them."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from solders.transaction import VersionedTransaction

from order_engine.adapters.rpc import wire

TRANSACTION_ENCODINGS = ("json", "base64", "base58")


def token_amount(amount: int, decimals: int) -> dict[str, Any]:
    """``uiTokenAmount``: the amount in base units, as a decimal string and as a float."""
    ui = Decimal(amount).scaleb(-decimals)
    text = format(ui, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": float(ui),
        "uiAmountString": text,
    }


def encode_transaction(tx: VersionedTransaction, raw: bytes, encoding: Any) -> Any:
    if encoding == "base64":
        return [base64.b64encode(raw).decode(), "base64"]
    if encoding == "base58":
        return [wire.b58encode(raw), "base58"]
    if encoding != "json":
        raise ValueError(f"encoding {encoding} is not supported by the simulator")
    message = tx.message
    header = message.header
    ui: dict[str, Any] = {
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "accountKeys": [str(k) for k in message.account_keys],
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(bytes(ix.accounts)),
                "data": wire.b58encode(bytes(ix.data)),
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
    }
    if hasattr(message, "address_table_lookups"):
        ui["addressTableLookups"] = []
    return {"signatures": [str(s) for s in tx.signatures], "message": ui}
