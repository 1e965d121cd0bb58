"""A value recomputed off the request path once it is older than its maximum age (stale-while-revalidate).

The web pages show aggregates over the whole prediction log (counts per day, labelled metrics) that take far
longer to compute than a page may take. A `Snapshot` serves the newest computed value at once; a reader that
finds it too old starts one background recomputation and still gets the old value. Only the very first reader
(no value yet) waits, and with `max_age` 0 every reader recomputes in place (tests, tiny deployments).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("commitrisk.snapshot")


@dataclass(frozen=True, slots=True)
class Computed(Generic[T]):
    """One computed value and when its computation started (Unix seconds): what it is as of."""

    value: T
    as_of: float


class Snapshot(Generic[T]):
    """`get()` answers the newest value; `compute(previous)` builds the next one (incrementally if it can)."""

    def __init__(self, name: str, compute: Callable[[T | None], T], max_age: float) -> None:
        self.name = name
        self.max_age = max_age
        self._compute = compute
        self._current: Computed[T] | None = None
        self._lock = threading.Lock()  # one computation at a time, in place or in the background
        self._flag = (
            threading.Lock()
        )  # guards `_refreshing`, `_closed`, `_thread`: a reader never waits for a computation
        self._refreshing = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def get(self, now: float | None = None) -> Computed[T]:
        """The newest value; starts a background refresh when it is older than `max_age` (waits only for the first)."""
        current = self._current
        if current is None or self.max_age == 0:
            return self._refresh_now()
        if (now or time.time()) - current.as_of > self.max_age:
            self._refresh_later()
        return current

    def _refresh_now(self) -> Computed[T]:
        with self._lock:
            if self._current is not None and self.max_age > 0:
                return self._current  # another reader computed the first value while this one waited
            return self._run()

    def _run(self) -> Computed[T]:
        started = time.time()
        previous = self._current.value if self._current is not None else None
        self._current = Computed(self._compute(previous), started)
        return self._current

    def close(self, timeout: float = 10.0) -> None:
        """Start no more background refreshes and wait (up to `timeout` s) for the running one: at shutdown, before
        the database it reads is closed under it."""
        with self._flag:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _refresh_later(self) -> None:
        with self._flag:
            if self._refreshing or self._closed:
                return
            self._refreshing = True
            self._thread = threading.Thread(target=self._background, name=f"snapshot-{self.name}", daemon=True)
            self._thread.start()

    def _background(self) -> None:
        try:
            with self._lock:
                self._run()
        except Exception:  # the old value keeps being served; the next reader past max_age tries again
            log.exception("refreshing %s failed", self.name)
        finally:
            self._refreshing = False
