"""How the prediction log's writer thread shares the GIL with the request threads: short slices, then a pause.

Turning a few thousand queued requests into rows and binding them to INSERT statements is ~10 ms of Python and C
that holds the GIL (bench/serve.py: one write every `ACCUMULATE_SECONDS` under load). Left to the interpreter's
switch interval the writer takes every other millisecond from the event loop for as long as it works, so each
request that overlaps a write waits for about half of it: `/predict` p99 went from ~8 ms to ~16 ms when writes
grew from 0.05 s to 0.5 s of rows. Paced, the writer works `slice_seconds` of CPU time and then sleeps
`pause_seconds`, so a request overlapping a write is delayed by a fraction of the write's work, not half of it.
The same CPU time is spent; a write just takes longer in wall time.

Only while the queue is short: once more rows wait than one transaction holds (`relaxed()` false: bulk traffic,
or an outage's backlog being written back), pausing would make the log fall behind and drop rows, so the writer
runs flat out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLICE_SECONDS = 0.0005  # about a switch interval (prediction_log.SWITCH_INTERVAL): the GIL is taken in steps of it
PAUSE_SECONDS = 0.0015  # the writer holds at most ~1/4 of the GIL while it writes


class Pacer:
    """Called by the writer thread between small pieces of work: sleeps once a slice of CPU time is used up."""

    def __init__(
        self,
        relaxed: Callable[[], bool] = lambda: True,
        slice_seconds: float = SLICE_SECONDS,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        self.relaxed = relaxed
        self.slice_seconds = slice_seconds
        self.pause_seconds = pause_seconds
        self.pauses = 0
        self._since = time.thread_time()

    def __call__(self) -> None:
        """Pause (`pause_seconds`) if this thread used `slice_seconds` of CPU since the last pause and the queue
        is short; otherwise return at once."""
        now = time.thread_time()
        used = now - self._since
        if 0 <= used < self.slice_seconds:
            return
        if used < 0:  # `_since` was read on another thread (the one that made this pacer): a clock of its own
            self._since = now
            return
        if self.relaxed():
            time.sleep(self.pause_seconds)
            self.pauses += 1
            now = time.thread_time()
        self._since = now


def unpaced() -> None:
    """A pace that never pauses (callers without a writer thread: tests, the drain at close)."""
