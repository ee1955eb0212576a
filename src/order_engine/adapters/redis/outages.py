"""What "Redis cannot be reached right now" looks like from redis-py
(``adapters/outages.py`` combines it with the other backends')."""

from __future__ import annotations

import redis.exceptions

OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` itself (not its cause) says Redis is unreachable."""
    return isinstance(exc, OUTAGE_ERRORS)
