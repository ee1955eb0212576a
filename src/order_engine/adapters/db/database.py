"""The database as one object: the engine, its write discipline, and group commit.

Every SQL store (orders, idempotency keys, API keys, queries) receives one
``Database`` and opens its units of work through it: ``writing()`` is one
transaction that holds the database's single-writer discipline, ``reading()``
a connection for reads. Nothing else touches the engine or its locks.

On a SQLite *file* the hot-path writes go through ``group``, a
``GroupCommitWriter``: one writer thread, one connection, and one transaction
per batch holding the writes of every order that asked while the previous
batch was committing. Each caller resumes only after the commit that holds
its write, so durability per write is unchanged, but a burst of N writes
costs one commit (and one fsync) instead of N. The same writer serves the
hot path's point reads (``read``) on a second connection, inline: a primary-key
read of a few rows costs less than a thread hand-off.

SQLite allows one writer per database at a time. The writers of this process
other than the group writer (API keys, idempotency reservations, migrations)
queue on an ``asyncio.Lock`` among themselves, and the busy timeout set on
every connection makes them and the group writer wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from order_engine.adapters.db.engine import SQLITE_BUSY_TIMEOUT_MS, is_memory_sqlite

log = structlog.get_logger(__name__)

T = TypeVar("T")
Unit = Callable[[sqlite3.Connection], T]

# A hot-path read on the event loop must never wait long for a lock: WAL readers
# do not wait for writers, so only a checkpoint restart or recovery can make one
# wait, and then the caller falls back to the engine's pooled connections.
_INLINE_READ_BUSY_MS = 50
_IDLE_EXIT_S = 5.0  # the writer thread ends after this long without work


class Database:
    """The engine and everything that decides how it is written (module docstring)."""

    def __init__(self, engine: AsyncEngine, *, group_commit: bool = True) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        sqlite = self.dialect == "sqlite"
        self._write_lock: AbstractAsyncContextManager[None] = (
            asyncio.Lock() if sqlite else nullcontext()
        )
        memory = is_memory_sqlite(engine.url)
        # An in-memory database lives on one connection that every checkout
        # shares; a read interleaved with a write transaction would see (or, on
        # release, roll back) its uncommitted work, so reads queue too. Such a
        # database is private to that connection, so it gets no group writer.
        self._read_lock: AbstractAsyncContextManager[None] = (
            self._write_lock if memory else nullcontext()
        )
        self.group: GroupCommitWriter | None = None
        if sqlite and not memory and group_commit and engine.url.database:
            self.group = GroupCommitWriter(engine.url.database)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on exit, rolled back on an exception."""
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        async with self._read_lock, self.engine.connect() as conn:
            yield conn

    async def server_time(self) -> datetime:
        """The database server's wall clock (PostgreSQL), the time every host shares."""
        async with self.reading() as conn:
            found = await conn.scalar(text("SELECT statement_timestamp()"))
        if not isinstance(found, datetime):
            raise TypeError(f"expected a timestamp from the server, got {found!r}")
        return found

    async def health(self) -> str:
        async with self.reading() as conn:
            await conn.execute(text("SELECT 1"))
        return "ok"

    async def close(self) -> None:
        """Stop the group writer (after its last batch) and dispose of the engine."""
        if self.group is not None:
            await self.group.close()
        await self.engine.dispose()


@dataclass(slots=True)
class _Pending:
    unit: Unit[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


Outcome = tuple[_Pending, Any, BaseException | None]


class GroupCommitWriter:
    """One SQLite writer thread committing every queued unit of a turn together.

    A unit is a function of a ``sqlite3.Connection`` that runs inside the
    batch's transaction: a unit that raises (a conditional write that found
    another seq, a constraint) is rolled back alone and its caller gets the
    exception; the rest of the batch commits. Units run without savepoints
    while none raises after changing rows (``_run_plain``); a batch in which
    one does is rolled back and run again with a savepoint per unit.
    ``synchronous=FULL``: a commit is on disk before any caller resumes, so
    "the signed transaction is committed before it is sent" survives an OS
    crash too, at the cost of one fsync per batch, not per write.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._closed = False
        self.batches = 0
        self.units = 0
        self._reader: sqlite3.Connection | None = None
        self._running = False

    def submit(self, unit: Unit[T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the database's group writer is closed")
            if not self._running:
                self._start()
            self._queue.append(_Pending(unit, future, loop))
            if len(self._queue) == 1:
                self._cond.notify()
        return future

    async def write(self, unit: Unit[T]) -> T:
        return await self.submit(unit)

    def read(self, unit: Unit[T]) -> T:
        """Run a read-only ``unit`` now, on this thread's reader connection (autocommit:
        each statement sees every commit that resolved a writer's caller)."""
        if self._reader is None:
            self._reader = _connect(self.path, busy_ms=_INLINE_READ_BUSY_MS, check_thread=True)
        return unit(self._reader)

    async def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread if self._running else None
        if thread is not None:
            await asyncio.to_thread(thread.join)
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    # --- the writer thread -------------------------------------------------------------

    def _start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="sqlite-group-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = _connect(self.path, busy_ms=SQLITE_BUSY_TIMEOUT_MS, check_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        try:
            while True:
                with self._cond:
                    if not self._queue and not self._closed:
                        self._cond.wait(_IDLE_EXIT_S)
                    if not self._queue:
                        # Closed, or idle for a while: the next write starts a new thread,
                        # so a Database that nobody closed leaves no thread behind.
                        self._running = False
                        return
                    batch, self._queue = self._queue, []
                self._commit(conn, batch)
        finally:
            conn.close()

    @staticmethod
    def _run_plain(conn: sqlite3.Connection, batch: list[_Pending]) -> list[Outcome] | None:
        """Run the units one after another with no savepoints; ``None`` if one raised
        after changing rows (then nothing of this run may be committed).

        A unit that raises having changed nothing (a conditional write that found
        another seq: the common refusal) needs no rollback, and ``total_changes``
        says which case it is. Savepoints for every unit cost two more statements
        each, and each statement is a round trip for the GIL with the busy loop.
        """
        outcomes: list[Outcome] = []
        for item in batch:
            before = conn.total_changes
            try:
                result = item.unit(conn)
            except Exception as exc:  # noqa: BLE001 - the caller gets it
                if conn.total_changes != before:
                    return None
                outcomes.append((item, None, _translated(exc)))
            else:
                outcomes.append((item, result, None))
        return outcomes

    @staticmethod
    def _run_isolated(conn: sqlite3.Connection, batch: list[_Pending]) -> list[Outcome]:
        """Run each unit in a savepoint of its own: one that raises is rolled back alone."""
        outcomes: list[Outcome] = []
        for item in batch:
            conn.execute("SAVEPOINT unit")
            try:
                result = item.unit(conn)
            except Exception as exc:  # noqa: BLE001 - the caller gets it
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                outcomes.append((item, None, _translated(exc)))
            else:
                conn.execute("RELEASE unit")
                outcomes.append((item, result, None))
        return outcomes

    def _commit(self, conn: sqlite3.Connection, batch: list[_Pending]) -> None:
        outcomes: list[Outcome] | None
        try:
            conn.execute("BEGIN IMMEDIATE")
            outcomes = self._run_plain(conn, batch)
            if outcomes is None:  # a unit failed after it wrote: isolate every unit
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._run_isolated(conn, batch)
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the commit itself failed: nothing holds
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("group_commit_failed", units=len(batch), error=repr(exc))
            outcomes = [(item, None, _translated(exc)) for item in batch]
        self.batches += 1
        self.units += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]]
        by_loop = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, done in by_loop.items():
            # A closed loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, done)


def _translated(exc: Exception) -> Exception:
    """A driver error as SQLAlchemy raises it (``IntegrityError``, ``OperationalError``...),
    so that callers and the outage classifier see one family whichever path wrote."""
    if isinstance(exc, sqlite3.Error):
        return DBAPIError.instance(None, None, exc, sqlite3.Error)
    return exc


def _resolve(done: list[Outcome]) -> None:
    for item, result, error in done:
        if item.future.done():  # the caller was cancelled; the write stands regardless
            continue
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)


def _connect(path: str, *, busy_ms: int, check_thread: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_thread)
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
