"""``RpcChain``: the Chain port over Solana JSON-RPC (the chain server, devnet, ...).

A thin aiohttp client (docs/decisions/0003-json-rpc-client.md says why not
solana-py's ``AsyncClient``): one pooled session, ``orjson`` both ways, one
HTTP request per port call, base64 everywhere.

How answers become the port's errors:

* HTTP 429, or a JSON-RPC error with code 429 → ``RateLimited``.
* ``sendTransaction`` (the only call that changes anything):
  ``-32002`` with ``data.err`` ``BlockhashNotFound`` → ``BlockhashNotFound``;
  ``AlreadyProcessed`` → the signature (not an error, per the port);
  any other preflight error, ``-32003`` (signature verification) or ``-32602``
  (bytes that are not a transaction) → ``TransactionRejected``, carrying the
  error name as ``details["reason"]``; ``-32005`` (node unhealthy, checked
  before forwarding) → ``RpcUnavailable``. Everything that leaves the outcome
  open — a timeout, HTTP 5xx, a connection error, an answer that is not
  JSON-RPC or an error code not listed here — → ``SendTimeout``: the
  transaction may or may not have been forwarded, and only its signature
  status can tell.
* Any other call: a timeout, HTTP 5xx, a connection error or an unexpected
  answer → ``RpcUnavailable`` (``TransientError``, code ``rpc_unavailable``).

Program errors come back as names (``ExceededSlippage``), decoded by
``wire.decode_error`` the same way from a status and from ``getTransaction``.
Reads ask for ``confirmed`` commitment; statuses search the transaction history,
so that a worker resuming an old order still finds a transaction that landed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from order_engine.adapters.rpc import wire
from order_engine.domain.errors import ErrorCode, TransientError
from order_engine.ports.chain import (
    Blockhash,
    BlockhashNotFound,
    Commitment,
    LogsNotice,
    PrioritizationFee,
    RateLimited,
    SendTimeout,
    SignatureStatus,
    TokenBalance,
    TransactionRejected,
    TransactionResult,
    is_confirmed,
)

CONFIRMED = {"commitment": "confirmed"}
MAX_SIGNATURES_PER_CALL = 256
SLOT_POLL_S = 0.05  # getSlot at most this often while waiting for the next slot
MAX_ACCOUNTS_PER_CALL = 100
_HEADERS = {"Content-Type": "application/json"}
_REJECTED_CODES = frozenset({wire.SIGNATURE_VERIFICATION_FAILURE, wire.INVALID_PARAMS, -32013})


class RpcUnavailable(TransientError):
    """The RPC node could not be reached or gave no usable answer; try again later."""

    default_code = ErrorCode.RPC_UNAVAILABLE


class JsonRpcError(Exception):
    """A JSON-RPC error object, before it is mapped onto the port's errors."""

    def __init__(self, method: str, code: int, message: str, data: Any) -> None:
        super().__init__(f"{method}: JSON-RPC error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class NoAnswer(Exception):
    """No JSON-RPC answer: a timeout, a connection error, HTTP 5xx or garbage."""


class RpcChain:
    """Implements ``order_engine.ports.chain.Chain`` over JSON-RPC at ``url``."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = 256,
    ) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._ids = itertools.count(1)

    async def __aenter__(self) -> RpcChain:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    # --- the wire ------------------------------------------------------------------------

    async def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; raises ``RateLimited``, ``JsonRpcError`` or ``NoAnswer``."""
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        try:
            async with self._client().post(
                self.url, data=body, headers=_HEADERS, timeout=self._timeout
            ) as response:
                status = response.status
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise NoAnswer(f"{method}: {type(exc).__name__}: {exc}") from exc
        if status == 429:
            raise RateLimited(f"{method}: HTTP 429 Too Many Requests from {self.url}")
        if status != 200:
            raise NoAnswer(f"{method}: HTTP {status} from {self.url}: {raw[:200]!r}")
        try:
            reply = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise NoAnswer(f"{method}: expected JSON-RPC, got {raw[:200]!r}") from exc
        error = reply.get("error") if isinstance(reply, dict) else None
        if error is not None:
            code = int(error.get("code", 0))
            if code == wire.TOO_MANY_REQUESTS:
                raise RateLimited(f"{method}: {error.get('message')}")
            raise JsonRpcError(method, code, str(error.get("message", "")), error.get("data"))
        if not isinstance(reply, dict) or "result" not in reply:
            raise NoAnswer(f"{method}: expected a JSON-RPC result, got {raw[:200]!r}")
        return reply["result"]

    async def read(self, method: str, params: list[Any]) -> Any:
        """A call that changes nothing: every failure but a rate limit is ``RpcUnavailable``."""
        try:
            return await self.call(method, params)
        except (JsonRpcError, NoAnswer) as exc:
            raise RpcUnavailable(str(exc)) from exc

    # --- the Chain port ------------------------------------------------------------------

    async def get_latest_blockhash(self) -> Blockhash:
        value = (await self.read("getLatestBlockhash", [CONFIRMED]))["value"]
        return Blockhash(str(value["blockhash"]), int(value["lastValidBlockHeight"]))

    async def get_block_height(self) -> int:
        return int(await self.read("getBlockHeight", [CONFIRMED]))

    async def send_transaction(self, raw: bytes) -> str:
        config = {"encoding": "base64", "preflightCommitment": "confirmed"}
        try:
            return str(await self.call("sendTransaction", [base64.b64encode(raw).decode(), config]))
        except NoAnswer as exc:
            raise SendTimeout(
                f"sendTransaction: no answer ({exc}); the transaction may or may not have "
                "reached the leader"
            ) from exc
        except JsonRpcError as exc:
            return self._refused(raw, exc)

    @staticmethod
    def _refused(raw: bytes, exc: JsonRpcError) -> str:
        if exc.code == wire.PREFLIGHT_FAILURE:
            data = exc.data if isinstance(exc.data, dict) else {}
            logs = tuple(data.get("logs") or ())
            name = wire.decode_error(data.get("err"), logs)
            if name == "AlreadyProcessed":
                return str(VersionedTransaction.from_bytes(raw).signatures[0])
            if name == "BlockhashNotFound":
                raise BlockhashNotFound(f"sendTransaction: {exc.message}") from exc
            raise TransactionRejected(f"sendTransaction: {exc.message}", reason=name) from exc
        if exc.code in _REJECTED_CODES:
            raise TransactionRejected(
                f"sendTransaction: {exc.message}", reason=str(exc.code)
            ) from exc
        if exc.code == wire.NODE_UNHEALTHY:
            raise RpcUnavailable(f"sendTransaction not forwarded: {exc.message}") from exc
        raise SendTimeout(
            f"sendTransaction: unexpected answer {exc.code} {exc.message!r}; the transaction "
            "may or may not have been forwarded"
        ) from exc

    async def get_signature_statuses(
        self, signatures: Sequence[str]
    ) -> list[SignatureStatus | None]:
        statuses: list[SignatureStatus | None] = []
        for at in range(0, len(signatures), MAX_SIGNATURES_PER_CALL):
            chunk = list(signatures[at : at + MAX_SIGNATURES_PER_CALL])
            result = await self.read(
                "getSignatureStatuses", [chunk, {"searchTransactionHistory": True}]
            )
            statuses += [_status(value) for value in result["value"]]
        return statuses

    async def wait_for_signature(
        self, signature: str, timeout_s: float, *, expires_after_height: int | None = None
    ) -> SignatureStatus | None:
        # Polling, as over HTTP JSON-RPC a client can: one look, then the wait
        # (the caller checks the block height against the expiry after each).
        del expires_after_height
        (status,) = await self.get_signature_statuses([signature])
        if timeout_s > 0 and not is_confirmed(status):
            await asyncio.sleep(timeout_s)
        return status

    async def wait_for_slot(self, after: int, timeout_s: float) -> int:
        # Polling getSlot (HTTP JSON-RPC has no slotSubscribe): a slot is 400 ms at
        # time scale 1, so a poll every SLOT_POLL_S sees each one within an eighth of it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        while True:
            slot = int(await self.read("getSlot", [CONFIRMED]))
            left = deadline - loop.time()
            if slot > after or left <= 0:
                return slot
            await asyncio.sleep(min(left, SLOT_POLL_S))

    async def wait_for_block_height(self, height: int, timeout_s: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        while True:
            current = await self.get_block_height()
            left = deadline - loop.time()
            if current > height or left <= 0:
                return current
            await asyncio.sleep(min(left, SLOT_POLL_S))

    async def get_transaction(self, signature: str) -> TransactionResult | None:
        config = {"encoding": "base64", "maxSupportedTransactionVersion": 0, **CONFIRMED}
        result = await self.read("getTransaction", [signature, config])
        if result is None:
            return None
        try:
            return _transaction(signature, result)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise RpcUnavailable(f"getTransaction {signature}: unexpected result: {exc!r}") from exc

    async def get_multiple_accounts(self, pubkeys: Sequence[str]) -> list[bytes | None]:
        datas: list[bytes | None] = []
        config = {"encoding": "base64", **CONFIRMED}
        for at in range(0, len(pubkeys), MAX_ACCOUNTS_PER_CALL):
            chunk = list(pubkeys[at : at + MAX_ACCOUNTS_PER_CALL])
            result = await self.read("getMultipleAccounts", [chunk, config])
            try:
                datas += [
                    None if a is None else base64.b64decode(a["data"][0]) for a in result["value"]
                ]
            except (KeyError, TypeError, binascii.Error) as exc:
                raise RpcUnavailable(f"getMultipleAccounts: unexpected result: {exc!r}") from exc
        return datas

    async def get_recent_prioritization_fees(
        self, accounts: Sequence[str] = ()
    ) -> list[PrioritizationFee]:
        result = await self.read("getRecentPrioritizationFees", [list(accounts)])
        try:
            fees = [PrioritizationFee(int(f["slot"]), int(f["prioritizationFee"])) for f in result]
        except (KeyError, TypeError, ValueError) as exc:
            raise RpcUnavailable(
                f"getRecentPrioritizationFees: unexpected result: {exc!r}"
            ) from exc
        return sorted(fees, key=lambda f: f.slot)

    async def logs_mentioning(
        self, address: str, *, after: str | None, timeout_s: float
    ) -> list[LogsNotice]:
        # Over HTTP there is no subscription: the signatures since ``after`` (newest
        # first, so reversed), then each one's logs. A transaction is listed once it
        # is confirmed, when getTransaction can return it.
        config: dict[str, Any] = {**CONFIRMED, "limit": 1000}
        if after is not None:
            config["until"] = after
        listed = await self.read("getSignaturesForAddress", [address, config])
        found: list[LogsNotice] = []
        for entry in reversed(listed):
            signature = str(entry["signature"])
            result = await self.get_transaction(signature)
            if result is None:
                break  # not retrievable yet: the next look starts here again
            found.append(LogsNotice(signature, result.slot, result.err, result.logs))
        if not found and timeout_s > 0:
            await asyncio.sleep(timeout_s)
        return found

    # --- beyond the port: funding and identification --------------------------------------

    async def get_version(self) -> dict[str, Any]:
        return dict(await self.read("getVersion", []))

    async def get_balance(self, owner: Pubkey) -> int:
        return int((await self.read("getBalance", [str(owner), CONFIRMED]))["value"])

    async def get_token_account_balance(self, account: Pubkey) -> int | None:
        """Base units held, ``None`` when ``account`` is not a token account (yet)."""
        try:
            result = await self.call("getTokenAccountBalance", [str(account), CONFIRMED])
        except JsonRpcError as exc:
            if exc.code == wire.INVALID_PARAMS:
                return None
            raise RpcUnavailable(str(exc)) from exc
        except NoAnswer as exc:
            raise RpcUnavailable(str(exc)) from exc
        return int(result["value"]["amount"])

    async def request_airdrop(self, owner: Pubkey, lamports: int) -> str:
        return str(await self.read("requestAirdrop", [str(owner), lamports]))

    async def sim_launch(self, method: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The chain process's ``simCreateToken`` / ``simCreatePool``; a refusal is a
        ``ValueError`` with the chain's message."""
        try:
            return dict(await self.call(method, [spec]))
        except JsonRpcError as exc:
            if exc.code == wire.INVALID_PARAMS:
                raise ValueError(exc.message) from None
            raise RpcUnavailable(str(exc)) from exc
        except NoAnswer as exc:
            raise RpcUnavailable(str(exc)) from exc

    async def sim_airdrop_tokens(self, owner: Pubkey, mint: str, amount: int) -> str:
        """The simulator's non-standard token faucet (``simAirdropTokens``)."""
        return str(await self.read("simAirdropTokens", [str(owner), mint, amount]))


def _status(value: Any) -> SignatureStatus | None:
    if value is None:
        return None
    commitment = value.get("confirmationStatus")
    if commitment is None:  # nodes before confirmationStatus existed
        commitment = "finalized" if value.get("confirmations") is None else "processed"
    err = value.get("err")
    return SignatureStatus(
        int(value["slot"]),
        Commitment(commitment),
        None if err is None else wire.decode_error(err),
    )


def _token_balances(items: Any) -> tuple[TokenBalance, ...]:
    return tuple(
        TokenBalance(str(b.get("owner", "")), str(b["mint"]), int(b["uiTokenAmount"]["amount"]))
        for b in items or ()
    )


def _transaction(signature: str, result: dict[str, Any]) -> TransactionResult:
    meta = result["meta"]
    logs = tuple(str(line) for line in meta.get("logMessages") or ())
    err = meta.get("err")
    return TransactionResult(
        signature=signature,
        slot=int(result["slot"]),
        fee=int(meta["fee"]),
        err=None if err is None else wire.decode_error(err, logs),
        pre_token_balances=_token_balances(meta.get("preTokenBalances")),
        post_token_balances=_token_balances(meta.get("postTokenBalances")),
        pre_lamports=int(meta["preBalances"][0]),  # account 0 is the fee payer
        post_lamports=int(meta["postBalances"][0]),
        logs=logs,
    )


async def wait_until_settled(
    chain: RpcChain, signatures: Sequence[str], *, expires_after_height: int, poll_s: float
) -> dict[str, SignatureStatus | None]:
    """Poll until every signature is confirmed, or until the block height passes
    ``expires_after_height`` (after which a transaction not seen never lands);
    ``None`` for those that did not land."""
    waiting = list(signatures)
    settled: dict[str, SignatureStatus | None] = {}
    expired = False
    while waiting:
        statuses = await chain.get_signature_statuses(waiting)
        for signature, status in zip(list(waiting), statuses, strict=True):
            landed = status is not None and (
                expired or status.confirmation_status is not Commitment.PROCESSED
            )
            if landed or expired:
                settled[signature] = status
                waiting.remove(signature)
        if waiting:
            # Checked after the poll: one more poll follows the expiry, so a
            # transaction that landed in the last valid block is still seen.
            expired = await chain.get_block_height() > expires_after_height
            if not expired:
                await asyncio.sleep(poll_s)
    return settled
