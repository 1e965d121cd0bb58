"""The write-behind prediction log: a bounded queue drained in batches by one writer thread."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One served prediction as the route saw it; turned into a row by the writer, off the hot path."""

    time: float
    request_id: str | None
    commit_id: str | None
    repository: str | None
    features: Sequence[float]
    probability: float
    label: bool
    risk_band: str
    model_version: int
    shadow_version: int | None = None
    shadow_probability: float | None = None

    def values(self) -> tuple[Any, ...]:
        """The `predictions` row in `PREDICTION_COLUMNS` order."""
        return (
            self.time, self.request_id, self.commit_id, self.repository, *self.features,
            self.probability, bool(self.label), self.risk_band, self.model_version, self.shadow_version,
            self.shadow_probability,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    """Inputs refused before scoring, counted by reason for the data-quality view."""

    time: float
    reason: str
    count: int = 1


Record = PredictionRecord | RejectionRecord
_WAKE = RejectionRecord(time=0.0, reason="", count=0)  # queued by close(); never written


class PredictionLog:
    """Never blocks a request: `submit` is a `put_nowait`; a full queue drops the record and counts it."""

    def __init__(
        self,
        store: Store,
        max_queue: int = 50_000,
        batch_size: int = 1000,
        flush_seconds: float = 0.5,
        on_drop: Callable[[int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[Record] = queue.Queue(maxsize=max_queue)
        self._on_drop = on_drop
        self._on_write = on_write
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
            self._thread.start()

    def submit(self, record: Record) -> bool:
        """Queue one record; False (and a counted drop) when the queue is full or the log is closed."""
        if self._stop.is_set():
            self._drop(1)
            return False
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._drop(1)
            return False
        return True

    def pending(self) -> int:
        """Records queued but not yet written."""
        return self._queue.qsize()

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting records, write everything still queued, and join the writer."""
        self._stop.set()
        with contextlib.suppress(queue.Full):  # wake a writer idling in get(); a full queue wakes it anyway
            self._queue.put_nowait(_WAKE)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        # Whatever the writer did not reach (never started, or timed out) is written here.
        while not self._queue.empty():
            self._write(self._take(block=False))

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    def _take(self, block: bool) -> list[Record]:
        batch: list[Record] = []
        try:
            if block:
                batch.append(self._queue.get(timeout=self.flush_seconds))
            while len(batch) < self.batch_size:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take(block=True)
            if batch:
                self._write(batch)
                # Let small trickles accumulate into fewer, larger transactions.
                if len(batch) < self.batch_size:
                    self._stop.wait(min(self.flush_seconds, 0.05))
        while not self._queue.empty():
            self._write(self._take(block=False))

    def _write(self, batch: list[Record]) -> None:
        if not batch:
            return
        predictions = [r.values() for r in batch if isinstance(r, PredictionRecord)]
        rejected = [
            {"time": r.time, "reason": r.reason, "count": r.count}
            for r in batch
            if isinstance(r, RejectionRecord) and r is not _WAKE
        ]
        try:
            self.store.append_predictions(predictions)
            self.store.insert_rejections(rejected)
        except Exception:
            # A database outage must not kill the writer: the batch is lost but counted.
            log.exception("prediction log: writing %d records failed", len(batch))
            self._drop(len(batch))
            time.sleep(min(self.flush_seconds, 1.0))
            return
        self.written += len(predictions)
        if self._on_write is not None:
            self._on_write(len(predictions))
