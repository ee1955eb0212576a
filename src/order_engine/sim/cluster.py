"""The simulated cluster: slots, blockhashes, the mempool, landing, the status cache.

This object holds all cluster state and knows nothing of asyncio or faults, so
the in-process Chain adapter and a JSON-RPC front end are both thin layers over
it. Time is a slot counter: each slot lasts ``slot_seconds`` of *simulated* time
(the Clock sysvar's ``unix_timestamp`` follows it); who advances it (a ticker
task at ``time_scale > 0``, status polls at ``time_scale == 0``, tests) is the
caller's business.

Per slot, in order: a new blockhash; the congestion regime may switch; the
market moves (background flow and arbitrage land first); pending transactions
whose blockhash is older than 150 slots are dropped; every other pending
transaction lands with a probability that rises with its priority fee and falls
under congestion, highest fee first, and executes at that slot's state.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from solders.hash import Hash
from solders.pubkey import Pubkey

from order_engine.dex.sysvar import CLOCK_SYSVAR_ID, Clock, encode_clock
from order_engine.ports.chain import (
    Blockhash,
    BlockhashNotFound,
    Commitment,
    LogsNotice,
    PrioritizationFee,
    SignatureStatus,
    TransactionRejected,
    TransactionResult,
)
from order_engine.sim.builtins import Env
from order_engine.sim.ledger import Ledger
from order_engine.sim.runtime import (
    INSUFFICIENT_FUNDS_FOR_FEE,
    Execution,
    TxPlan,
    execute,
    prepare,
)

GENESIS_UNIX_TIMESTAMP = 1_735_689_600  # 2025-01-01T00:00:00Z
PRIORITIZATION_FEE_SLOTS = 150  # what a node's prioritization-fee cache holds


@dataclass(frozen=True, slots=True)
class ClusterParams:
    slot_seconds: float = 0.4
    blockhash_validity_slots: int = 150
    confirm_delay_slots: tuple[int, int] = (1, 2)
    finalize_delay_slots: int = 32
    # Landing probability per slot: base + gain * (1 - exp(-cu_price / scale)),
    # multiplied by congestion_factor while the cluster is congested.
    landing_base: float = 0.45
    landing_priority_gain: float = 0.5
    priority_scale_micro_lamports: float = 40_000.0
    congestion_share: float = 0.10  # long-run share of slots in the congested regime
    congestion_mean_slots: float = 50.0  # mean length of a congested spell
    congestion_factor: float = 0.3
    advance_on_poll: bool = False  # time_scale 0: status polls drive the slot clock


@dataclass(slots=True)
class _Pending:
    plan: TxPlan
    blockhash_slot: int
    arrival: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Landed:
    """A transaction that landed: when, how it ran, and the bytes that were sent.

    Kept for every landed transaction (``getTransaction`` and status queries of
    any age), so it holds no more than those answer from: not the decoded plan
    (about 3 KB of keys and instructions, and ``raw`` has it all)."""

    slot: int
    confirm_slot: int
    execution: Execution
    raw: bytes


@dataclass
class Cluster:
    ledger: Ledger
    params: ClusterParams = field(default_factory=ClusterParams)
    seed: int = 0
    slot: int = 0
    congested: bool = False
    executions: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:landing")
        self._blockhashes: dict[Hash, int] = {}
        self._hash_by_slot: dict[int, Hash] = {}
        self._pending: dict[str, _Pending] = {}
        self._landed: dict[str, Landed] = {}
        self._polled_at: dict[str, int] = {}
        self._arrivals = 0
        self._listeners: list[Callable[[Env], None]] = []
        self._before_access: list[Callable[[Sequence[Pubkey]], None]] = []
        # signatureSubscribe: callbacks to run once a signature is confirmed, and
        # the signatures that reach confirmation at each future slot.
        self._watchers: dict[str, list[Callable[[SignatureStatus], None]]] = {}
        self._confirming: dict[int, list[str]] = {}
        self._at_height: dict[int, list[Callable[[], None]]] = {}
        self._settled_at = 0  # the slot by which every landed transaction is confirmed
        # logsSubscribe / getSignaturesForAddress, for the addresses someone follows
        # (``index``): the transactions that named them, in landing order, and the
        # callbacks waiting for the next one.
        self._mentions: dict[Pubkey, list[LogsNotice]] = {}
        self._mention_watchers: dict[Pubkey, list[Callable[[LogsNotice], None]]] = {}
        # getRecentPrioritizationFees: per recent slot, the compute-unit price and
        # account keys of every transaction that landed in it.
        self._slot_fees: deque[tuple[int, list[tuple[int, frozenset[Pubkey]]]]] = deque(
            maxlen=PRIORITIZATION_FEE_SLOTS
        )
        self._new_blockhash()

    # --- time --------------------------------------------------------------------------

    @property
    def unix_timestamp(self) -> int:
        return GENESIS_UNIX_TIMESTAMP + int(self.slot * self.params.slot_seconds)

    def env(self) -> Env:
        return Env(self.slot, self.unix_timestamp)

    def on_slot(self, listener: Callable[[Env], None]) -> None:
        """Run ``listener`` at every new slot, before pending transactions land."""
        self._listeners.append(listener)

    def before_access(self, hook: Callable[[Sequence[Pubkey]], None]) -> None:
        """Run ``hook`` with the account keys about to be read or executed against,
        before they are (the market brings those pools up to date: market.py)."""
        self._before_access.append(hook)

    def _accessing(self, keys: Sequence[Pubkey]) -> None:
        for hook in self._before_access:
            hook(keys)

    def advance_slot(self) -> None:
        self.slot += 1
        self._new_blockhash()
        self._switch_regime()
        env = self.env()
        for listener in self._listeners:
            listener(env)
        self._land(env)
        self._notify(self._confirming.pop(self.slot, ()))
        for callback in self._at_height.pop(self.slot, ()):
            callback()

    def advance_slots(self, count: int) -> None:
        for _ in range(count):
            self.advance_slot()

    def _new_blockhash(self) -> None:
        digest = hashlib.sha256(f"{self.seed}:blockhash:{self.slot}".encode()).digest()
        blockhash = Hash(digest)
        self._blockhashes[blockhash] = self.slot
        self._hash_by_slot[self.slot] = blockhash
        stale = self.slot - 2 * self.params.blockhash_validity_slots
        old = self._hash_by_slot.pop(stale, None)
        if old is not None:
            self._blockhashes.pop(old, None)

    def _switch_regime(self) -> None:
        p = self.params
        leave = 1.0 / p.congestion_mean_slots
        enter = leave * p.congestion_share / max(1e-9, 1.0 - p.congestion_share)
        if self._rng.random() < (leave if self.congested else enter):
            self.congested = not self.congested

    # --- blockhashes -------------------------------------------------------------------

    def latest_blockhash(self) -> Blockhash:
        return Blockhash(
            str(self._hash_by_slot[self.slot]),
            self.slot + self.params.blockhash_validity_slots,
        )

    def block_height(self) -> int:
        """Block height equals the slot: the simulated leader never skips a slot."""
        return self.slot

    def _blockhash_slot(self, blockhash: Hash) -> int | None:
        slot = self._blockhashes.get(blockhash)
        if slot is None or self.slot - slot > self.params.blockhash_validity_slots:
            return None
        return slot

    # --- sending -----------------------------------------------------------------------

    def send(self, raw: bytes) -> str:
        """Accept signed bytes into the mempool; returns the signature.

        Bytes already landed or pending are accepted again and do nothing (the
        status cache). Raises ``TransactionRejected`` (malformed, bad signature,
        payer cannot pay the fee) or ``BlockhashNotFound``.
        """
        plan = prepare(raw)
        if plan.signature in self._landed or plan.signature in self._pending:
            return plan.signature
        blockhash_slot = self._blockhash_slot(plan.blockhash)
        if blockhash_slot is None:
            raise BlockhashNotFound(
                f"blockhash {plan.blockhash} not found: unknown or older than "
                f"{self.params.blockhash_validity_slots} slots (current slot {self.slot})"
            )
        if self.ledger.balance(plan.payer) < plan.fee:
            raise TransactionRejected(
                f"transaction rejected: InsufficientFundsForFee: payer {plan.payer} has "
                f"{self.ledger.balance(plan.payer)} lamports, fee is {plan.fee}",
                reason=INSUFFICIENT_FUNDS_FOR_FEE,
            )
        self._arrivals += 1
        self._pending[plan.signature] = _Pending(plan, blockhash_slot, self._arrivals, raw)
        return plan.signature

    def landing_probability(self, cu_price: int) -> float:
        p = self.params
        gain = 1.0 - math.exp(-cu_price / p.priority_scale_micro_lamports)
        chance = p.landing_base + p.landing_priority_gain * gain
        return min(1.0, chance * (p.congestion_factor if self.congested else 1.0))

    def _land(self, env: Env) -> None:
        limit = self.params.blockhash_validity_slots
        # The leader schedules by fee: the highest compute-unit price runs first, so
        # of two swaps on one pool in one slot the higher bidder gets the better price.
        queue = sorted(self._pending.values(), key=lambda t: (-t.plan.cu_price, t.arrival))
        for pending in queue:
            signature = pending.plan.signature
            if env.slot - pending.blockhash_slot > limit:
                del self._pending[signature]  # expired: it can never land now
                continue
            if self._rng.random() >= self.landing_probability(pending.plan.cu_price):
                continue
            self._accessing(pending.plan.keys)
            execution = execute(self.ledger, pending.plan, env)
            del self._pending[signature]
            if execution is None:
                continue  # the payer can no longer pay the fee: dropped by the leader
            self._record_landed(env, pending.plan, pending.raw, execution)

    def _record_landed(self, env: Env, plan: TxPlan, raw: bytes, execution: Execution) -> Landed:
        signature = plan.signature
        low, high = self.params.confirm_delay_slots
        delay = self._rng.randint(low, high)
        landed = Landed(env.slot, env.slot + delay, execution, raw)
        self._landed[signature] = landed
        self.executions[signature] += 1
        self._settled_at = max(self._settled_at, env.slot + delay)
        if signature in self._watchers:
            self._confirming.setdefault(env.slot + delay, []).append(signature)
        if not self._slot_fees or self._slot_fees[-1][0] != env.slot:
            self._slot_fees.append((env.slot, []))
        self._slot_fees[-1][1].append((plan.cu_price, frozenset(plan.keys)))
        self._announce(plan, landed)
        return landed

    def land_now(self, raw: bytes) -> Landed:
        """Execute ``raw`` at once, in the current slot, as the leader's own
        transaction (the simulator's launches: the caller learns the slot its pool
        was created in). Same checks as ``send``; the status cache applies."""
        plan = prepare(raw)
        done = self._landed.get(plan.signature)
        if done is not None:
            return done
        if self._blockhash_slot(plan.blockhash) is None:
            raise BlockhashNotFound(f"blockhash {plan.blockhash} not found")
        self._accessing(plan.keys)
        execution = execute(self.ledger, plan, self.env())
        if execution is None:
            raise TransactionRejected(
                f"transaction rejected: InsufficientFundsForFee: payer {plan.payer} cannot "
                f"pay {plan.fee} lamports",
                reason=INSUFFICIENT_FUNDS_FOR_FEE,
            )
        return self._record_landed(self.env(), plan, raw, execution)

    # --- logsSubscribe and prioritization fees -------------------------------------------

    def index(self, address: Pubkey) -> None:
        """Keep, from now on, the transactions that name ``address`` (what
        ``mentions`` and ``getSignaturesForAddress`` answer from)."""
        self._mentions.setdefault(address, [])

    def _announce(self, plan: TxPlan, landed: Landed) -> None:
        if not self._mentions:
            return
        notice: LogsNotice | None = None
        for key in plan.keys:
            seen = self._mentions.get(key)
            if seen is None:
                continue
            e = landed.execution
            notice = notice or LogsNotice(plan.signature, landed.slot, e.err, e.logs)
            seen.append(notice)
            for callback in self._mention_watchers.pop(key, ()):
                callback(notice)

    def mentions(self, address: Pubkey, after: str | None = None) -> list[LogsNotice]:
        """Landed transactions that named ``address`` (an indexed one), oldest first;
        with ``after``, only those that landed after that signature."""
        seen = self._mentions.get(address, [])
        if after is None:
            return list(seen)
        for at in range(len(seen) - 1, -1, -1):
            if seen[at].signature == after:
                return seen[at + 1 :]
        return list(seen)

    def when_mentioned(self, address: Pubkey, callback: Callable[[LogsNotice], None]) -> None:
        """Call ``callback`` with the next transaction naming ``address`` (logsSubscribe)."""
        self.index(address)
        self._mention_watchers.setdefault(address, []).append(callback)

    def forget_mention(self, address: Pubkey, callback: Callable[[LogsNotice], None]) -> None:
        callbacks = self._mention_watchers.get(address)
        if callbacks is not None and callback in callbacks:
            callbacks.remove(callback)

    def recent_prioritization_fees(
        self, accounts: Iterable[Pubkey] = ()
    ) -> list[PrioritizationFee]:
        """``getRecentPrioritizationFees``: per recent slot with landed transactions,
        the lowest compute-unit price that landed, or, given ``accounts``, the
        lowest that landed while naming each of them (the highest of those): what a
        transaction locking all of them had to pay in that slot."""
        wanted = frozenset(accounts)
        fees: list[PrioritizationFee] = []
        for slot, landed in self._slot_fees:
            block_min = min(price for price, _ in landed)
            per_account = [
                min((price for price, keys in landed if key in keys), default=0) for key in wanted
            ]
            fees.append(PrioritizationFee(slot, max([block_min, *per_account])))
        return fees

    # --- subscriptions -----------------------------------------------------------------

    def watch(self, signature: str, callback: Callable[[SignatureStatus], None]) -> None:
        """Call ``callback`` with the status once ``signature`` is confirmed (at once if
        it already is), as ``signatureSubscribe`` at confirmed commitment notifies."""
        if self._is_confirmed(signature):
            status = self._status(signature)
            assert status is not None  # noqa: S101 - confirmed implies landed
            callback(status)
            return
        self._watchers.setdefault(signature, []).append(callback)
        landed = self._landed.get(signature)
        if landed is not None:  # landed, not yet confirmed: due at its confirm slot
            due = self._confirming.setdefault(landed.confirm_slot, [])
            if signature not in due:
                due.append(signature)

    def when_height_passes(self, height: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` at the first slot whose block height exceeds ``height``
        (``slotSubscribe``, for a client tracking its blockhash's expiry)."""
        if self.block_height() > height:
            callback()
        else:
            self._at_height.setdefault(height + 1, []).append(callback)

    def forget_height(self, height: int, callback: Callable[[], None]) -> None:
        callbacks = self._at_height.get(height + 1)
        if callbacks is not None and callback in callbacks:
            callbacks.remove(callback)
            if not callbacks:
                del self._at_height[height + 1]

    def unwatch(self, signature: str, callback: Callable[[SignatureStatus], None]) -> None:
        callbacks = self._watchers.get(signature)
        if callbacks is not None and callback in callbacks:
            callbacks.remove(callback)
            if not callbacks:
                del self._watchers[signature]

    @property
    def has_work(self) -> bool:
        """Whether a new slot would change anything anyone waits for: a pending
        transaction, a landed one not yet confirmed (a polling client waits for
        that too), a watched signature or height."""
        return bool(
            self._pending or self._watchers or self._at_height or self.slot < self._settled_at
        )

    def _notify(self, signatures: Sequence[str]) -> None:
        for signature in signatures:
            status = self._status(signature)
            callbacks = self._watchers.pop(signature, ())
            if status is None:
                continue
            for callback in callbacks:
                callback(status)

    # --- reading -----------------------------------------------------------------------

    def _status(self, signature: str) -> SignatureStatus | None:
        landed = self._landed.get(signature)
        if landed is None:
            return None
        if self.slot < landed.confirm_slot:
            commitment = Commitment.PROCESSED
        elif self.slot < landed.slot + self.params.finalize_delay_slots:
            commitment = Commitment.CONFIRMED
        else:
            commitment = Commitment.FINALIZED
        return SignatureStatus(landed.slot, commitment, landed.execution.err)

    def signature_statuses(self, signatures: Sequence[str]) -> list[SignatureStatus | None]:
        return [self._status(s) for s in signatures]

    def poll_signature_statuses(self, signatures: Sequence[str]) -> list[SignatureStatus | None]:
        """``getSignatureStatuses`` as a client sees it.

        With ``advance_on_poll`` (time scale 0) a poll drives the clock: when it
        asks again, within the same slot, about a signature that is not yet
        confirmed, one slot passes. Many clients polling concurrently therefore
        advance the clock about once per round of polls, as wall time would,
        instead of once per poll (which would expire other clients' blockhashes).
        """
        if self.params.advance_on_poll:
            waiting = [s for s in signatures if not self._is_confirmed(s)]
            if any(self._polled_at.get(s) == self.slot for s in waiting):
                self.advance_slot()
            for s in waiting:
                self._polled_at[s] = self.slot
            for s in signatures:
                if s not in waiting:
                    self._polled_at.pop(s, None)
        return self.signature_statuses(signatures)

    def _is_confirmed(self, signature: str) -> bool:
        landed = self._landed.get(signature)
        return landed is not None and self.slot >= landed.confirm_slot

    def transaction(self, signature: str) -> TransactionResult | None:
        """``getTransaction`` at confirmed commitment: ``None`` until then."""
        landed = self._landed.get(signature)
        if landed is None or self.slot < landed.confirm_slot:
            return None
        e = landed.execution
        return TransactionResult(
            signature=signature,
            slot=landed.slot,
            fee=e.fee,
            err=e.err,
            pre_token_balances=e.pre_token_balances,
            post_token_balances=e.post_token_balances,
            pre_lamports=e.pre_lamports,
            post_lamports=e.post_lamports,
            logs=e.logs,
        )

    def is_pending(self, signature: str) -> bool:
        return signature in self._pending

    def landed(self, signature: str) -> Landed | None:
        """The landed transaction under ``signature`` at any commitment (for an RPC
        front end's ``getTransaction``), ``None`` if it has not landed."""
        return self._landed.get(signature)

    def account(self, key: Pubkey) -> bytes | None:
        self._accessing((key,))
        return self._account(key)

    def _account(self, key: Pubkey) -> bytes | None:
        if key == CLOCK_SYSVAR_ID:
            return encode_clock(Clock(self.slot, self.unix_timestamp, GENESIS_UNIX_TIMESTAMP))
        return self.ledger.account_data(key)

    def accounts(self, keys: Sequence[str]) -> list[bytes | None]:
        """``getMultipleAccounts``: raw data, ``None`` for accounts that do not exist."""
        pubkeys = [Pubkey.from_string(k) for k in keys]
        self._accessing(pubkeys)
        return [self._account(k) for k in pubkeys]

    def account_info(self, key: Pubkey) -> tuple[int, Pubkey, bytes] | None:
        """``getAccountInfo``: (lamports, owner program, data), ``None`` if absent."""
        data = self.account(key)
        if data is None:
            return None
        if key == CLOCK_SYSVAR_ID:
            return (
                1_169_280,
                Pubkey.from_string("Sysvar1111111111111111111111111111111111111"),
                data,
            )
        owner = self.ledger.owner_of(key)
        return self.ledger.balance(key), owner or Pubkey.default(), data

    def balance(self, key: Pubkey) -> int:
        """``getBalance`` in lamports."""
        self._accessing((key,))
        return self.ledger.balance(key)

    def token_account_balance(self, key: Pubkey) -> int | None:
        """``getTokenAccountBalance`` in base units; ``None`` if not a token account."""
        self._accessing((key,))
        account = self.ledger.tokens.get(key)
        return None if account is None else account.amount
