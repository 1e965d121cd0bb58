"""Exclusive locks held for a `with` block: an flock on a file (one host) and a PostgreSQL session advisory lock.

Both are released when the block ends, and by the kernel or by PostgreSQL when the holder dies (its descriptor
or connection closes), so a crashed holder never blocks the others. Waiting is the caller's choice: `timeout`
None waits as long as it takes, 0 tries once, a number polls up to that many seconds; a set `stop` event ends
any wait early. The locks yield whether they are held instead of raising, so each caller words its own refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

POLL_SECONDS = 1.0


def advisory_key(name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key for `name` (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def file_lock(
    path: Path, timeout: float | None = None, stop: threading.Event | None = None, note: str = ""
) -> Iterator[bool]:
    """Hold an exclusive flock on `path` (created if absent); yields True when held, False when the wait ended.

    The holder writes `note` (e.g. "pid 42") into the file, for `lock_note` to name it to whoever is refused.
    """
    with open(path, "a+", encoding="utf-8") as handle:  # closing the descriptor releases the lock
        if timeout is None and stop is None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # a plain blocking wait wakes the moment the holder lets go
            held = True
        else:
            held = _poll(lambda: _try_flock(handle.fileno()), timeout, stop)
        if held and note:
            handle.truncate(0)
            handle.write(note + "\n")
            handle.flush()
        yield held


def lock_note(path: Path) -> str:
    """What the current holder of a file lock wrote into it ("" when nothing or unreadable)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def advisory_lock(
    engine: Engine, key: int, timeout: float | None = 0.0, stop: threading.Event | None = None
) -> Iterator[bool]:
    """Hold PostgreSQL session advisory lock `key` on a dedicated connection; yields True when held."""
    if engine.dialect.name != "postgresql":
        raise ValueError(f"advisory locks need PostgreSQL, not {engine.dialect.name}")
    from sqlalchemy import text

    with engine.connect() as conn:

        def attempt() -> bool:
            held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
            conn.commit()  # the lock is the session's, not the transaction's: no transaction stays open
            return held

        held = _poll(attempt, timeout, stop)
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _poll(attempt: Callable[[], bool], timeout: float | None, stop: threading.Event | None) -> bool:
    """Call `attempt` until it succeeds (True), the timeout passes or `stop` is set (False)."""
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    while not attempt():
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (stop is not None and stop.is_set()):
            return False
        pause = min(POLL_SECONDS, remaining)
        if stop is not None:
            if stop.wait(pause):
                return False
        else:
            time.sleep(pause)
    return True
