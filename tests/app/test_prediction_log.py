"""The write-behind log: batches reach the database, shutdown flushes everything, a full queue drops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from app.contract import FEATURES
from app.prediction_log import PredictionLog, PredictionRecord, RejectionRecord
from app.store import Store
from app.tables import predictions
from tests.conftest import Database


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    s = Store.open(database.url, schema=database.schema)
    yield s
    s.close()


def record(i: int) -> PredictionRecord:
    return PredictionRecord(
        time=1000.0 + i,
        request_id=f"r{i}",
        commit_id=f"c{i}",
        repository=None,
        features=[float(i)] * len(FEATURES),
        probability=0.25,
        label=False,
        risk_band="low",
        model_version=3,
        shadow_version=4,
        shadow_probability=0.5,
    )


def test_shutdown_flushes_every_queued_record(store: Store) -> None:
    # A long flush interval and huge batches: nothing is written before close() unless close flushes.
    log = PredictionLog(store, max_queue=20_000, batch_size=100_000, flush_seconds=60.0)
    log.start()
    for i in range(5000):
        assert log.submit(record(i))
    log.submit(RejectionRecord(time=2000.0, reason="invalid_input", count=2))
    log.close()
    assert store.count_predictions() == 5000
    assert log.dropped == 0 and log.written == 5000 and log.pending() == 0
    assert store.rejection_counts(since=0) == {"invalid_input": 2}
    window = store.window(rows=1)
    assert window.commit_id == ["c4999"] and window.features["la"][0] == 4999.0


def test_writer_drains_in_batches_while_running(store: Store) -> None:
    written: list[int] = []
    log = PredictionLog(store, batch_size=7, flush_seconds=0.05, on_write=written.append)
    log.start()
    for i in range(20):
        log.submit(record(i))
    deadline = time.monotonic() + 10
    while store.count_predictions() < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    log.close()
    assert store.count_predictions() == 20
    assert max(written) <= 7 and sum(written) == 20


def test_full_queue_drops_without_blocking_and_counts(store: Store) -> None:
    drops: list[int] = []
    log = PredictionLog(store, max_queue=10, on_drop=drops.append)  # writer not started: the queue fills
    accepted = [log.submit(record(i)) for i in range(25)]
    assert accepted.count(True) == 10 and log.dropped == 15 and sum(drops) == 15
    log.close()  # still writes the 10 it accepted
    assert store.count_predictions() == 10
    assert log.submit(record(99)) is False  # closed: refused and counted, never raises
    assert log.dropped == 16


def test_database_failure_is_counted_not_raised(store: Store) -> None:
    with store.engine.begin() as conn:  # a real failure: the table the writer appends to is gone
        predictions.drop(conn)
    log = PredictionLog(store, flush_seconds=0.01)
    log.start()
    assert log.submit(record(1))
    deadline = time.monotonic() + 10
    while log.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close()
    assert log.dropped == 1 and log.written == 0


def test_submit_from_many_threads_loses_nothing(store: Store) -> None:
    log = PredictionLog(store, batch_size=50, flush_seconds=0.01)
    log.start()
    threads = [
        threading.Thread(target=lambda k=k: [log.submit(record(k * 1000 + i)) for i in range(300)]) for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert store.count_predictions() == 1200 and log.dropped == 0


def test_close_of_an_idle_writer_returns_promptly(store: Store) -> None:
    log = PredictionLog(store, flush_seconds=3600)  # the writer idles in a one-hour get()
    log.start()
    writer = log._thread
    assert writer is not None
    log.close(timeout=5)
    assert not writer.is_alive()  # the wake-up record ended the wait, not the hour
    assert store.count_predictions() == 0 and store.rejection_counts(since=0) == {}
