"""Bulk appends: every row lands with its values, in few SQLite statements of power-of-two sizes (a bounded statement
cache) or one binary COPY on PostgreSQL, whose driver errors read as a statement's would."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Column, LargeBinary, MetaData, Table, func, select
from sqlalchemy.exc import DataError, OperationalError

from app.contract import FEATURES
from app.monitoring import database as db
from app.monitoring.appender import APPEND_CHUNK, COPY_CHUNK, Appender, binary_type
from app.monitoring.store import Store
from app.monitoring.tables import (
    PREDICTION_COLUMNS,
    SHADOW_COLUMNS,
    log_receipts,
    predictions,
    shadow_predictions,
)

# PostgreSQL's COPY path only (the `database` fixture otherwise runs each test on both databases).
ON_POSTGRESQL = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def rows(n: int, start: int = 0) -> list[tuple[object, ...]]:
    return [(float(i), f"r{i}", f"c{i}", 1, 0.25, 2, 0.75) for i in range(start, start + n)]


def test_every_row_lands_in_order_whatever_the_count(store: Store) -> None:
    counts = [1, 7, APPEND_CHUNK, APPEND_CHUNK + 1, 3000]
    start = 0
    for n in counts:
        store.append_log([], rows(n, start), [])
        start += n
    with store.engine.connect() as conn:
        times = conn.execute(select(shadow_predictions.c.time).order_by(shadow_predictions.c.id)).scalars().all()
        total = conn.execute(select(func.count()).select_from(shadow_predictions)).scalar()
    assert total == sum(counts) and times == [float(i) for i in range(sum(counts))]
    assert len(SHADOW_COLUMNS) == len(rows(1)[0])


def test_sqlite_statements_come_in_few_power_of_two_sizes(tmp_path: Path) -> None:
    # SQLite only: PostgreSQL appends with one pipelined executemany, no multi-row statements.
    engine = db.connect(f"sqlite:///{tmp_path / 'log.db'}")
    db.migrate(engine)
    appender = Appender(engine, None, shadow_predictions, SHADOW_COLUMNS)
    for n in range(1, 3001, 37):  # many different batch sizes, as a live log sees
        with engine.begin() as conn:
            appender.append(conn, rows(n))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(shadow_predictions)).scalar() == sum(range(1, 3001, 37))
    engine.dispose()
    sizes = set(appender.sql)
    assert all(size & (size - 1) == 0 and size <= APPEND_CHUNK for size in sizes)
    assert len(sizes) <= APPEND_CHUNK.bit_length()


def test_the_pace_is_called_after_every_statement(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'log.db'}")
    db.migrate(engine)
    appender = Appender(engine, None, shadow_predictions, SHADOW_COLUMNS)
    calls: list[None] = []
    with engine.begin() as conn:
        appender.append(conn, rows(3 * APPEND_CHUNK + 5), lambda: calls.append(None))
    engine.dispose()
    assert len(calls) == 3 + 2  # three full statements, then 4 rows and 1 row (powers of two)


def test_values_of_the_types_the_log_hands_over_land_as_given(store: Store) -> None:
    # What `PredictionBatch.prediction_values` gives: Python values from `tolist()`, NULL ids, and np.str_ ids or
    # np.float64 values where a column came from numpy; both databases keep them.
    given = [
        (1.5, np.str_("r1"), np.str_("c1"), None, np.float64(0.1), *map(float, range(1, len(FEATURES))), 0.25, True,
         "high", 3),
        (2.5, None, None, "repo", *map(float, range(len(FEATURES))), np.float64(0.75), False, "low", 4),
    ]  # fmt: skip
    store.append_log(given, [], [])
    with store.engine.connect() as conn:
        got = conn.execute(select(*(predictions.c[c] for c in PREDICTION_COLUMNS)).order_by(predictions.c.id)).all()
    assert [tuple(row) for row in got] == given


@ON_POSTGRESQL
def test_a_refused_value_raises_a_data_error_and_writes_nothing(store: Store) -> None:
    # PostgreSQL's COPY refuses a NUL in text (SQLite stores it): the error reads as a statement's DataError, which the
    # writer tells from an outage (app/monitoring/writer.py isolates the row), and the transaction keeps nothing.
    bad = [*rows(COPY_CHUNK + 3)]
    bad[COPY_CHUNK + 1] = (1.0, "r", "c\x00", 1, 0.25, 2, 0.75)
    with pytest.raises(DataError) as raised:
        store.append_log([], bad, [])
    assert not db.is_outage(raised.value) and not raised.value.connection_invalidated
    assert store.count_predictions() == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(shadow_predictions)).scalar() == 0
    store.append_log([], rows(2), [])  # the connection went back to the pool usable
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(shadow_predictions)).scalar() == 2


@ON_POSTGRESQL
def test_a_copy_the_server_cancels_reads_as_an_outage(store: Store) -> None:
    # An OperationalError on a live connection (a statement timeout here; a full disk alike) is the database being
    # unusable, not a bad row: raised as SQLAlchemy's OperationalError, the writer holds the rows instead of halving
    # the part until every row is dropped as refused.
    schema = store.engine.get_execution_options()["schema_translate_map"][None]
    appender = Appender(store.engine, schema, shadow_predictions, SHADOW_COLUMNS)
    with pytest.raises(OperationalError) as raised, store.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL statement_timeout = 100")
        appender.append(conn, rows(2 * COPY_CHUNK + 1), lambda: time.sleep(0.3))
    assert db.is_outage(raised.value) and not raised.value.connection_invalidated
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(shadow_predictions)).scalar() == 0


@ON_POSTGRESQL
def test_the_copy_calls_the_pace_between_chunks(store: Store) -> None:
    schema = store.engine.get_execution_options()["schema_translate_map"][None]
    appender = Appender(store.engine, schema, shadow_predictions, SHADOW_COLUMNS)
    calls: list[None] = []
    with store.engine.begin() as conn:
        appender.append(conn, rows(2 * COPY_CHUNK + 1), lambda: calls.append(None))
    assert len(calls) == 3


def test_every_log_column_has_a_binary_copy_type() -> None:
    types = {binary_type(c) for table in (predictions, shadow_predictions, log_receipts) for c in table.columns}
    assert types <= {"bool", "int4", "int8", "float8", "text"}
    assert binary_type(predictions.c.label) == "bool" and binary_type(predictions.c.time) == "float8"
    odd = Table("odd", MetaData(), Column("blob", LargeBinary))
    with pytest.raises(TypeError, match="'blob'"):
        binary_type(odd.c.blob)
