"""The invariants every fault scenario ends with, checked from outside the engine.

* From the database (plain SQL through asyncpg, or sqlite3 for an embedded
  engine's file, not the engine's repository):
  every accepted order is stored and reached exactly one terminal state, which
  is its last event; its event seqs are 1..n without a gap.
* From the chain process (raw JSON-RPC, not the engine's ``RpcChain``): of all
  the transactions an order ever signed (every ``submitted`` event's
  ``txHash``), exactly one executed (landed without error) if the order is
  confirmed, and none if it failed; the confirmed one's token balance change
  for the wallet is the recorded fill; and the wallet's USDC balance grew by
  exactly the sum of the recorded fills, so no swap executed that the engine
  did not record once.
* From each WebSocket subscriber: the events it received are the stored ones,
  in order, each once, ending with the terminal event.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from solders.pubkey import Pubkey

from order_engine.dex.spl import associated_token_address
from tests.faults.procs import eventually, rpc

TERMINAL = frozenset({"confirmed", "failed"})
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    status: str
    details: dict[str, Any]


@dataclass
class StoredOrder:
    id: str
    status: str
    seq: int
    input_mint: str
    output_mint: str
    fill: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    events: list[StoredEvent] = field(default_factory=list)

    @property
    def signatures(self) -> list[str]:
        """Every transaction this order signed, in order."""
        return [e.details["txHash"] for e in self.events if e.status == "submitted"]


def plain_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def sqlite_path(database_url: str) -> str | None:
    """The file of an embedded engine's ``sqlite+aiosqlite:///`` URL; ``None`` for PostgreSQL."""
    return database_url.split(":///", 1)[1] if database_url.startswith("sqlite") else None


def sqlite_rows(path: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows read beside a running engine (WAL: a reader takes no lock it waits on);
    ids come back as the canonical UUID text PostgreSQL's ``::text`` gives."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()
    for row in rows:
        for name in ("id", "order_id"):
            if isinstance(row.get(name), str):
                row[name] = str(uuid.UUID(row[name]))
    return rows


async def _fetch(database_url: str, pg_sql: str, sqlite_sql: str) -> list[Any]:
    path = sqlite_path(database_url)
    if path is not None:
        return sqlite_rows(path, sqlite_sql)
    conn = await asyncpg.connect(plain_url(database_url), timeout=10)
    try:
        return list(await conn.fetch(pg_sql))
    finally:
        await conn.close()


async def load_orders(database_url: str) -> dict[str, StoredOrder]:
    columns = "status, seq, input_mint, output_mint, fill, error_code, error_message FROM orders"
    rows = await _fetch(database_url, f"SELECT id::text AS id, {columns}", f"SELECT id, {columns}")
    events = await _fetch(
        database_url,
        "SELECT order_id::text AS order_id, seq, status, details FROM order_events "
        "ORDER BY order_id, seq",
        "SELECT order_id, seq, status, details FROM order_events ORDER BY order_id, seq",
    )
    orders = {
        row["id"]: StoredOrder(
            row["id"],
            row["status"],
            row["seq"],
            row["input_mint"],
            row["output_mint"],
            _json(row["fill"]),
            row["error_code"],
            row["error_message"],
        )
        for row in rows
    }
    for row in events:
        orders[row["order_id"]].events.append(
            StoredEvent(row["seq"], row["status"], _json(row["details"]) or {})
        )
    return orders


async def statuses_by_order(database_url: str) -> dict[str, str]:
    rows = await _fetch(
        database_url, "SELECT id::text AS id, status FROM orders", "SELECT id, status FROM orders"
    )
    return {row["id"]: row["status"] for row in rows}


def assert_lifecycle(orders: Mapping[str, StoredOrder], accepted: Iterable[str]) -> None:
    """Every accepted order is stored; every stored order ended exactly once, gaplessly."""
    problems = [
        f"{oid}: accepted (201) but not in the database" for oid in accepted if oid not in orders
    ]
    for order in orders.values():
        seqs = [e.seq for e in order.events]
        terminal = [e.seq for e in order.events if e.status in TERMINAL]
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"{order.id}: event seqs {seqs} are not 1..n")
        if order.seq != len(seqs):
            problems.append(f"{order.id}: orders.seq {order.seq} but {len(seqs)} events")
        if not order.events or order.events[0].status != "pending":
            problems.append(f"{order.id}: history does not start with pending: {seqs}")
        if len(terminal) != 1:
            problems.append(
                f"{order.id}: expected exactly one terminal event, found {len(terminal)} "
                f"(status {order.status}, events {[e.status for e in order.events]})"
            )
        elif terminal[0] != order.seq or order.status != order.events[-1].status:
            problems.append(f"{order.id}: the terminal event is not the last one")
    assert not problems, "\n".join(problems[:30])


async def signature_statuses(chain_url: str, signatures: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for at in range(0, len(signatures), 200):
        chunk = list(signatures[at : at + 200])
        result = await rpc(
            chain_url, "getSignatureStatuses", [chunk, {"searchTransactionHistory": True}]
        )
        found.update(zip(chunk, result["value"], strict=True))
    return found


async def token_delta(chain_url: str, signature: str, owner: str, mint: str) -> int:
    """The owner's change of ``mint`` in one landed transaction, from ``getTransaction``."""
    config = {"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": "confirmed"}
    result = await rpc(chain_url, "getTransaction", [signature, config])
    assert result is not None, f"{signature} confirmed but getTransaction has nothing"
    meta = result["meta"]

    def held(balances: list[dict[str, Any]]) -> int:
        return sum(
            int(b["uiTokenAmount"]["amount"])
            for b in balances
            if b.get("owner") == owner and b["mint"] == mint
        )

    return held(meta["postTokenBalances"]) - held(meta["preTokenBalances"])


async def token_balance(chain_url: str, owner: str, mint: str) -> int:
    account = associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(mint))
    result = await rpc(
        chain_url, "getTokenAccountBalance", [str(account), {"commitment": "confirmed"}]
    )
    return int(result["value"]["amount"])


@dataclass(frozen=True)
class ChainReport:
    confirmed: int
    failed: int
    signed: int  # transactions signed in all
    landed_with_error: int
    output_received: int  # sum of the recorded fills' output, base units


async def assert_exactly_once(
    chain_url: str, orders: Mapping[str, StoredOrder], *, owner: str
) -> ChainReport:
    """Per order, at most one signed transaction executed, and it is the recorded fill."""
    signatures = [s for order in orders.values() for s in order.signatures]
    statuses = await signature_statuses(chain_url, signatures)
    problems: list[str] = []
    received = errored = 0
    for order in orders.values():
        executed = [
            s for s in order.signatures if statuses[s] is not None and statuses[s]["err"] is None
        ]
        errored += sum(
            1
            for s in order.signatures
            if statuses[s] is not None and statuses[s]["err"] is not None
        )
        if order.status == "confirmed":
            assert order.fill is not None
            if executed != [order.fill["txHash"]]:
                problems.append(
                    f"{order.id}: confirmed with {order.fill['txHash']} but executed on chain: "
                    f"{executed} (of {len(order.signatures)} signed)"
                )
                continue
            delta = await token_delta(chain_url, executed[0], owner, order.output_mint)
            if delta != int(order.fill["amountOutRaw"]):
                recorded = order.fill["amountOutRaw"]
                problems.append(f"{order.id}: recorded fill {recorded}, the chain moved {delta}")
            received += delta
        elif executed:
            problems.append(
                f"{order.id}: failed ({order.error_code}) but executed on chain: {executed}"
            )
    assert not problems, "\n".join(problems[:30])
    return ChainReport(
        confirmed=sum(1 for o in orders.values() if o.status == "confirmed"),
        failed=sum(1 for o in orders.values() if o.status == "failed"),
        signed=len(signatures),
        landed_with_error=errored,
        output_received=received,
    )


def assert_stream(
    received: Sequence[dict[str, Any]], order: StoredOrder, *, after_seq: int = 0
) -> None:
    """A subscriber got exactly the stored events after ``after_seq``, in order, once each."""
    got = [(m.get("seq"), m.get("status")) for m in received]
    want = [(e.seq, e.status) for e in order.events if e.seq > after_seq]
    assert got == want, f"{order.id}: subscriber received {got}, the store has {want}"
    assert got, f"{order.id}: the subscriber received nothing"
    assert got[-1][1] in TERMINAL, f"{order.id}: stream did not end with the terminal event: {got}"


async def unfinished(database_url: str) -> list[dict[str, Any]]:
    """The active orders with what the reconciler and the claim look at."""
    columns = "status, seq, attempts, lease_owner, lease_expires_at, updated_at"
    active = "FROM orders WHERE status NOT IN ('confirmed', 'failed')"
    rows = await _fetch(
        database_url,
        f"SELECT id::text AS id, {columns}, now() AS now {active}",
        f"SELECT id, {columns} {active}",
    )
    return [dict(row) for row in rows]


async def wait_all_terminal(
    database_url: str,
    ids: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline for polling, not for one await
    context: Any = None,
) -> None:
    """Wait until every order in ``ids`` is terminal; on timeout, say which are not and why."""

    async def done() -> bool:
        statuses = await statuses_by_order(database_url)
        return all(statuses.get(i) in TERMINAL for i in ids)

    try:
        await eventually(done, timeout=timeout, what=f"all {len(ids)} orders terminal", every=0.1)
    except AssertionError as exc:
        stuck = "\n".join(str(row) for row in await unfinished(database_url))
        extra = context() if context else ""
        raise AssertionError(f"{exc}\nunfinished:\n{stuck}\n{extra}") from None


async def assert_invariants(
    database_url: str, chain_url: str, accepted: Sequence[str], *, owner: str, usdc_before: int
) -> tuple[dict[str, StoredOrder], ChainReport]:
    """Every invariant after a scenario: the lifecycle from the database, exactly-once
    per order on the chain, and the wallet's USDC grown by exactly the recorded fills
    (every order is SOL -> USDC, so USDC moves only with a swap)."""
    orders = await load_orders(database_url)
    assert_lifecycle(orders, accepted)
    report = await assert_exactly_once(chain_url, orders, owner=owner)
    received = await token_balance(chain_url, owner, USDC_MINT) - usdc_before
    assert received == report.output_received, (
        f"the wallet received {received} USDC base units, the recorded fills "
        f"{report.output_received}: a swap executed that the engine did not record once"
    )
    return orders, report


async def assert_re_signed_only_after_expiry(
    chain_url: str, orders: Mapping[str, StoredOrder], validity: int = 150
) -> int:
    """Each order re-signed only once its previous transaction could never land: the
    new transaction's blockhash was fetched after the height the previous one was
    valid through (``lastValidBlockHeight`` = fetch height + ``validity``), unless the
    previous one landed and failed (stale accounts), which executes nothing.
    Returns how many re-signs there were."""
    signatures = [s for order in orders.values() for s in order.signatures]
    statuses = await signature_statuses(chain_url, signatures)
    problems: list[str] = []
    re_signed = 0
    for order in orders.values():
        submitted = [e.details for e in order.events if e.status == "submitted"]
        for previous, following in itertools.pairwise(submitted):
            re_signed += 1
            landed = statuses[previous["txHash"]]
            if landed is not None and landed["err"] is not None:
                continue
            signed_at = following["lastValidBlockHeight"] - validity
            if signed_at <= previous["lastValidBlockHeight"]:
                problems.append(
                    f"{order.id}: re-signed at height {signed_at} while {previous['txHash']} "
                    f"was valid through {previous['lastValidBlockHeight']}"
                )
    assert not problems, "\n".join(problems[:30])
    return re_signed
