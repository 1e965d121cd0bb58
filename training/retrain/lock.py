"""The trainer lock: one retrain at a time per models directory (flock) and per database (advisory lock).

Taken without waiting: a second trainer that finds it held records "skipped" instead of queueing behind the
first, which would only retrain again on the same data. The flock covers trainers sharing the models volume;
the PostgreSQL session lock covers trainers on different machines that share only the database.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.locks import advisory_lock, file_lock, lock_note

LOCK_FILE = ".retrain.lock"
ADVISORY_KEY = 4242000006


class LockBusy(RuntimeError):
    """Another trainer holds the lock."""


@contextlib.contextmanager
def trainer_lock(models_dir: Path, engine: Any | None = None) -> Iterator[None]:
    """Hold both locks for the block, or raise LockBusy at once (never waits)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / LOCK_FILE
    with file_lock(path, timeout=0, note=f"pid {os.getpid()}") as held:
        if not held:
            raise LockBusy(f"{path}: held by {lock_note(path) or 'another process'}")
        if engine is None or engine.dialect.name != "postgresql":
            yield
            return
        with advisory_lock(engine, ADVISORY_KEY, timeout=0) as got:
            if not got:
                raise LockBusy(f"PostgreSQL advisory lock {ADVISORY_KEY} is held by another trainer")
            yield
