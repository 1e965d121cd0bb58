"""The write-behind log: batches reach the database, shutdown flushes everything, a full queue drops, rows held
through an outage are packed and written back unchanged."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.contract import FEATURES
from app.monitoring.availability import Availability
from app.monitoring.entries import Entry, PredictionBlock, rows_of
from app.monitoring.prediction_log import (
    HELD_ROWS,
    SWITCH_INTERVAL,
    PredictionBatch,
    PredictionLog,
    RejectionRecord,
    RequestIds,
    ShadowScores,
    request_ids,
)
from app.monitoring.store import Store
from app.monitoring.tables import predictions, rejections, shadow_predictions
from app.monitoring.writer import Packed
from tests.support import Database, TcpProxy, wait_for


def record(i: int, rows: int = 1, shadows: tuple[ShadowScores, ...] = ()) -> PredictionBatch:
    """A request answering `rows` commits (`c<i>`, `c<i+1>`…) with features equal to the commit number."""
    numbers = np.arange(i, i + rows, dtype=np.float64)
    return PredictionBatch(
        time=1000.0 + i,
        request_id=f"r{i}",
        features=np.repeat(numbers[:, None], len(FEATURES), axis=1),
        probabilities=np.full(rows, 0.25),
        labels=np.zeros(rows, dtype=bool),
        risk_bands=["low"] * rows,
        model_version=3,
        commit_ids=[f"c{k}" for k in range(i, i + rows)],
        repositories=[None] * rows,
        shadows=shadows,
    )


def test_request_ids_match_what_answers_carry() -> None:
    assert request_ids("abc", 1) == ["abc"]
    assert request_ids("abc", 3) == ["abc-0", "abc-1", "abc-2"]
    assert request_ids(None, 2) == [None, None]


def test_a_batch_becomes_rows_and_one_shadow_row_per_commit_and_shadow(store: Store) -> None:
    shadows = (ShadowScores(4, np.array([0.5, 0.6, 0.7])), ShadowScores(5, np.array([0.1, 0.2, 0.3])))
    log = PredictionLog(store)
    log.submit(record(10, rows=3, shadows=shadows))
    log.close()
    with store.engine.connect() as conn:
        rows = conn.execute(select(predictions.c.request_id, predictions.c.commit_id, predictions.c.la)).all()
        pairs = conn.execute(
            select(
                shadow_predictions.c.request_id, shadow_predictions.c.commit_id, shadow_predictions.c.model_version,
                shadow_predictions.c.probability, shadow_predictions.c.shadow_version,
                shadow_predictions.c.shadow_probability,
            ).order_by(shadow_predictions.c.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("r10-0", "c10", 10.0), ("r10-1", "c11", 11.0), ("r10-2", "c12", 12.0)]
    assert [tuple(p) for p in pairs] == [
        ("r10-0", "c10", 3, 0.25, 4, 0.5), ("r10-1", "c11", 3, 0.25, 4, 0.6), ("r10-2", "c12", 3, 0.25, 4, 0.7),
        ("r10-0", "c10", 3, 0.25, 5, 0.1), ("r10-1", "c11", 3, 0.25, 5, 0.2), ("r10-2", "c12", 3, 0.25, 5, 0.3),
    ]  # fmt: skip
    assert log.written == 3


def test_shutdown_flushes_every_queued_record(store: Store) -> None:
    # A long flush interval and huge batches: nothing is written before close() unless close flushes.
    log = PredictionLog(store, max_rows=20_000, batch_rows=100_000, flush_seconds=60.0)
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
    log = PredictionLog(store, batch_rows=7, flush_seconds=0.05, on_write=written.append)
    log.start()
    for i in range(20):
        log.submit(record(i))
    deadline = time.monotonic() + 10
    while store.count_predictions() < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    log.close()
    assert store.count_predictions() == 20
    assert max(written) <= 7 and sum(written) == 20


def test_the_writer_takes_a_queue_that_fits_one_transaction_whole_else_up_to_the_batch(store: Store) -> None:
    log = PredictionLog(store, batch_rows=10)  # writer not started: the takes are the test's
    entries = [record(i) for i in range(10)]
    for entry in entries:
        log.submit(entry)
    taken = log._take(block=False)  # single commits come back gathered in a block: the same rows
    assert rows_of(taken) == rows_of(entries) and log.pending() == 0  # all of it, in order
    more = [record(i, rows=3) for i in range(5)]  # 15 rows: more than one transaction holds
    for entry in more:
        log.submit(entry)
    assert log._take(block=False) == more[:3] and log.pending() == 6  # whole entries, up to 10 rows
    assert log._take(block=False) == more[3:] and log.pending() == 0
    assert log._take(block=False) == []
    log.close()


def test_single_commits_gather_in_blocks_that_keep_their_place_among_other_entries(store: Store) -> None:
    log = PredictionLog(store, batch_rows=100)
    shadowed = record(20, shadows=(ShadowScores(4, np.array([0.5])),))
    entries: list[Entry] = [
        record(0),
        record(1),
        record(2, rows=3),
        RejectionRecord(5.0, "invalid_input"),
        record(6),
        shadowed,
        record(21),
    ]
    for entry in entries:
        log.submit(entry)
    taken = log._take(block=False)
    kinds = [type(entry).__name__ for entry in taken]
    assert kinds == ["PredictionBlock", "PredictionBatch", "RejectionRecord", "PredictionBlock", "PredictionBatch",
                     "PredictionBlock"]  # fmt: skip
    assert [entry.rows for entry in taken] == [2, 3, 1, 1, 1, 1]
    assert rows_of(taken) == rows_of(entries) and log.pending() == 0
    log.close()


def test_a_block_holds_no_more_rows_than_one_transaction(store: Store) -> None:
    log = PredictionLog(store, batch_rows=7)
    entries = [record(i) for i in range(20)]
    for entry in entries:
        log.submit(entry)
    taken = [log._take(block=False) for _ in range(4)]
    assert [[entry.rows for entry in part] for part in taken] == [[7], [7], [6], []]
    assert rows_of([entry for part in taken for entry in part]) == rows_of(entries)
    log.close()


def test_a_queued_single_commit_keeps_none_of_the_request_s_objects_alive(store: Store) -> None:
    log = PredictionLog(store)
    entry = record(1)
    arrays = (entry.features, entry.probabilities, entry.labels)
    before = [sys.getrefcount(a) for a in (entry, *arrays)]
    assert log.submit(entry)
    assert [sys.getrefcount(a) for a in (entry, *arrays)] == before  # copied into the block, not referenced
    assert isinstance(log._take(block=False)[0], PredictionBlock)
    log.close()


def test_full_queue_drops_without_blocking_and_counts(store: Store) -> None:
    drops: list[tuple[int, str]] = []
    log = PredictionLog(store, max_rows=10, on_drop=lambda n, reason: drops.append((n, reason)))  # writer not started
    accepted = [log.submit(record(i)) for i in range(25)]
    assert accepted.count(True) == 10 and log.dropped == 15 and drops == [(1, "queue_full")] * 15
    log.close()  # still writes the 10 it accepted
    assert store.count_predictions() == 10
    assert log.submit(record(99)) is False  # closed: refused and counted, never raises
    assert log.dropped == 16


def test_the_queue_is_bounded_in_rows_not_requests(store: Store) -> None:
    log = PredictionLog(store, max_rows=1000)  # writer not started
    assert log.submit(record(0, rows=600))
    assert not log.submit(record(600, rows=600))  # would exceed 1000 queued rows: the whole request drops
    assert log.submit(record(1200, rows=400))
    assert log.pending() == 1000 and log.dropped == 600
    log.close()
    assert store.count_predictions() == 1000


def test_a_large_request_is_written_whole_across_small_transactions(store: Store) -> None:
    written: list[int] = []
    log = PredictionLog(store, batch_rows=100, on_write=written.append)
    log.start()
    log.submit(record(0, rows=1500))  # larger than one transaction's share: taken alone, chunked by the store
    log.submit(record(2000, rows=50))
    log.close()
    assert store.count_predictions() == 1550 and sorted(written) == [50, 1500]


def test_a_row_the_database_refuses_loses_none_of_the_other_requests(store: Store) -> None:
    # Issue 13: 30 clean requests, one the database refuses, 30 more — all in the same transaction.
    drops: list[tuple[int, str]] = []
    log = PredictionLog(store, flush_seconds=3600, on_drop=lambda n, reason: drops.append((n, reason)))
    for i in range(30):
        log.submit(record(i))
    poison = record(30)
    if store.engine.dialect.name == "postgresql":  # PostgreSQL refuses NUL in text
        poison = replace(poison, commit_ids=["a\x00b"])
    else:  # SQLite stores NaN as NULL, which the NOT NULL probability refuses
        poison = replace(poison, probabilities=np.array([np.nan]))
    log.submit(poison)
    for i in range(31, 61):
        log.submit(record(i))
    log.close()  # one batch of 61 rows: the writer isolates the refused one
    assert store.count_predictions() == 60 and log.written == 60
    assert log.dropped == 1 and drops == [(1, "refused")]


def test_a_database_down_at_shutdown_costs_the_held_rows_not_the_shutdown(tmp_path: Path) -> None:
    store = Store.unopened(f"sqlite:///{tmp_path / 'missing' / 'm.db'}")
    availability = Availability(store, check_seconds=3600)
    assert not availability.check()
    drops: list[tuple[int, str]] = []
    log = PredictionLog(
        store, max_rows=5, availability=availability, retry_seconds=3600,
        on_drop=lambda n, reason: drops.append((n, reason)),
    )  # fmt: skip
    log.start()
    accepted = [log.submit(record(i)) for i in range(8)]
    assert accepted.count(True) == 5  # the queue holds rows through the outage, up to its bound …
    assert drops == [(1, "database_unavailable")] * 3  # … and counts the rest as the outage's loss
    log.close(timeout=30)  # neither the one-hour retry nor the dead database holds the shutdown
    assert log._thread is None and log.written == 0 and log.dropped == 8
    assert sum(n for n, _ in drops) == 8 and {reason for _, reason in drops} == {"database_unavailable"}
    store.close()


def test_submit_from_many_threads_loses_nothing(store: Store) -> None:
    log = PredictionLog(store, batch_rows=50, flush_seconds=0.01)
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
    assert not writer.is_alive()  # close() notified the waiting writer: no hour-long wait
    assert store.count_predictions() == 0 and store.rejection_counts(since=0) == {}


def test_request_ids_are_unique_unpredictable_hex_and_new_after_a_fork() -> None:
    ids = RequestIds()
    drawn = [ids() for _ in range(10_000)]
    assert len(set(drawn)) == len(drawn) and all(len(i) == 32 and int(i, 16) >= 0 for i in drawn)
    assert RequestIds()() not in drawn  # another process's key: another sequence
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child's first id must not repeat the parent's next one
        os.write(write, ids().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() != ids()


def test_starting_the_writer_lowers_the_switch_interval_never_raises_it(store: Store) -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        log = PredictionLog(store)
        log.start()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        log.close()
        sys.setswitchinterval(0.0002)  # an operator's lower value stays
        log = PredictionLog(store)
        log.start()
        assert sys.getswitchinterval() == pytest.approx(0.0002)
        log.close()
    finally:
        sys.setswitchinterval(before)


def test_unwritten_rows_rise_on_accept_and_fall_as_rows_are_written_or_dropped(store: Store) -> None:
    # The deltas feed a per-process gauge that outlives a killed worker (app/metrics.py counts it as lost).
    unwritten: list[int] = []
    log = PredictionLog(store, max_rows=10, on_unwritten=unwritten.append)  # writer not started
    for i in range(4):
        log.submit(record(i * 10, rows=3))  # 3 + 3 + 3 accepted; the 4th would exceed 10 rows
    assert sum(unwritten) == 9 == log.pending()
    assert log.dropped == 3  # refused at the door: never counted as unwritten
    poison = replace(record(100), probabilities=np.array([np.nan]))
    if store.engine.dialect.name == "postgresql":
        poison = replace(record(100), commit_ids=["a\x00b"])
    log.submit(poison)  # accepted (10 rows), then refused by the database
    assert sum(unwritten) == 10
    log.close()
    assert log.written == 9 and log.dropped == 4
    assert sum(unwritten) == 0 and all(n > 0 for n in unwritten[:4]) and min(unwritten) < 0


def through_an_outage(directory: Path, entries: list[Entry], pack_rows: int) -> list[list[tuple[object, ...]]]:
    """Every row `entries` leave in a database that is down (`directory` is missing) while they are submitted."""
    store = Store.unopened(f"sqlite:///{directory / 'm.db'}")
    availability = Availability(store, check_seconds=3600)
    assert not availability.check()
    log = PredictionLog(
        store, max_rows=43, batch_rows=9, availability=availability, retry_seconds=0.02, pack_rows=pack_rows
    )  # fmt: skip
    log.start()
    assert all(log.submit(entry) for entry in entries)
    if pack_rows:
        wait_for(lambda: sum(isinstance(e, Packed) for e in log._held) >= 8, "the held rows to be packed", 30)
        assert any(isinstance(e, PredictionBlock) for e in log._held)  # the run pickle cannot hold, as queued
    assert log.pending() == 43 and not log.submit(record(101))  # the bound in rows holds, packed or not
    directory.mkdir()
    wait_for(lambda: log.pending() == 0, "the held rows to be written", 30)
    log.close()
    assert log.written == 42 and log.dropped == 1
    with store.engine.connect() as conn:
        tables = [
            [tuple(row) for row in conn.execute(select(table).order_by(table.c.id))]
            for table in (predictions, shadow_predictions, rejections)
        ]
    store.close()
    return tables


def test_rows_held_through_an_outage_are_packed_and_written_back_unchanged(tmp_path: Path) -> None:
    class Sha(str):  # local, so pickle cannot hold it: its run stays as submitted, and is written all the same
        pass

    entries: list[Entry] = [record(i) for i in range(40)]
    entries[5] = record(5, rows=3, shadows=(ShadowScores(4, np.array([0.5, 0.6, 0.7])),))
    entries[12] = RejectionRecord(time=2000.0, reason="invalid_input", count=2)
    entries[21] = replace(record(21), commit_ids=[Sha("c21")])
    entries.append(record(100))  # 42 predictions, 43 rows of the queue's bound
    packed = through_an_outage(tmp_path / "packed", entries, pack_rows=4)
    assert [len(rows) for rows in packed] == [42, 3, 1]
    assert packed == through_an_outage(tmp_path / "as-submitted", entries, pack_rows=0)  # the very same rows


def test_an_outage_s_rows_are_written_back_in_order_and_in_small_transactions(
    proxied_postgres: tuple[Database, TcpProxy],
) -> None:
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    availability = Availability(store, check_seconds=3600)
    assert availability.check()
    written: list[int] = []
    log = PredictionLog(
        store, batch_rows=5000, availability=availability, retry_seconds=0.05, pack_rows=100, on_write=written.append
    )  # fmt: skip
    log.start()
    proxy.stop()
    log.submit(record(0))  # the writer finds the database down with this row in hand …
    wait_for(lambda: not availability.up, "the writer to find the database down", 30)
    for i in range(1, 2500):
        log.submit(record(i))  # … and packs these while it waits
    wait_for(lambda: log._held_rows >= 2400, "the held rows to be packed", 30)
    proxy.start()
    wait_for(lambda: log.pending() == 0 and sum(written) == 2500, "the held rows to be written", 60)
    log.close()
    with store.engine.connect() as conn:
        commits = list(conn.execute(select(predictions.c.commit_id).order_by(predictions.c.id)).scalars())
    assert commits == [f"c{i}" for i in range(2500)]
    # Written back at most HELD_ROWS at a time, not 5,000: a transaction's tuples are small objects.
    assert max(written) <= HELD_ROWS < 2500 and log.dropped == 0
    store.close()


def test_a_shutdown_during_the_outage_counts_the_packed_rows_as_dropped(tmp_path: Path) -> None:
    store = Store.unopened(f"sqlite:///{tmp_path / 'missing' / 'm.db'}")
    availability = Availability(store, check_seconds=3600)
    assert not availability.check()
    drops: list[tuple[int, str]] = []
    unwritten: list[int] = []
    log = PredictionLog(
        store, availability=availability, retry_seconds=0.02, pack_rows=3, on_unwritten=unwritten.append,
        on_drop=lambda n, reason: drops.append((n, reason)),
    )  # fmt: skip
    log.start()
    for i in range(10):
        log.submit(record(i))
    wait_for(lambda: log._held_rows == 9, "three buffers of three rows", 30)  # the tenth waits for two more
    log.close(timeout=30)
    assert log.written == 0 and log.dropped == 10 and log.pending() == 0
    assert sum(n for n, _ in drops) == 10 and {reason for _, reason in drops} == {"database_unavailable"}
    assert sum(unwritten) == 0
    store.close()


def test_a_submit_wakes_the_idle_writer_at_once(store: Store) -> None:
    log = PredictionLog(store, flush_seconds=3600)  # an idle writer waits an hour unless a submit wakes it
    log.start()
    wait_for(lambda: log._waiting, "the writer waiting", 10)
    log.submit(record(1))
    wait_for(lambda: store.count_predictions() == 1, "the row written", 10)  # woken: not an hour later
    log.close()
