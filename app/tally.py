"""Tally: hot-path metric updates queued in process memory, written to their prometheus-client children in one go.

In multiprocess mode each prometheus-client `inc`/`observe` takes the module lock, asks the kernel for the pid
(fork check) and writes the mmapped file: 2–4 µs each; three calls per `/predict` go through the tally (request
count and latency, probability); 1–2 µs each in one process. The tally appends to a deque instead and
`flush` writes each touched child once: every FLUSH_SECONDS from its thread, whenever the registry is collected
(this process's `/metrics`, tests reading the registry) and at shutdown. So this process's own exposition is
exact; another worker's scrape sees this one's counts at most FLUSH_SECONDS late; a SIGKILLed worker loses what it
counted in its last FLUSH_SECONDS. What must be exact across workers at any moment is never tallied: requests in
flight, and the log's accounting — the scored-commit counter and the unwritten-rows gauge (app/metrics.py,
app/monitoring/prediction_log.py).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

FLUSH_SECONDS = 0.2  # Prometheus scrapes every 15–60 s: a 0.2 s lag is invisible there, and 5 wake-ups/s cost nothing
MAX_PENDING = 50_000  # updates held at most: beyond, the caller flushes (bounds memory when no thread runs)


class Tally:
    """Pending counter/gauge deltas and histogram observations: `add`/`observe` from any thread, `flush` applies."""

    def __init__(self) -> None:
        # deque append/popleft are atomic: the hot path takes no lock, and an update appended while a flush runs
        # is taken by that flush or the next, never lost.
        self._amounts: deque[tuple[Any, float]] = deque()  # (counter or gauge child, delta)
        self._observed: deque[tuple[Histogram, float]] = deque()  # (histogram child, value)
        self._bounds: dict[Histogram, list[float]] = {}
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, child: Any, amount: float = 1.0) -> None:
        """Add `amount` to a counter child (≥ 0) or a gauge child (any sign), at the next flush."""
        self._amounts.append((child, amount))
        if len(self._amounts) > MAX_PENDING:  # no thread flushing (an app run without its lifespan)
            self.flush()

    def observe(self, child: Histogram, value: float) -> None:
        """Observe `value` in a histogram child (no exemplars), at the next flush."""
        self._observed.append((child, value))
        if len(self._observed) > MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Write every pending update to its child (each touched child once)."""
        with self._flushing:  # one flush at a time: a collection waits for the thread's flush to finish writing
            self._flush()

    def _flush(self) -> None:
        amounts: dict[Any, float] = {}
        take = self._amounts.popleft
        while True:
            try:
                child, amount = take()
            except IndexError:
                break
            amounts[child] = amounts.get(child, 0.0) + amount
        for child, amount in amounts.items():
            if amount:
                child.inc(amount)
        observed: dict[Histogram, list[float]] = {}
        pop = self._observed.popleft
        while True:
            try:
                histogram, value = pop()
            except IndexError:
                break
            bounds = self._bounds.get(histogram)
            if bounds is None:
                bounds = self._bounds[histogram] = list(histogram._upper_bounds)  # ends with +Inf
            counts = observed.get(histogram)
            if counts is None:
                counts = observed[histogram] = [0.0] * (len(bounds) + 1)
            # The bucket prometheus-client's observe picks (the first bound ≥ value); NaN: only the sum, as there.
            if value == value:
                counts[bisect_left(bounds, value)] += 1.0
            counts[-1] += value
        for histogram, counts in observed.items():
            for bucket, n in zip(histogram._buckets, counts, strict=False):
                if n:
                    bucket.inc(n)
            histogram._sum.inc(counts[-1])

    def start(self) -> None:
        """Flush every FLUSH_SECONDS from a daemon thread until `stop` (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="metrics-tally", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()


def adder(child: Any) -> Callable[[float], None]:
    """The function that adds to a labelled counter or gauge child at once (its value's own `inc`, with the lock and,
    in multiprocess mode, the file write): what `child.inc` calls after checking, per call, that the child is labelled
    and the amount allowed — fixed for the hot path's children and amounts, so checked once here instead."""
    child.inc(0)  # the checks `inc` makes (labelled, not a `mostrecent` gauge), once
    add: Callable[[float], None] = child._value.inc
    return add


class FlushOnCollect:
    """A collector without samples whose collection flushes a tally; registered first, so every collection of
    the registry (exposition, `get_sample_value`) reads the values with the pending updates applied."""

    def __init__(self, tally: Tally, registry: CollectorRegistry) -> None:
        self.tally = tally
        registry.register(self)

    def collect(self) -> Iterable[Any]:
        """Flush; no metrics of its own."""
        self.tally.flush()
        return ()
