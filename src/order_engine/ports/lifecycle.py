"""What a process's runtime (``order_engine/runtime.py``) may do with a backend it
holds for its lifetime, whichever adapter it is: check it and close it.

``health`` answers ``"ok"`` or ``"unavailable (why)"`` for a backend another
process could also lose (a database, Redis), and ``None`` for one that lives
in this process and has nothing to report (the in-memory queue and bus): the
readiness probe lists only what can be unavailable. It may raise; the runtime
reports the exception's type and bounds the wait.
"""

from __future__ import annotations

from typing import Protocol


class Service(Protocol):
    async def health(self) -> str | None: ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...
