"""Bulk appends: every row lands, in few statements of power-of-two sizes (a bounded statement cache)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from app.monitoring import database as db
from app.monitoring.appender import APPEND_CHUNK, Appender
from app.monitoring.store import Store
from app.monitoring.tables import SHADOW_COLUMNS, shadow_predictions


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
    appender = Appender(engine, None, "shadow_predictions", SHADOW_COLUMNS)
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
    appender = Appender(engine, None, "shadow_predictions", SHADOW_COLUMNS)
    calls: list[None] = []
    with engine.begin() as conn:
        appender.append(conn, rows(3 * APPEND_CHUNK + 5), lambda: calls.append(None))
    engine.dispose()
    assert len(calls) == 3 + 2  # three full statements, then 4 rows and 1 row (powers of two)
