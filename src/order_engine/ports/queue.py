"""Job queue port: at-least-once delivery of "execute order X" jobs.

Semantics every adapter honours (tests/contract/test_queue_contract.py):

* The job id *is* the order id. ``enqueue`` of an order whose job is queued
  or scheduled is a no-op; while its job runs, the enqueue is remembered as at
  most one re-run after it ends. Two runs of one order never overlap in one
  queue. Once the job finished, the order may be enqueued again (the
  reconciler relies on that).
* A worker runs at most ``concurrency`` handlers at once.
* If the handler raises, the job is retried after exponential backoff with
  jitter, until ``max_attempts`` deliveries were made; the handler learns its
  attempt number from ``Job`` so it can turn the last failure into a terminal
  state itself.
* A job cancelled by ``stop`` keeps its attempt number: a shutdown is not the
  job's failure.
* A job may be delivered more than once (a crash, a sweep): handlers must be
  idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from order_engine.ports.lifecycle import Service


@dataclass(frozen=True, slots=True)
class Job:
    order_id: UUID
    attempt: int  # 1-based delivery count
    max_attempts: int

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


JobHandler = Callable[[Job], Awaitable[None]]


class JobQueue(Service, Protocol):
    async def enqueue(self, order_id: UUID, *, delay: float = 0.0) -> None: ...

    async def depth(self) -> int:
        """Jobs waiting to run (queued or scheduled), excluding running ones."""
        ...

    async def start(self, handler: JobHandler, concurrency: int) -> None:
        """Begin consuming jobs in the background."""
        ...

    async def stop(self, drain_timeout: float) -> None:
        """Stop taking jobs; wait up to ``drain_timeout`` for running ones, then
        cancel them so they return to the queue. Idempotent."""
        ...

    async def close(self) -> None:
        """Release connections. Safe to call after ``stop`` or without ``start``."""
        ...

    # health (ports/lifecycle.py): whether the jobs' store answers, if it is shared.
