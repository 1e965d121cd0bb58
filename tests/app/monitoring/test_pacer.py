"""The writer's pacer: a pause once a slice of CPU time is used up, none while the queue is long, and a paced log
still writes every row."""

from __future__ import annotations

import time

from app.monitoring.pacer import Pacer, unpaced
from app.monitoring.prediction_log import PredictionLog
from app.monitoring.store import Store
from tests.app.monitoring.test_prediction_log import record


def burn(seconds: float) -> None:
    """Use `seconds` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_no_pause_before_a_slice_of_cpu_time_is_used() -> None:
    pace = Pacer(slice_seconds=0.5, pause_seconds=1.0)
    started = time.monotonic()
    for _ in range(100):
        pace()
    assert pace.pauses == 0 and time.monotonic() - started < 0.5


def test_a_used_up_slice_pauses_once_then_starts_a_new_slice() -> None:
    pace = Pacer(slice_seconds=0.002, pause_seconds=0.02)
    burn(0.003)
    started = time.monotonic()
    pace()
    assert pace.pauses == 1 and time.monotonic() - started >= 0.02
    pace()  # the pause itself used no CPU time: a new slice has begun
    assert pace.pauses == 1


def test_a_long_queue_is_never_paused_for() -> None:
    long_queue = Pacer(relaxed=lambda: False, slice_seconds=0.001, pause_seconds=1.0)
    started = time.monotonic()
    for _ in range(5):
        burn(0.002)
        long_queue()
    assert long_queue.pauses == 0 and time.monotonic() - started < 1.0


def test_unpaced_returns_at_once() -> None:
    assert unpaced() is None


def test_a_paced_log_writes_every_row_and_pauses_only_while_its_queue_is_short(store: Store) -> None:
    log = PredictionLog(store, batch_rows=10_000, flush_seconds=0.05)
    log.pacer.slice_seconds = 0.0  # every call of the pace is a slice used up
    log.start()
    for i in range(3_000):
        log.submit(record(i))
    log.close()
    assert store.count_predictions() == 3_000 and log.written == 3_000 and log.dropped == 0
    assert log.pacer.pauses > 0
    short = log.pacer.pauses

    backlog = PredictionLog(store, batch_rows=100, flush_seconds=0.05)
    backlog.pacer.slice_seconds = 0.0
    for i in range(3_000, 6_000):  # queued before the writer starts: far more rows than one transaction
        backlog.submit(record(i))
    backlog.close()  # drains the queue in 30 transactions of 100 rows, paced only for the last one
    assert store.count_predictions() == 6_000 and backlog.written == 3_000
    assert backlog.pacer.pauses < short
