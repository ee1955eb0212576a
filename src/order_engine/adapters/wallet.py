"""The engine's signing keypair, kept in a Solana CLI-format JSON file.

Generated on first run. Creation uses O_EXCL so that several processes
starting at once (workers in distributed mode) agree on one key: the loser of
the race reads the winner's file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from solders.keypair import Keypair


def load_or_create_keypair(path: Path) -> Keypair:
    path = path.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keypair = Keypair()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read its key below
        else:
            with os.fdopen(fd, "w") as fh:
                json.dump(list(bytes(keypair)), fh)
            return keypair
    return _read(path)


def _read(path: Path, attempts: int = 50) -> Keypair:
    # A racing creator may not have finished writing: retry briefly on a short read.
    for _ in range(attempts):
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError:
            time.sleep(0.01)
            continue
        if not (isinstance(raw, list) and len(raw) == 64):
            raise ValueError(f"{path}: expected a JSON array of 64 bytes (Solana CLI keypair)")
        return Keypair.from_bytes(bytes(raw))
    raise ValueError(f"{path}: keypair file stayed unreadable")
