"""The JSON-RPC methods of the chain server, over one simulated ``Cluster``.

Each method takes the request's ``params`` and returns the ``result`` JSON (or
raises ``RpcFailure``), in the shapes a Solana node answers with; no I/O and no
asyncio here (``server.py`` adds HTTP, faults and latency). Commitment
parameters are accepted and ignored where the simulator has one bank: a
blockhash, a balance or an account reads the same at every commitment.

``sendTransaction`` with preflight (the default) checks what a node checks
before forwarding: the bytes parse and sanitize (else ``-32602``), every
signature verifies (``-32003``), the blockhash is known and recent, the fee
payer can pay, and the transaction is not already processed (``-32002`` with
``data.err`` ``BlockhashNotFound`` / ``InsufficientFundsForFee`` /
``AlreadyProcessed``). It does not simulate execution: as in the in-process
chain, a transaction whose program fails lands, fails and pays its fee. With
``skipPreflight`` only parsing is checked; a transaction that fails the other
checks gets its signature back and never lands, as a real leader drops it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from order_engine.adapters.rpc import wire
from order_engine.dex.spl import TOKEN_PROGRAM_ID
from order_engine.dex.token_accounts import decode_mint, decode_token_account
from order_engine.domain.tokens import U64_MAX
from order_engine.ports.chain import BlockhashNotFound, Commitment, TokenBalance
from order_engine.ports.chain import TransactionRejected as Rejected
from order_engine.sim import runtime
from order_engine.sim.cluster import GENESIS_UNIX_TIMESTAMP, Cluster, Landed
from order_engine.sim.rpc import ui
from order_engine.sim.rpc.faucet import Faucet

API_VERSION = "2.1.0"
VERSION = {"solana-core": API_VERSION, "feature-set": 3_271_415_109, "order-engine-sim": True}
STATUS_CACHE_SLOTS = 300  # what a node answers for without searchTransactionHistory
MAX_SIGNATURES = 256
MAX_ACCOUNTS = 100
BASE58_ACCOUNT_LIMIT = 128

Params = list[Any]


class RpcFailure(Exception):
    """A JSON-RPC error object: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _invalid(message: str) -> RpcFailure:
    return RpcFailure(wire.INVALID_PARAMS, message)


def _preflight(err: Any, reason: str) -> RpcFailure:
    return RpcFailure(
        wire.PREFLIGHT_FAILURE,
        f"Transaction simulation failed: {reason}",
        {
            "err": err,
            "logs": [],
            "accounts": None,
            "unitsConsumed": 0,
            "returnData": None,
            "innerInstructions": None,
            "replacementBlockhash": None,
        },
    )


def _arg(params: Params, index: int, kind: type, what: str) -> Any:
    if len(params) <= index or not isinstance(params[index], kind):
        raise _invalid(f"Invalid params: expected {what} at position {index}")
    return params[index]


def _config(params: Params, index: int) -> dict[str, Any]:
    config = params[index] if len(params) > index else None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _invalid(f"Invalid params: expected a configuration object at position {index}")
    return config


def _pubkey(text: Any) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except (ValueError, TypeError):
        raise _invalid("Invalid param: Invalid") from None


class RpcMethods:
    def __init__(self, cluster: Cluster, faucet: Faucet) -> None:
        self.cluster = cluster
        self.faucet = faucet
        self._decimals: dict[str, int] = {}
        self.table: dict[str, Callable[[Params], Any]] = {
            "getLatestBlockhash": self.get_latest_blockhash,
            "getBlockHeight": lambda _p: self.cluster.block_height(),
            "getSlot": lambda _p: self.cluster.slot,
            "sendTransaction": self.send_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getBalance": self.get_balance,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "getHealth": lambda _p: "ok",
            "getVersion": lambda _p: VERSION,
            "requestAirdrop": self.request_airdrop,
            "simAirdropTokens": self.sim_airdrop_tokens,
        }

    def context(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self.cluster.slot, "apiVersion": API_VERSION}, "value": value}

    # --- blockhashes and sending ---------------------------------------------------------

    def get_latest_blockhash(self, _params: Params) -> Any:
        latest = self.cluster.latest_blockhash()
        return self.context(
            {"blockhash": latest.blockhash, "lastValidBlockHeight": latest.last_valid_block_height}
        )

    def send_transaction(self, params: Params) -> Any:
        data = _arg(params, 0, str, "an encoded transaction")
        config = _config(params, 1)
        raw = self._decode_transaction(data, config.get("encoding", "base58"))
        skip = bool(config.get("skipPreflight", False))
        try:
            signature = self.cluster.send(raw)
        except Rejected as exc:
            reason = exc.details.get("reason")
            if reason in (runtime.MALFORMED, runtime.UNSUPPORTED):
                raise _invalid(f"invalid transaction: {exc.message}") from None
            if skip:
                return _first_signature(raw)  # the leader drops it; the client never hears
            if reason == runtime.BAD_SIGNATURE:
                raise RpcFailure(
                    wire.SIGNATURE_VERIFICATION_FAILURE,
                    "Transaction signature verification failure",
                ) from None
            if reason == runtime.DUPLICATE_INSTRUCTION:
                at = exc.details.get("instruction", 0)
                raise _preflight(
                    {"DuplicateInstruction": at},
                    f"Transaction contains a duplicate instruction ({at}) that is not allowed",
                ) from None
            raise _preflight("InsufficientFundsForFee", "Insufficient funds for fee") from None
        except BlockhashNotFound:
            if skip:
                return _first_signature(raw)
            raise _preflight("BlockhashNotFound", "Blockhash not found") from None
        if not skip and self.cluster.landed(signature) is not None:
            # Landing happens only at a slot boundary, so it had landed before this send.
            raise _preflight("AlreadyProcessed", "This transaction has already been processed")
        return signature

    @staticmethod
    def _decode_transaction(data: str, encoding: Any) -> bytes:
        try:
            if encoding == "base64":
                return base64.b64decode(data, validate=True)
            if encoding == "base58":
                return wire.b58decode(data)
        except (ValueError, binascii.Error) as exc:
            raise _invalid(f"invalid {encoding} encoding: {exc}") from None
        raise _invalid(f"unsupported encoding: {encoding}. Supported encodings: base58, base64")

    # --- statuses and transactions -------------------------------------------------------

    def get_signature_statuses(self, params: Params) -> Any:
        signatures = _arg(params, 0, list, "a list of signatures")
        if len(signatures) > MAX_SIGNATURES:
            raise _invalid(f"Too many inputs provided; max {MAX_SIGNATURES}")
        for text in signatures:
            try:
                Signature.from_string(text)
            except (ValueError, TypeError):
                raise _invalid("Invalid param: Invalid") from None
        history = bool(_config(params, 1).get("searchTransactionHistory", False))
        statuses = self.cluster.poll_signature_statuses(signatures)
        values: list[Any] = []
        for text, status in zip(signatures, statuses, strict=True):
            landed = self.cluster.landed(text)
            if status is None or landed is None:
                values.append(None)
                continue
            age = self.cluster.slot - status.slot
            if not history and age > STATUS_CACHE_SLOTS:
                values.append(None)  # out of the status cache: only the ledger knows
                continue
            err = _err_json(landed)
            finalized = status.confirmation_status is Commitment.FINALIZED
            values.append(
                {
                    "slot": status.slot,
                    "confirmations": None if finalized else age,
                    "err": err,
                    "status": {"Ok": None} if err is None else {"Err": err},
                    "confirmationStatus": status.confirmation_status.value,
                }
            )
        return self.context(values)

    def get_signatures_for_address(self, params: Params) -> Any:
        """Newest first, down to (not including) ``until``; at ``confirmed`` (the
        default here) only confirmed transactions. The simulator keeps this history
        only for the addresses it indexes (the launch witnesses, ``Cluster.index``)."""
        address = _pubkey(_arg(params, 0, str, "an account address"))
        config = _config(params, 1)
        limit = config.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise _invalid(f"Invalid params: limit must be in 1..1000, got {limit!r}")
        until = config.get("until")
        processed = config.get("commitment") == Commitment.PROCESSED.value
        found: list[Any] = []
        for notice in reversed(self.cluster.mentions(address)):
            if notice.signature == until:
                break
            (status,) = self.cluster.signature_statuses([notice.signature])
            landed = self.cluster.landed(notice.signature)
            if status is None or landed is None:
                continue
            if status.confirmation_status is Commitment.PROCESSED and not processed:
                continue
            found.append(
                {
                    "signature": notice.signature,
                    "slot": notice.slot,
                    "err": _err_json(landed),
                    "memo": None,
                    "blockTime": GENESIS_UNIX_TIMESTAMP
                    + int(notice.slot * self.cluster.params.slot_seconds),
                    "confirmationStatus": status.confirmation_status.value,
                }
            )
            if len(found) == limit:
                break
        return found

    def get_recent_prioritization_fees(self, params: Params) -> Any:
        accounts = _arg(params, 0, list, "a list of account addresses") if params else []
        if len(accounts) > 128:
            raise _invalid("Too many inputs provided; max 128")
        keys = [_pubkey(a) for a in accounts]
        return [
            {"slot": fee.slot, "prioritizationFee": fee.prioritization_fee}
            for fee in self.cluster.recent_prioritization_fees(keys)
        ]

    def get_transaction(self, params: Params) -> Any:
        signature = _arg(params, 0, str, "a signature")
        config = _config(params, 1)
        commitment = config.get("commitment", Commitment.FINALIZED.value)
        if commitment not in (Commitment.CONFIRMED.value, Commitment.FINALIZED.value):
            raise _invalid("Method does not support commitment below `confirmed`")
        encoding = config.get("encoding", "json")
        if encoding not in ui.TRANSACTION_ENCODINGS:
            raise _invalid(f"encoding {encoding} is not supported by the simulator")
        landed = self.cluster.landed(signature)
        (status,) = self.cluster.signature_statuses([signature])
        if landed is None or status is None:
            return None
        reached = status.confirmation_status
        if reached is Commitment.PROCESSED or (
            commitment == Commitment.FINALIZED.value and reached is not Commitment.FINALIZED
        ):
            return None
        tx = VersionedTransaction.from_bytes(landed.raw)
        legacy = not isinstance(tx.version(), int)  # v0 is 0, legacy an enum
        if not legacy and config.get("maxSupportedTransactionVersion") is None:
            raise RpcFailure(
                wire.UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. Please try "
                'the request again with the following configuration parameter: "'
                'maxSupportedTransactionVersion": 0',
            )
        e = landed.execution
        err = _err_json(landed)
        meta = {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": e.fee,
            "preBalances": list(e.pre_balances),
            "postBalances": list(e.post_balances),
            "innerInstructions": [],
            "logMessages": list(e.logs),
            "preTokenBalances": self._token_balances(e.pre_token_indices, e.pre_token_balances),
            "postTokenBalances": self._token_balances(e.post_token_indices, e.post_token_balances),
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": e.cu_consumed,
        }
        return {
            "slot": landed.slot,
            "blockTime": GENESIS_UNIX_TIMESTAMP
            + int(landed.slot * self.cluster.params.slot_seconds),
            "transaction": ui.encode_transaction(tx, landed.raw, encoding),
            "meta": meta,
            "version": "legacy" if legacy else 0,
        }

    def _token_balances(
        self, indices: Sequence[int], balances: Sequence[TokenBalance]
    ) -> list[dict[str, Any]]:
        return [
            {
                "accountIndex": index,
                "mint": b.mint,
                "owner": b.owner,
                "programId": str(TOKEN_PROGRAM_ID),
                "uiTokenAmount": ui.token_amount(b.amount, self._mint_decimals(b.mint)),
            }
            for index, b in zip(indices, balances, strict=True)
        ]

    def _mint_decimals(self, mint: str) -> int:
        decimals = self._decimals.get(mint)
        if decimals is None:
            data = self.cluster.account(Pubkey.from_string(mint))
            decimals = 0 if data is None else decode_mint(data).decimals
            self._decimals[mint] = decimals
        return decimals

    # --- accounts ------------------------------------------------------------------------

    def _account(self, key: Pubkey, encoding: Any) -> Any:
        info = self.cluster.account_info(key)
        if info is None:
            return None
        lamports, owner, data = info
        if encoding == "base64":
            encoded: Any = [base64.b64encode(data).decode(), "base64"]
        elif encoding in ("base58", "binary"):
            if len(data) > BASE58_ACCOUNT_LIMIT:
                raise _invalid(
                    "Encoded binary (base 58) data should be less than 128 bytes, "
                    "please use Base64 encoding."
                )
            text = wire.b58encode(data)
            encoded = text if encoding == "binary" else [text, "base58"]
        else:
            raise _invalid(f"encoding {encoding} is not supported by the simulator; use base64")
        return {
            "data": encoded,
            "executable": False,
            "lamports": lamports,
            "owner": str(owner),
            "rentEpoch": U64_MAX,
            "space": len(data),
        }

    def get_account_info(self, params: Params) -> Any:
        key = _pubkey(_arg(params, 0, str, "an account address"))
        encoding = _config(params, 1).get("encoding", "binary")
        return self.context(self._account(key, encoding))

    def get_multiple_accounts(self, params: Params) -> Any:
        texts = _arg(params, 0, list, "a list of account addresses")
        if len(texts) > MAX_ACCOUNTS:
            raise _invalid(f"Too many inputs provided; max {MAX_ACCOUNTS}")
        keys = [_pubkey(text) for text in texts]
        encoding = _config(params, 1).get("encoding", "base64")
        return self.context([self._account(key, encoding) for key in keys])

    def get_balance(self, params: Params) -> Any:
        key = _pubkey(_arg(params, 0, str, "an account address"))
        return self.context(self.cluster.balance(key))

    def get_token_account_balance(self, params: Params) -> Any:
        key = _pubkey(_arg(params, 0, str, "a token account address"))
        amount = self.cluster.token_account_balance(key)
        data = self.cluster.account(key)
        if amount is None or data is None:
            raise _invalid("Invalid param: not a Token account")
        mint = str(decode_token_account(data).mint)
        return self.context(ui.token_amount(amount, self._mint_decimals(mint)))

    # --- funding -------------------------------------------------------------------------

    def request_airdrop(self, params: Params) -> Any:
        key = _pubkey(_arg(params, 0, str, "an account address"))
        lamports = _arg(params, 1, int, "lamports")
        if not 0 < lamports <= U64_MAX:
            raise _invalid(f"Invalid params: lamports must be in 1..{U64_MAX}, got {lamports}")
        return self.faucet.airdrop(key, lamports)

    def sim_airdrop_tokens(self, params: Params) -> Any:
        """Non-standard: ``[owner, mint, amount]`` moves ``amount`` base units of
        ``mint`` from the simulator's faucet into the owner's associated token
        account (created if missing) in a transaction; returns its signature."""
        owner = _pubkey(_arg(params, 0, str, "an owner address"))
        mint = _pubkey(_arg(params, 1, str, "a mint address"))
        amount = _arg(params, 2, int, "an amount in base units")
        if not 0 < amount <= U64_MAX:
            raise _invalid(f"Invalid params: amount must be in 1..{U64_MAX}, got {amount}")
        data = self.cluster.account(mint)
        if data is None or self.cluster.ledger.owner_of(mint) != TOKEN_PROGRAM_ID:
            raise _invalid(f"Invalid params: {mint} is not a mint on this cluster")
        return self.faucet.tokens(owner, mint, amount)


def _err_json(landed: Landed) -> Any:
    e = landed.execution
    if e.err is None:
        return None
    return wire.encode_error(e.err, e.failed_instruction or 0)


def _first_signature(raw: bytes) -> str:
    return str(VersionedTransaction.from_bytes(raw).signatures[0])
