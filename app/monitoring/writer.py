"""The prediction log's database side: one transaction per batch, and nothing lost to a neighbour or an outage.

- A row the database refuses (a value it cannot store, a constraint) fails the whole transaction, so the writer
  halves the batch and retries each half until the refused rows stand alone; only those are dropped (reason
  `refused`), every clean row of the batch is written. A clean batch costs one transaction, as before.
- An outage (connection refused or lost, database locked or full; `database.is_outage`) holds the batch: the
  writer waits for the database (checking every `retry_seconds`) and writes it when it is back, while the
  queue in front keeps accepting rows up to its bound. Only a shutdown while the database is still down drops
  what is held (reason `database_unavailable`), so SIGTERM never waits on a dead database.
- Exactly once: every transaction carries a receipt row (`log_receipts`) and deletes the previous one; when the
  connection breaks during a COMMIT, the writer asks for the receipt before writing the rows again.
- While it waits for the database, the writer calls `on_hold` (the queue packs the rows it holds: `Packed`).
"""

from __future__ import annotations

import logging
import pickle
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.monitoring import database
from app.monitoring.availability import Availability
from app.monitoring.pacer import unpaced
from app.monitoring.store import Store

log = logging.getLogger("commitrisk.prediction_log")

# Why a row was not logged (the `reason` label of commitrisk_prediction_log_dropped_total).
QUEUE_FULL = "queue_full"  # more rows queued than COMMITRISK_LOG_QUEUE_SIZE while the database was up
DATABASE_UNAVAILABLE = "database_unavailable"  # the queue filled during an outage, or shutdown came first
REFUSED = "refused"  # the database refused this one row (its neighbours were written)
CLOSED = "closed"  # answered after the log was closed (shutdown)
# The worker died (SIGKILL, OOM) with these rows queued or in an unfinished transaction: counted by the worker
# whose /metrics scrape first finds it dead (app/metrics.py, `forget_dead_processes`).
WORKER_LOST = "worker_lost"
DROP_REASONS = (QUEUE_FULL, DATABASE_UNAVAILABLE, REFUSED, CLOSED, WORKER_LOST)


@dataclass(frozen=True, slots=True)
class Part:
    """Rows written in one transaction: predictions, shadow pairs and rejection counts."""

    predictions: list[tuple[Any, ...]]
    shadows: list[tuple[Any, ...]]
    rejections: list[dict[str, Any]]

    @property
    def size(self) -> int:
        """Rows of every kind."""
        return len(self.predictions) + len(self.shadows) + len(self.rejections)

    def halves(self) -> tuple[Part, Part]:
        """Two parts of (nearly) equal size, rows in order."""
        tagged = [
            *((0, row) for row in self.predictions),
            *((1, row) for row in self.shadows),
            *((2, row) for row in self.rejections),
        ]
        middle = len(tagged) // 2
        return _regroup(tagged[:middle]), _regroup(tagged[middle:])

    def pack(self, rows: int) -> Packed:
        """These rows as one buffer; `rows`: their share of the queue's bound."""
        return Packed(rows, pickle.dumps((self.predictions, self.shadows, self.rejections), pickle.HIGHEST_PROTOCOL))


@dataclass(frozen=True, slots=True)
class Packed:
    """A `Part` held as one pickled buffer (while the database is down, and until what it held is written back).

    A held single-commit request is ≈ 1 kB of small objects (tuples, floats, strings, array headers) in pymalloc's
    arenas, which go back to the OS only when every object in them is freed: an outage's 50,000 held rows,
    interleaved with whatever else the worker keeps meanwhile, stayed in the RSS for good (bench/queue_memory.py).
    Pickled (≈ 210 bytes a row, one malloc'ed block per 1,000 rows), they leave nothing behind once written;
    pickle, unlike marshal, gives back values of the very types it was given (a numpy scalar stays one): the same rows.
    """

    rows: int
    data: bytes

    def unpack(self) -> Part:
        """The rows, as they were packed."""
        predictions, shadows, rejections = pickle.loads(self.data)
        return Part(predictions, shadows, rejections)


def _regroup(tagged: list[tuple[int, Any]]) -> Part:
    part = Part([], [], [])
    columns: tuple[list[Any], ...] = (part.predictions, part.shadows, part.rejections)
    for kind, row in tagged:
        columns[kind].append(row)
    return part


class LogWriter:
    """Writes queued entries; `on_write(n)` / `on_drop(n, reason)` count predictions (never shadow pairs)."""

    def __init__(
        self,
        store: Store,
        closing: threading.Event,
        on_write: Callable[[int], None],
        on_drop: Callable[[int, str], None],
        availability: Availability | None = None,
        retry_seconds: float = 1.0,
        on_hold: Callable[[], object] | None = None,
        pace: Callable[[], None] = unpaced,
    ) -> None:
        self.store = store
        self.pace = pace
        self.availability = availability
        self.retry_seconds = retry_seconds
        self._on_hold = on_hold
        self._closing = closing
        self._on_write = on_write
        self._on_drop = on_drop
        self._final_check_done = False
        self._receipt: str | None = None  # the newest committed receipt: the next transaction deletes it

    @property
    def database_up(self) -> bool:
        """What the writer believes (True without an availability to ask)."""
        return self.availability is None or self.availability.up

    def write(self, rows: Part) -> None:
        """Write `rows`: refused rows isolated and dropped, the rest written, held through an outage."""
        parts = deque([rows])
        down = not self.database_up
        # The receipt of the head part's last attempt when that attempt met an outage: its COMMIT may have landed
        # before the connection broke, so the database is asked (`landed`) before the rows are written again.
        pending: str | None = None
        while parts:
            if down:
                if not self.wait_for_database():
                    self._on_drop(sum(len(p.predictions) for p in parts), DATABASE_UNAVAILABLE)
                    return
                down = False
            part = parts.popleft()
            if not part.size:
                continue
            try:
                if not (pending is not None and self.store.landed(pending)):  # not written before the connection broke
                    receipt = uuid.uuid4().hex
                    pending = receipt
                    self.store.append_log(
                        part.predictions, part.shadows, part.rejections, receipt, self._receipt, self.pace
                    )
                self._receipt, pending = pending, None
            except Exception as exc:
                if database.is_outage(exc):
                    parts.appendleft(part)  # `pending` stays: asked first when the database is back
                    down = True
                    self._outage(exc)
                elif part.size == 1:
                    self._refuse(part, exc)
                    pending = None
                else:  # somewhere in this part is a row the database refuses: halve until it stands alone
                    first, second = part.halves()
                    parts.extendleft((second, first))
                    pending = None
                continue
            if part.predictions:
                self._on_write(len(part.predictions))

    def _outage(self, exc: BaseException) -> None:
        if self.availability is not None:
            self.availability.mark_down(exc)
        else:
            log.warning("prediction log: database unavailable, holding the rows: %s", database.describe(exc))

    def wait_for_database(self) -> bool:
        """Hold the rows until the database answers again (calling `on_hold` before each wait); False (give up)
        when the log closes meanwhile."""
        while True:
            if self._on_hold is not None and not self._closing.is_set():
                self._on_hold()
            if self._closing.wait(self.retry_seconds):
                break
            if self.availability is None or self.availability.check():
                return True
        # Closing: one last check, so a database that came back since still gets every held row; after that
        # (or with the database still down) the rest is dropped at once — shutdown must not wait on it.
        if self._final_check_done:
            return False
        self._final_check_done = True
        return self.availability is None or self.availability.check()

    def _refuse(self, part: Part, exc: BaseException) -> None:
        kind = "prediction" if part.predictions else "shadow pair" if part.shadows else "rejection count"
        log.warning("prediction log: the database refused one %s row, dropped it: %s", kind, database.describe(exc))
        if part.predictions:
            self._on_drop(len(part.predictions), REFUSED)
