"""In-process adapters for the queue and event bus: embedded mode, and the
reference implementations the contract tests are written against."""

from order_engine.adapters.memory.backoff import backoff_delay
from order_engine.adapters.memory.bus import InMemoryEventBus, InMemorySubscription
from order_engine.adapters.memory.queue import InMemoryJobQueue

__all__ = ["InMemoryEventBus", "InMemoryJobQueue", "InMemorySubscription", "backoff_delay"]
