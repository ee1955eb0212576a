"""Chain port: the few Solana JSON-RPC calls the engine needs.

Shaped after the real RPC (``getLatestBlockhash``, ``sendTransaction``,
``getSignatureStatuses``, ``getBlockHeight``, ``getTransaction``,
``getMultipleAccounts``) so that the in-process simulator, the simulator
behind JSON-RPC, and a real cluster are interchangeable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeGuard

from order_engine.domain.errors import ErrorCode, PermanentError, TransientError


@dataclass(frozen=True, slots=True)
class Blockhash:
    blockhash: str  # base58
    last_valid_block_height: int


class Commitment(StrEnum):
    PROCESSED = "processed"
    CONFIRMED = "confirmed"
    FINALIZED = "finalized"


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    slot: int
    confirmation_status: Commitment
    err: str | None = None  # program error name, e.g. "ExceededSlippage"; None = success


def is_confirmed(status: SignatureStatus | None) -> TypeGuard[SignatureStatus]:
    """Whether a status proves the transaction landed at confirmed commitment or beyond."""
    return status is not None and status.confirmation_status is not Commitment.PROCESSED


@dataclass(frozen=True, slots=True)
class TokenBalance:
    owner: str
    mint: str
    amount: int  # base units


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """What ``getTransaction`` reports: enough to compute the realised fill."""

    signature: str
    slot: int
    fee: int  # lamports charged to the fee payer, success or not
    err: str | None
    pre_token_balances: tuple[TokenBalance, ...] = field(default=())
    post_token_balances: tuple[TokenBalance, ...] = field(default=())
    pre_lamports: int = 0  # fee payer's SOL before and after
    post_lamports: int = 0
    logs: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class LogsNotice:
    """A landed transaction that named a followed address, as ``logsSubscribe``
    (``mentions``) notifies it: signature, slot, error name and program logs."""

    signature: str
    slot: int
    err: str | None
    logs: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class PrioritizationFee:
    """One entry of ``getRecentPrioritizationFees``: micro-lamports per compute unit."""

    slot: int
    prioritization_fee: int


class BlockhashNotFound(TransientError):
    """The transaction's blockhash is unknown or older than the validity window."""

    default_code = ErrorCode.BLOCKHASH_EXPIRED


class SendTimeout(TransientError):
    """``sendTransaction`` timed out: the transaction may or may not have landed."""

    default_code = ErrorCode.RPC_UNAVAILABLE


class RateLimited(TransientError):
    default_code = ErrorCode.RATE_LIMITED


class TransactionRejected(PermanentError):
    """The cluster refused the transaction outright (bad signature, malformed)."""

    default_code = ErrorCode.TRANSACTION_FAILED


class Chain(Protocol):
    async def get_latest_blockhash(self) -> Blockhash: ...

    async def get_block_height(self) -> int: ...

    async def send_transaction(self, raw: bytes) -> str:
        """Broadcast signed bytes; returns the signature (base58).

        Sending bytes the cluster already processed is not an error: it
        returns the same signature and executes nothing (status cache).
        Raises ``SendTimeout`` (ambiguous), ``BlockhashNotFound``,
        ``RateLimited`` or ``TransactionRejected``.
        """
        ...

    async def get_signature_statuses(
        self, signatures: Sequence[str]
    ) -> list[SignatureStatus | None]: ...

    async def wait_for_signature(
        self, signature: str, timeout_s: float, *, expires_after_height: int | None = None
    ) -> SignatureStatus | None:
        """The signature's status as soon as it is confirmed (``signatureSubscribe``),
        or, after at most ``timeout_s`` (or as soon as the block height passes
        ``expires_after_height``), whatever status it has (``None``: unseen).

        A client that can only poll polls once and waits ``timeout_s``; the
        result is then the status seen at the start of the wait.
        """
        ...

    async def wait_for_slot(self, after: int, timeout_s: float) -> int:
        """The current slot as soon as it is past ``after`` (``slotSubscribe``: a
        trigger service re-reads pool state once per slot, not per timer tick), or,
        after at most ``timeout_s``, whatever slot it is. Pool state changes only
        at slots, so each new slot is the moment to look again.

        A client that can only poll polls ``getSlot`` about once a slot.
        """
        ...

    async def wait_for_block_height(self, height: int, timeout_s: float) -> int:
        """The block height as soon as it exceeds ``height`` (a client that needs the
        cluster to reach a point: a pool's open time), or after at most
        ``timeout_s``, whatever it is then. Unlike ``wait_for_slot`` this counts
        as work for a simulated clock that runs only while someone waits for it.
        A polling client polls ``getBlockHeight``."""
        ...

    async def get_transaction(self, signature: str) -> TransactionResult | None: ...

    async def get_multiple_accounts(self, pubkeys: Sequence[str]) -> list[bytes | None]:
        """Raw account data, ``None`` for accounts that do not exist."""
        ...

    async def get_recent_prioritization_fees(
        self, accounts: Sequence[str] = ()
    ) -> list[PrioritizationFee]:
        """Per recent slot, the compute-unit price a transaction locking ``accounts``
        had to pay (``getRecentPrioritizationFees``), oldest first."""
        ...

    async def logs_mentioning(
        self, address: str, *, after: str | None, timeout_s: float
    ) -> list[LogsNotice]:
        """Transactions that landed naming ``address`` after the one signed ``after``
        (all of them with ``None``), oldest first; when there are none yet, waits up
        to ``timeout_s`` for the next (``logsSubscribe`` with ``mentions``). A
        client that can only poll asks once (``getSignaturesForAddress`` with
        ``until``, then ``getTransaction`` for the logs) and waits ``timeout_s``."""
        ...
