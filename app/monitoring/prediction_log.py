"""The write-behind prediction log: a queue bounded in rows, drained in transactions by one writer thread."""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import threading
from collections import deque
from collections.abc import Callable

from app.monitoring.availability import Availability
from app.monitoring.entries import BLOCK_ROWS, Entry, PredictionBatch, PredictionBlock, rows_of
from app.monitoring.entries import RejectionRecord as RejectionRecord  # re-exported: importers use the log's name
from app.monitoring.entries import ShadowScores as ShadowScores
from app.monitoring.entries import request_ids as request_ids
from app.monitoring.pacer import Pacer
from app.monitoring.store import Store
from app.monitoring.writer import CLOSED, DATABASE_UNAVAILABLE, QUEUE_FULL, LogWriter, Packed

# The writer thread holds the GIL while it turns entries into rows; a request that gave the GIL up (onnxruntime
# releases it) waits until the writer blocks or this interval ends. Python's default, 5 ms, is a whole request's
# latency budget; 1 ms bounds that wait (lowered only, never raised: an operator's lower value stays).
SWITCH_INTERVAL = 0.001
# While the database is down (and while what it held is written back) the writer packs queued rows into buffers of
# PACK_ROWS rows (`Packed`): ≈ 210 kB and ≈ 1 ms of pickling each, the GIL held about a switch interval. It writes
# them back HELD_ROWS per transaction: 2,000 rows' tuples are ≈ 1.5 MB of small objects at once, 10,000 were ≈ 7 MB,
# a high-water mark that stayed in pymalloc's arenas (bench/queue_memory.py: RSS +3.5 vs +11.8 MB after the outage,
# written back in 8.6 vs 5.7 s).
PACK_ROWS = 1_000
HELD_ROWS = 2_000
# After a transaction smaller than the batch, the writer gathers rows for `flush_seconds`, at most this long (it was
# 0.05 s). Each transaction writes every index page its rows touched: with a fleet's commits (a new SHA each, many
# repositories) a row cost SQLite ~150 µs in 200-row transactions and ~80 µs in 2,000-row ones, and the writer
# thread took 30 % of a loaded worker's samples at 0.05 s, 23 % at 0.5 s (bench/fleet_commits.py measures it).
ACCUMULATE_SECONDS = 0.5


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


# Where a route hands its answered batch (app/main.py chains shadow scoring in front of the log); never blocks.
Sink = Callable[[PredictionBatch], object]


class PredictionLog:
    """Never blocks a request: `submit` appends under a short lock; past `max_rows` queued rows it drops and counts.

    A single-commit request without shadows (`/predict`) is copied into the open `PredictionBlock` instead of
    being queued itself; a block joins the queue when full, when another kind of entry arrives (order is kept) and
    when the writer takes the queue.

    The writer thread hands whole transactions to `LogWriter` (app/monitoring/writer.py), which isolates rows the
    database refuses and holds its rows through an outage; `written + dropped` is every prediction submitted.
    While the database is down (and while what it held is written back) the writer packs the queued rows,
    `pack_rows` at a time (0: never), into buffers (`Packed`) that leave no small objects behind; they are written
    first, in order, `HELD_ROWS` per transaction.
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
        pack_rows: int = PACK_ROWS,
    ) -> None:
        self.store = store
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.pack_rows = pack_rows
        self.dropped = 0
        self.written = 0
        self._entries: deque[Entry] = deque()
        # Where single commits gather (None until the first): no more rows than a transaction or a packed buffer.
        self._block: PredictionBlock | None = None
        self._block_rows = min(BLOCK_ROWS, batch_rows, pack_rows or BLOCK_ROWS)
        self._held: deque[Entry | Packed] = deque()  # packed while the database was down: older than `_entries`
        self._held_rows = 0
        self._pending = 0  # rows in both
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        # The writer is blocked in `_ready.wait` (set and read under the lock): only then does `submit` notify, since
        # Condition.notify and its `with` are Python-level calls (~2 µs a request) that usually wake no one.
        self._waiting = False
        self._on_drop = on_drop
        self._on_write = on_write
        # Prediction rows accepted and not yet settled (written or dropped), as deltas: a gauge that outlives a
        # killed worker, so its loss is still counted (app/metrics.py, `forget_dead_processes`).
        self._on_unwritten = on_unwritten
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Pauses between slices of the writer's work while the queue holds less than a transaction (pacer.py).
        self.pacer = Pacer(relaxed=lambda: self._pending < self.batch_rows)
        self.writer = LogWriter(
            store, self._stop, self._written, self._drop, availability, retry_seconds, self._pack, self.pacer
        )

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
        with self._lock:
            closed = self._stop.is_set()
            accepted = not closed and self._pending + rows <= self.max_rows
            if accepted:
                if rows == 1 and type(entry) is PredictionBatch and not entry.shadows:
                    block = self._block
                    if block is None:
                        block = self._block = PredictionBlock(self._block_rows)
                    block.add(entry)
                    if block.full:
                        self._entries.append(block)
                        self._block = None
                else:
                    self._close_block()
                    self._entries.append(entry)
                self._pending += rows
                if self._waiting:
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

    def _close_block(self) -> None:
        """Queue the open block, if it holds rows (the lock held)."""
        if self._block is not None and self._block.rows:
            self._entries.append(self._block)
            self._block = None

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

    def _take(self, block: bool) -> list[Entry | Packed]:
        """Whole entries up to `batch_rows` rows (at least one entry, however large); held (packed) ones first, up
        to `HELD_ROWS` rows."""
        taken: list[Entry | Packed] = []
        with self._ready:
            self._close_block()
            if block and not self._entries and not self._held:
                self._waiting = True
                self._ready.wait(self.flush_seconds)
                self._waiting = False
                self._close_block()
            held = bool(self._held)
            if not held and self._pending <= self.batch_rows:
                # Everything queued fits one transaction (the usual case): the queue is taken whole, in C. Popped entry
                # by entry, it held the lock (and so every request's `submit`) ~0.5 µs per entry: 2 ms for 4,000.
                taken = list(self._entries)
                self._entries.clear()
                self._pending = 0
            else:
                queue, limit = (
                    (self._held, min(HELD_ROWS, self.batch_rows)) if held else (self._entries, self.batch_rows)
                )
                rows = 0
                while queue and (not taken or rows + queue[0].rows <= limit):
                    taken.append(queue.popleft())
                    rows += taken[-1].rows
                if held:
                    self._held_rows -= rows
                self._pending -= rows
        return taken

    def _pack(self) -> None:
        """Pack the queued entries, `pack_rows` rows per buffer (at most `batch_rows`: a buffer is written whole),
        oldest first; entries too few for a buffer stay queued."""
        size = min(self.pack_rows, self.batch_rows)
        with self._ready:
            self._close_block()
            if not size or self._pending - self._held_rows < size:
                return
            entries, self._entries = self._entries, deque()
        # Outside the lock, so requests keep appending meanwhile; only this thread takes entries.
        held: list[Entry | Packed] = []
        run: list[Entry] = []
        rows = 0
        for entry in entries:
            run.append(entry)
            rows += entry.rows
            if rows >= size:
                try:
                    held.append(rows_of(run).pack(rows))
                except Exception:  # a value pickle cannot hold: these entries wait as they are (and are written)
                    held.extend(run)
                run, rows = [], 0
        with self._ready:
            self._held.extend(held)
            self._held_rows += sum(entry.rows for entry in held)
            self._entries.extendleft(reversed(run))  # too few rows for a buffer yet: back in front, in order

    def _run(self) -> None:
        while not self._stop.is_set():
            # While the database is down, rows wait in the queue (packed: `_pack`) rather than being taken and
            # expanded into a transaction's tuples (about as large again) that could not be written anyway.
            if not self.writer.database_up and not self.writer.wait_for_database():
                break  # closing with the database down: the drain below counts what is queued
            if self._held:  # writing what an outage held: what arrives meanwhile is packed behind it, too
                self._pack()
            batch = self._take(block=True)
            if batch:
                self._write(batch)
                # Let small trickles accumulate into fewer, larger transactions.
                if sum(e.rows for e in batch) < self.batch_rows and not self._held:
                    self._stop.wait(min(self.flush_seconds, ACCUMULATE_SECONDS))
        while batch := self._take(block=False):
            self._write(batch)

    def _write(self, batch: list[Entry | Packed]) -> None:
        self.writer.write(rows_of(batch, self.pacer))
