"""The log writer on SQLite and PostgreSQL: a refused row costs only itself, an outage holds rows until the
database is back (letting the queue pack its rows meanwhile), a COMMIT whose answer was lost is not written twice,
a shutdown during an outage drops (and counts) what is held instead of waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, event, select

from app.contract import FEATURES
from app.monitoring.appender import COPY_CHUNK
from app.monitoring.availability import Availability
from app.monitoring.prediction_log import PredictionBatch, ShadowScores
from app.monitoring.store import Store
from app.monitoring.tables import log_receipts, predictions, rejections, shadow_predictions
from app.monitoring.writer import LogWriter, Part
from tests.support import POSTGRES_URL, Database, TcpProxy, wait_for


class Counts:
    """What the writer reported: predictions written, and (n, reason) per drop."""

    def __init__(self) -> None:
        self.written = 0
        self.dropped: list[tuple[int, str]] = []

    def write(self, n: int) -> None:
        self.written += n

    def drop(self, n: int, reason: str) -> None:
        self.dropped.append((n, reason))


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    s = Store.open(database.url, schema=database.schema)
    yield s
    s.close()


def rows(first: int, count: int, poison: bool = False, dialect: str = "sqlite") -> Part:
    """Predictions of commits c<first>… (one shadow pair each); `poison`: one more row the database refuses —
    a NUL in the commit id for PostgreSQL, a NaN probability (stored as NULL: NOT NULL fails) for SQLite."""
    n = count
    batch = PredictionBatch(
        time=1000.0 + first,
        request_id=f"r{first}",
        features=np.full((n, len(FEATURES)), float(first)),
        probabilities=np.full(n, 0.25),
        labels=np.zeros(n, dtype=bool),
        risk_bands=["low"] * n,
        model_version=3,
        commit_ids=[f"c{k}" for k in range(first, first + n)],
        shadows=(ShadowScores(4, np.full(n, 0.5)),),
    )
    part = Part(batch.prediction_values(), batch.shadow_values(), [{"time": 1.0, "reason": "x", "count": 1}])
    if poison:
        bad = list(part.predictions[0])
        if dialect == "postgresql":
            bad[2] = "a\x00b"  # commit_id
        else:
            bad[3 + 1 + len(FEATURES)] = float("nan")  # probability (after time, ids, repository, features)
        part.predictions.insert(len(part.predictions) // 2, tuple(bad))
    return part


def commit_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(predictions.c.commit_id).order_by(predictions.c.id)).scalars())


def test_a_refused_row_costs_only_itself(store: Store) -> None:
    dialect = store.engine.dialect.name
    counts, commits = Counts(), []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    writer = LogWriter(store, threading.Event(), counts.write, counts.drop)
    writer.write(rows(0, 60, poison=True, dialect=dialect))
    assert commit_ids(store) == [f"c{k}" for k in range(60)]  # every clean row, in order
    assert counts.written == 60 and counts.dropped == [(1, "refused")]
    with store.engine.connect() as conn:
        assert len(conn.execute(select(shadow_predictions.c.id)).all()) == 60
        assert len(conn.execute(select(rejections.c.id)).all()) == 1
    # Halving isolates the row in a logarithmic number of transactions, not one per row.
    assert 1 < len(commits) <= 2 * 8


def test_a_clean_batch_is_one_transaction(store: Store) -> None:
    counts, commits = Counts(), []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    LogWriter(store, threading.Event(), counts.write, counts.drop).write(rows(0, 500))
    assert len(commits) == 1 and counts.written == 500 and counts.dropped == []


def test_halves_keep_every_row_once_in_order() -> None:
    part = Part([(i,) for i in range(5)], [("s", i) for i in range(2)], [{"r": 0}])
    first, second = part.halves()
    assert (first.size, second.size) == (4, 4)
    assert first.predictions + second.predictions == part.predictions
    assert first.shadows + second.shadows == part.shadows and second.rejections == [{"r": 0}]


def test_an_outage_holds_the_rows_until_the_database_is_back(proxied_postgres: tuple[Database, TcpProxy]) -> None:
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    availability = Availability(store, check_seconds=0.05)
    assert availability.check()  # migrated while up
    counts, closing = Counts(), threading.Event()
    writer = LogWriter(store, closing, counts.write, counts.drop, availability, retry_seconds=0.05)
    proxy.stop()
    thread = threading.Thread(target=writer.write, args=(rows(0, 100),))
    thread.start()
    wait_for(lambda: not availability.up, "the writer to find the database down", 30)
    assert thread.is_alive() and counts.written == 0 and counts.dropped == []  # held, not dropped
    proxy.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert counts.written == 100 and counts.dropped == [] and availability.up
    assert len(commit_ids(store)) == 100
    store.close()


def test_a_connection_lost_during_the_copy_is_an_outage_not_a_refusal(
    proxied_postgres: tuple[Database, TcpProxy],
) -> None:
    # The connection breaks between two chunks of PostgreSQL's COPY: the rows are held (not isolated and dropped as
    # refused) and written once when the database is back.
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    availability = Availability(store, check_seconds=0.05)
    assert availability.check()
    cut = threading.Event()

    def pace() -> None:
        if not cut.is_set():
            cut.set()
            proxy.stop()  # resets the writer's connection mid-COPY

    counts, closing = Counts(), threading.Event()
    writer = LogWriter(store, closing, counts.write, counts.drop, availability, retry_seconds=0.05, pace=pace)
    n = 3 * COPY_CHUNK
    thread = threading.Thread(target=writer.write, args=(rows(0, n),))
    thread.start()
    wait_for(lambda: not availability.up, "the writer to find the database down", 30)
    assert cut.is_set() and thread.is_alive() and counts.written == 0 and counts.dropped == []
    proxy.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert counts.written == n and counts.dropped == [] and commit_ids(store) == [f"c{k}" for k in range(n)]
    store.close()


def test_closing_during_an_outage_drops_the_held_rows_at_once(proxied_postgres: tuple[Database, TcpProxy]) -> None:
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    availability = Availability(store, check_seconds=3600)
    assert availability.check()
    proxy.stop()
    counts, closing = Counts(), threading.Event()
    writer = LogWriter(store, closing, counts.write, counts.drop, availability, retry_seconds=3600)
    thread = threading.Thread(target=writer.write, args=(rows(0, 40),))
    thread.start()
    wait_for(lambda: not availability.up, "the writer to find the database down", 30)
    closing.set()  # shutdown: a one-hour retry interval must not hold it
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert counts.dropped == [(40, "database_unavailable")] and counts.written == 0
    writer.write(rows(100, 5))  # later batches of the same shutdown: dropped without another wait
    assert counts.dropped[-1] == (5, "database_unavailable")
    store.close()


def test_closing_after_the_database_came_back_writes_the_held_rows(
    proxied_postgres: tuple[Database, TcpProxy],
) -> None:
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    availability = Availability(store, check_seconds=3600)  # no check would notice it coming back
    assert availability.check()
    proxy.stop()
    counts, closing = Counts(), threading.Event()
    writer = LogWriter(store, closing, counts.write, counts.drop, availability, retry_seconds=3600)
    thread = threading.Thread(target=writer.write, args=(rows(0, 40),))
    thread.start()
    wait_for(lambda: not availability.up, "the writer to find the database down", 30)
    proxy.start()
    closing.set()  # the last check at shutdown finds it back: nothing is lost
    thread.join(timeout=30)
    assert counts.written == 40 and counts.dropped == []
    store.close()


def test_a_commit_whose_answer_was_lost_is_not_written_twice(proxied_postgres: tuple[Database, TcpProxy]) -> None:
    database, proxy = proxied_postgres
    store = Store.unopened(database.url, database.schema, timeout=2)
    direct = Store(create_engine(POSTGRES_URL).execution_options(schema_translate_map={None: database.schema}))
    availability = Availability(store, check_seconds=3600)
    assert availability.check()
    counts = Counts()
    writer = LogWriter(store, threading.Event(), counts.write, counts.drop, availability, retry_seconds=0.05)
    writer.write(rows(0, 10))  # a first receipt, which the next transaction deletes
    cut = proxy.cut_after(b"COMMIT")  # the server commits; the writer only sees its connection break
    thread = threading.Thread(target=writer.write, args=(rows(100, 25),))
    thread.start()
    assert cut.wait(30)
    proxy.stop()  # hold the writer off while the test looks
    # The COMMIT landed … (the server received it before the cut, but may take a moment to apply it on a busy host)
    wait_for(lambda: direct.count_predictions() == 35, "the cut COMMIT to land", 30)
    proxy.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert direct.count_predictions() == 35 and counts.written == 35  # … and its rows were not written again
    with direct.engine.connect() as conn:
        assert len(conn.execute(select(log_receipts.c.id)).all()) == 1  # each transaction deleted its predecessor
    direct.close()
    store.close()


def test_a_packed_part_is_one_buffer_that_unpacks_to_the_same_rows() -> None:
    part = rows(0, 50)
    packed = part.pack(rows=51)
    assert packed.rows == 51 and isinstance(packed.data, bytes)
    assert len(packed.data) < 300 * part.size  # one compact buffer: no per-row objects held
    assert packed.unpack() == part


def test_waiting_for_the_database_lets_the_queue_pack_until_it_is_back(tmp_path: Path) -> None:
    def down(name: str) -> tuple[Store, Availability]:
        # A SQLite file in a directory that does not exist yet: the database is down until the directory is made.
        store = Store.unopened(f"sqlite:///{tmp_path / name / 'm.db'}")
        availability = Availability(store, check_seconds=3600)
        assert not availability.check()
        return store, availability

    store, availability = down("first")
    counts, closing, holds = Counts(), threading.Event(), []
    writer = LogWriter(
        store, closing, counts.write, counts.drop, availability, retry_seconds=0.02, on_hold=lambda: holds.append(1)
    )  # fmt: skip
    thread = threading.Thread(target=writer.write, args=(rows(0, 10),))
    thread.start()
    wait_for(lambda: len(holds) >= 3, "the writer to call on_hold while it waits", 30)
    (tmp_path / "first").mkdir()  # the database is back
    thread.join(timeout=30)
    assert not thread.is_alive() and counts.written == 10 and counts.dropped == []
    store.close()
    # Closing with the database down: the held rows are dropped at once, nothing is packed any more.
    store, availability = down("second")
    closing.set()
    called = len(holds)
    LogWriter(
        store, closing, counts.write, counts.drop, availability, retry_seconds=0.02, on_hold=lambda: holds.append(1)
    ).write(rows(100, 5))  # fmt: skip
    assert len(holds) == called and counts.dropped == [(5, "database_unavailable")]
    store.close()
