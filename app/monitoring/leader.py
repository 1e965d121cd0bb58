"""Cluster-wide leadership for scheduled jobs: one holder of a named lock at a time, across workers and replicas.

PostgreSQL: a session-level advisory lock on a dedicated connection, so a replica that dies (or loses its
connection) releases it at once and never blocks the others. SQLite (one host by nature): an flock on a file
beside the database. Any other database: no coordination (the holder is always this process).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from app.locks import advisory_key, advisory_lock, file_lock

__all__ = ["advisory_key", "job_lock"]


@contextlib.contextmanager
def job_lock(engine: Engine, name: str, timeout: float = 0.0, stop: threading.Event | None = None) -> Iterator[bool]:
    """Hold lock `name` for the block; yields True when held, False when `timeout` s (or `stop`) came first."""
    if engine.dialect.name == "postgresql":
        with advisory_lock(engine, advisory_key(name), timeout, stop) as held:
            yield held
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with file_lock(Path(f"{engine.url.database}.{name.replace(':', '-')}.lock"), timeout, stop) as held:
            yield held
    else:
        yield True
