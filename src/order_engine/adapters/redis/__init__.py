"""Distributed adapters on Redis: the SAQ job queue and the pub/sub event bus."""

from order_engine.adapters.redis.bus import RedisEventBus, RedisSubscription
from order_engine.adapters.redis.queue import SaqJobQueue, SaqQueueConfig

__all__ = ["RedisEventBus", "RedisSubscription", "SaqJobQueue", "SaqQueueConfig"]
