"""The write-behind prediction log: a queue bounded in rows, drained in transactions by one writer thread."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.monitoring.availability import Availability
from app.monitoring.store import Store
from app.monitoring.writer import CLOSED, DATABASE_UNAVAILABLE, QUEUE_FULL, LogWriter, Part

# The writer thread holds the GIL while it turns entries into rows; a request that gave the GIL up (onnxruntime
# releases it) waits until the writer blocks or this interval ends. Python's default, 5 ms, is a whole request's
# latency budget; 1 ms bounds that wait (lowered only, never raised: an operator's lower value stays).
SWITCH_INTERVAL = 0.001


class RequestIds:
    """Unique, unpredictable request ids (32 hex digits) without a system call per request.

    BLAKE2b keyed with 32 random bytes of this process over a counter: as unguessable as `os.urandom(16)`, but
    `getrandom` releases the GIL, and the log writer thread could then hold the request for up to a switch
    interval (profiled: 22–28 µs per request under load, against ~1.4 µs here). A forked child draws a new key.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._key = os.urandom(32)
        self._counter = itertools.count()

    def __call__(self) -> str:
        """The next id."""
        return hashlib.blake2b(next(self._counter).to_bytes(8), key=self._key, digest_size=16).hexdigest()


new_request_id = RequestIds()


def request_ids(base: str | None, count: int) -> list[str | None]:
    """The id each answered commit carries: the request's id alone, or `<id>-<index>` inside a batch."""
    if base is None:
        return [None] * count
    return [base] if count == 1 else [f"{base}-{i}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class ShadowScores:
    """One shadow model's probabilities for every row of a batch (same order)."""

    version: int
    probabilities: np.ndarray


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The commits one request was answered for, as columns: one queue entry and a few arrays per request.

    Columns rather than one object per commit keep the request path to a handful of allocations and the queue
    small (≈ 200 bytes a row); the writer turns them into rows off the hot path.
    """

    time: float
    request_id: str | None
    features: np.ndarray  # float64 [n, 15], FEATURES order
    probabilities: np.ndarray  # [n]
    labels: np.ndarray  # bool [n]
    risk_bands: Sequence[str]
    model_version: int
    commit_ids: Sequence[str | None] | None = None
    repositories: Sequence[str | None] | None = None
    shadows: tuple[ShadowScores, ...] = ()

    @property
    def rows(self) -> int:
        """Commits in the batch."""
        return len(self.probabilities)

    def prediction_values(self) -> list[tuple[Any, ...]]:
        """`predictions` rows in `PREDICTION_COLUMNS` order."""
        n = self.rows
        ids = request_ids(self.request_id, n)
        commits = self.commit_ids if self.commit_ids is not None else [None] * n
        repositories = self.repositories if self.repositories is not None else [None] * n
        t, version = self.time, self.model_version
        columns = zip(
            ids, commits, repositories, self.features.tolist(), self.probabilities.tolist(), self.labels.tolist(),
            self.risk_bands, strict=True,
        )  # fmt: skip
        return [
            (t, rid, cid, repo, *features, p, label, band, version)
            for rid, cid, repo, features, p, label, band in columns
        ]

    def shadow_values(self) -> list[tuple[Any, ...]]:
        """`shadow_predictions` rows in `SHADOW_COLUMNS` order: both probabilities of every commit and shadow."""
        if not self.shadows:
            return []
        n = self.rows
        ids = request_ids(self.request_id, n)
        commits = self.commit_ids if self.commit_ids is not None else [None] * n
        champion = self.probabilities.tolist()
        t, version = self.time, self.model_version
        return [
            (t, rid, cid, version, p, shadow.version, q)
            for shadow in self.shadows
            for rid, cid, p, q in zip(ids, commits, champion, shadow.probabilities.tolist(), strict=True)
        ]


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    """Inputs refused before scoring, counted by reason for the data-quality view."""

    time: float
    reason: str
    count: int = 1

    @property
    def rows(self) -> int:
        """A rejection takes one row of the queue's budget."""
        return 1


Entry = PredictionBatch | RejectionRecord
# Where a route hands its answered batch (app/main.py chains shadow scoring in front of the log); never blocks.
Sink = Callable[[PredictionBatch], object]


class PredictionLog:
    """Never blocks a request: `submit` appends under a short lock; past `max_rows` queued rows it drops and counts.

    The writer thread hands whole transactions to `LogWriter` (app/monitoring/writer.py), which isolates rows the
    database refuses and holds its rows through an outage; `written + dropped` is every prediction submitted.
    """

    def __init__(
        self,
        store: Store,
        max_rows: int = 50_000,
        batch_rows: int = 10_000,
        flush_seconds: float = 0.5,
        on_drop: Callable[[int, str], None] | None = None,
        on_write: Callable[[int], None] | None = None,
        availability: Availability | None = None,
        retry_seconds: float = 1.0,
        on_unwritten: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.written = 0
        self._entries: deque[Entry] = deque()
        self._pending = 0
        self._ready = threading.Condition(threading.Lock())
        self._on_drop = on_drop
        self._on_write = on_write
        # Prediction rows accepted and not yet settled (written or dropped), as deltas: a gauge that outlives a
        # killed worker, so its loss is still counted (app/metrics.py, `forget_dead_processes`).
        self._on_unwritten = on_unwritten
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writer = LogWriter(store, self._stop, self._written, self._drop, availability, retry_seconds)

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
            self._thread.start()

    def submit(self, entry: Entry) -> bool:
        """Queue one entry; False (its rows counted as dropped) when it does not fit or the log is closed."""
        rows = entry.rows
        with self._ready:
            closed = self._stop.is_set()
            accepted = not closed and self._pending + rows <= self.max_rows
            if accepted:
                self._entries.append(entry)
                self._pending += rows
                self._ready.notify()
        if isinstance(entry, PredictionBatch):
            if accepted:
                if self._on_unwritten is not None:
                    self._on_unwritten(rows)
            else:
                # A queue full because the database is down is the outage's loss, not the traffic's.
                reason = CLOSED if closed else QUEUE_FULL if self.writer.database_up else DATABASE_UNAVAILABLE
                self._count_drop(rows, reason)
        return accepted

    def pending(self) -> int:
        """Rows queued but not yet written."""
        return self._pending

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting entries, write everything still queued (or count it as dropped while the database is
        down), and join the writer."""
        with self._ready:
            self._stop.set()
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        # Whatever the writer did not reach (never started, or timed out) is written here.
        while batch := self._take(block=False):
            self._write(batch)

    def _count_drop(self, n: int, reason: str) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n, reason)

    def _drop(self, n: int, reason: str) -> None:
        """Accepted rows the writer could not write."""
        self._count_drop(n, reason)
        if self._on_unwritten is not None:
            self._on_unwritten(-n)

    def _written(self, n: int) -> None:
        self.written += n
        if self._on_unwritten is not None:
            self._on_unwritten(-n)
        if self._on_write is not None:
            self._on_write(n)

    def _take(self, block: bool) -> list[Entry]:
        """Whole entries up to `batch_rows` rows (at least one entry, however large)."""
        with self._ready:
            if block and not self._entries:
                self._ready.wait(self.flush_seconds)
            taken: list[Entry] = []
            rows = 0
            while self._entries and (not taken or rows + self._entries[0].rows <= self.batch_rows):
                entry = self._entries.popleft()
                taken.append(entry)
                rows += entry.rows
            self._pending -= rows
        return taken

    def _run(self) -> None:
        while not self._stop.is_set():
            # While the database is down, rows wait in the queue as compact entries rather than being taken and
            # expanded into a transaction's tuples (about as large again) that could not be written anyway.
            if not self.writer.database_up and not self.writer.wait_for_database():
                break  # closing with the database down: the drain below counts what is queued
            batch = self._take(block=True)
            if batch:
                self._write(batch)
                # Let small trickles accumulate into fewer, larger transactions.
                if sum(e.rows for e in batch) < self.batch_rows:
                    self._stop.wait(min(self.flush_seconds, 0.05))
        while batch := self._take(block=False):
            self._write(batch)

    def _write(self, batch: list[Entry]) -> None:
        rows = Part([], [], [])
        for entry in batch:
            if isinstance(entry, PredictionBatch):
                rows.predictions.extend(entry.prediction_values())
                rows.shadows.extend(entry.shadow_values())
            else:
                rows.rejections.append({"time": entry.time, "reason": entry.reason, "count": entry.count})
        self.writer.write(rows)
