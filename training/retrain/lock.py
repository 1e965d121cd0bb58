"""The trainer lock: one retrain at a time per models directory (flock) and per database (advisory lock).

Taken without waiting: a second trainer that finds it held records "skipped" instead of queueing behind the
first, which would only retrain again on the same data. The flock covers trainers sharing the models volume;
the PostgreSQL session lock covers trainers on different machines that share only the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_FILE = ".retrain.lock"
ADVISORY_KEY = 4242000006


class LockBusy(RuntimeError):
    """Another trainer holds the lock."""


@contextlib.contextmanager
def trainer_lock(models_dir: Path, engine: Any | None = None) -> Iterator[None]:
    """Hold both locks for the block, or raise LockBusy at once (never waits)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    handle = open(models_dir / LOCK_FILE, "a+")  # noqa: SIM115 (released in finally, after the body)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(f"{models_dir / LOCK_FILE}: held by {_holder(handle)}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        with _advisory(engine):
            yield
    finally:
        handle.close()  # closing the descriptor releases the flock


@contextlib.contextmanager
def _advisory(engine: Any | None) -> Iterator[None]:
    if engine is None or engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text

    # A session lock on a dedicated connection: released by unlock, or by PostgreSQL if this process dies.
    with engine.connect() as conn:
        got = conn.execute(text(f"SELECT pg_try_advisory_lock({ADVISORY_KEY})")).scalar()
        conn.commit()
        if not got:
            raise LockBusy(f"PostgreSQL advisory lock {ADVISORY_KEY} is held by another trainer")
        try:
            yield
        finally:
            conn.execute(text(f"SELECT pg_advisory_unlock({ADVISORY_KEY})"))
            conn.commit()


def _holder(handle: Any) -> str:
    handle.seek(0)
    return handle.read().strip() or "another process"
