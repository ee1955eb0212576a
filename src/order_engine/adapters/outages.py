"""Which backend an exception says cannot be reached right now, from the
classifiers of the adapters that know the libraries' exceptions
(``adapters/db/outages.py``, ``adapters/redis/outages.py``).

The API answers these with 503 and Retry-After instead of 500
(``api/errors.py``, given them by the composition root): the request may
simply be tried again.
"""

from __future__ import annotations

from collections.abc import Callable

from order_engine.adapters.db import outages as db
from order_engine.adapters.redis import outages as redis

# The exception types an outage may raise; ``backend_unavailable`` decides.
BACKEND_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable (TimeoutError is one too)
    *db.OUTAGE_ERRORS,
    *redis.OUTAGE_ERRORS,
)

# Checked in this order on every exception of the chain: Redis's connection
# errors are OSErrors too, and so is what asyncpg raises on a refused connection.
_BACKENDS: tuple[tuple[str, Callable[[BaseException], bool]], ...] = (
    ("Redis", redis.is_outage),
    ("the database", db.is_outage),
)


def backend_unavailable(exc: BaseException) -> str | None:
    """Which backend ``exc``, or an error it was raised from, says is unreachable
    (``"the database"``, ``"Redis"``, ``"a backend"``); ``None`` for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for backend, is_outage in _BACKENDS:
            if is_outage(current):
                return backend
        if isinstance(current, OSError):
            return "a backend"
        current = current.__cause__ or getattr(current, "orig", None)
    return None
