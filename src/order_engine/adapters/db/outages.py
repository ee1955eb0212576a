"""What "the database cannot be reached right now" looks like from SQLAlchemy and
asyncpg (``adapters/outages.py`` combines it with the other backends')."""

from __future__ import annotations

import asyncpg  # no stubs (pyproject.toml); only its exception types
import sqlalchemy.exc

# The types an outage raises. A DBAPIError is also what a constraint violation
# raises: ``is_outage`` decides.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection within pool_timeout
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up (57P0x)
    asyncpg.exceptions.TooManyConnectionsError,  # 53300: every connection slot taken
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` itself (not its cause) says the database is unreachable."""
    if isinstance(
        exc,
        (
            sqlalchemy.exc.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.TooManyConnectionsError,
        ),
    ):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated
