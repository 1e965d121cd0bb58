"""Cluster-wide leadership for scheduled jobs: one holder of a named lock at a time, across workers and replicas.

PostgreSQL: a session-level advisory lock on a dedicated connection, so a replica that dies (or loses its
connection) releases it at once and never blocks the others. SQLite (one host by nature): an flock on a file
beside the database. Any other database: no coordination (the holder is always this process).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, text

POLL_SECONDS = 1.0


def advisory_key(name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key for `name` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def job_lock(engine: Engine, name: str, timeout: float = 0.0, stop: threading.Event | None = None) -> Iterator[bool]:
    """Hold lock `name` for the block; yields True when held, False when `timeout` s (or `stop`) came first."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn, _advisory(conn, advisory_key(name), timeout, stop) as held:
            yield held
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with _flock(Path(f"{engine.url.database}.{name.replace(':', '-')}.lock"), timeout, stop) as held:
            yield held
    else:
        yield True


def _wait(deadline: float, stop: threading.Event | None) -> bool:
    """Sleep one poll interval; False once the deadline passed or `stop` is set."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or (stop is not None and stop.is_set()):
        return False
    if stop is not None:
        return not stop.wait(min(POLL_SECONDS, remaining))
    time.sleep(min(POLL_SECONDS, remaining))
    return True


@contextlib.contextmanager
def _advisory(conn: Connection, key: int, timeout: float, stop: threading.Event | None) -> Iterator[bool]:
    deadline = time.monotonic() + timeout
    while True:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        conn.commit()  # the lock is the session's, not the transaction's: no transaction stays open
        if held or not _wait(deadline, stop):
            break
    try:
        yield held
    finally:
        if held:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()


@contextlib.contextmanager
def _flock(path: Path, timeout: float, stop: threading.Event | None) -> Iterator[bool]:
    deadline = time.monotonic() + timeout
    with open(path, "a") as handle:  # closing the descriptor releases the lock
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                held = False
            if held or not _wait(deadline, stop):
                break
        yield held
