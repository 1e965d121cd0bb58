"""The database on SQLite and PostgreSQL: connect (pragmas, schemas), ordered idempotent migrations, retention."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)

from app.contract import FEATURES
from app.monitoring import database as db
from app.monitoring.tables import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SHADOW_COLUMNS,
    drift_reports,
    feedback,
    predictions,
    rejections,
    retrain_requests,
    schema_version,
    shadow_predictions,
    summaries,
)
from tests.support import Database


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    connected = db.connect(database.url, database.schema)  # connects lazily: the schema is created by migrate()
    if database.schema is not None:  # tests that build an older database by hand need the schema first
        with connected.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
    yield connected
    connected.dispose()


def logged(i: int, t: float, p: float = 0.5) -> dict[str, object]:
    """A `predictions` row: commit `c<i>` logged at `t`, features i, i+1, …"""
    row: dict[str, object] = {name: float(i + k) for k, name in enumerate(FEATURES)}
    ids = {"time": t, "request_id": f"r{i}", "commit_id": f"c{i}", "repository": "repo"}
    return row | ids | {"probability": p, "label": p >= 0.5, "risk_band": "low", "model_version": 1}


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)  # type: ignore[arg-type]


def test_migrate_applies_every_migration_once_and_is_idempotent(database: Database, engine: Engine) -> None:
    assert db.migrate(engine) == SCHEMA_VERSION
    again = db.connect(database.url, database.schema)  # a second worker starting up
    assert db.migrate(again) == SCHEMA_VERSION and db.version(again) == SCHEMA_VERSION
    with again.connect() as conn:
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
        tables = set(inspect(conn).get_table_names(schema=database.schema))
    again.dispose()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"predictions", "shadow_predictions", "feedback", "rejections", "drift_reports", "schema_version"} <= tables


def test_workers_migrating_at_once_end_on_one_schema(database: Database, engine: Engine) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        other = db.connect(database.url, database.schema)
        try:
            db.migrate(other)
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)
        finally:
            other.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and db.version(engine) == SCHEMA_VERSION


def test_schema_1_shadow_pairs_move_to_shadow_predictions(engine: Engine) -> None:
    with engine.begin() as conn:  # a database a schema-1 service wrote, one of its rows scored in shadow
        schema_version.create(conn)
        MIGRATIONS[0][2](conn)
        conn.execute(insert(schema_version).values(version=1, description="v1", applied_at=0.0))
        legacy = {**logged(1, 100.0, p=0.3), "shadow_version": 2, "shadow_probability": 0.9}
        plain = {**logged(2, 101.0), "shadow_version": None, "shadow_probability": None}
        conn.execute(insert(predictions), [legacy, plain])
    assert db.migrate(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        moved = conn.execute(select(*(shadow_predictions.c[c] for c in SHADOW_COLUMNS))).all()
    assert [tuple(row) for row in moved] == [(100.0, "r1", "c1", 1, 0.3, 2, 0.9)]


def test_retrain_tables_an_earlier_service_created_are_adopted_by_migration_3(
    database: Database, engine: Engine
) -> None:
    with engine.begin() as conn:  # as `retrain_log.ensure_tables` did before the tables joined the migrations
        retrain_requests.create(conn)
        conn.execute(insert(retrain_requests).values(requested_at=1.0, reason="kept"))
    assert db.migrate(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        kept = conn.execute(select(retrain_requests.c.reason)).scalars().all()
        tables = set(inspect(conn).get_table_names(schema=database.schema))
    assert kept == ["kept"] and "retrain_audit" in tables


def test_sqlite_connections_use_wal(tmp_path: Path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path}/wal.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    engine.dispose()


def test_retention_deletes_old_rows_and_keeps_the_newest_reports(engine: Engine) -> None:
    db.migrate(engine)
    now = time.time()
    old, recent = now - 10 * 86400, now - 86400
    shadow_pair = {"request_id": "r", "commit_id": "c1", "model_version": 1, "probability": 0.5}
    with engine.begin() as conn:
        conn.execute(insert(predictions), [logged(1, old), logged(2, recent)])
        conn.execute(
            insert(shadow_predictions),
            [{**shadow_pair, "time": t, "shadow_version": 2, "shadow_probability": 0.6} for t in (old, recent)],
        )
        conn.execute(insert(rejections), [{"time": old, "reason": "x", "count": 1}])
        for i in range(5):
            conn.execute(insert(drift_reports).values(computed_at=i, status="ok", report="{}"))
            conn.execute(insert(summaries).values(computed_at=i, kind="performance", report="{}"))
    assert db.apply_retention(engine, retention_days=5, keep_reports=2, now=now) == 1
    assert count(engine, predictions) == 1 and count(engine, shadow_predictions) == 1
    assert count(engine, rejections) == 0
    assert count(engine, drift_reports) == 2 and count(engine, summaries) == 4  # summaries: two kinds' worth
    with engine.connect() as conn:
        assert conn.execute(select(func.min(drift_reports.c.computed_at))).scalar() == 3  # the newest two remain


def test_a_feedback_table_of_schema_4_gains_request_id_and_keeps_its_labels(database: Database, engine: Engine) -> None:
    old = MetaData()
    legacy = Table(  # the feedback table as migrations 1-4 created it, before labels could name an answer
        "feedback", old, Column("commit_id", String(255), primary_key=True), Column("repository", String(255)),
        Column("buggy", Boolean, nullable=False), Column("fixed_by", Text), Column("labeled_at", Float),
        Column("received_at", Float, nullable=False),
    )  # fmt: skip
    with engine.begin() as conn:
        schema_version.create(conn)
        legacy.create(conn)
        for number, description, upgrade in MIGRATIONS[:4]:
            upgrade(conn)
            conn.execute(insert(schema_version).values(version=number, description=description, applied_at=0.0))
        conn.execute(insert(legacy).values(commit_id="kept", buggy=True, received_at=1.0))
    assert db.migrate(engine) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(select(feedback.c.commit_id, feedback.c.request_id)).all() == [("kept", None)]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("garbage", "not a database URL"),
        ("", "not a database URL"),
        ("mysql://u:secret@h/db", "'mysql' databases are not supported"),
        ("postgresql+pg8000://u:secret@h/db", "the driver of 'postgresql\\+pg8000' is not installed"),
        ("postgresql+psycopg_async://u:secret@h/db", "is an asyncio driver"),
    ],
)
def test_a_url_no_database_can_answer_is_refused_without_repeating_it(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        db.check_url(url)
    assert "secret" not in str(refused.value)


def test_usable_urls_pass_unchanged(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'missing-dir' / 'm.db'}", "postgresql+psycopg://u@127.0.0.1:1/db"):
        assert db.check_url(url) == url  # checked for form only: a database that is down is no config error


def test_outages_are_told_apart_from_refused_values(database: Database, engine: Engine, tmp_path: Path) -> None:
    db.migrate(engine)
    refused: BaseException | None = None
    try:
        with engine.begin() as conn:  # NULL in a NOT NULL column: the database refuses this row
            conn.execute(insert(rejections).values(time=1.0, reason=None, count=1))
    except Exception as exc:
        refused = exc
    assert refused is not None and not db.is_outage(refused)
    down = db.connect(f"sqlite:///{tmp_path / 'missing' / 'm.db'}")
    with pytest.raises(Exception) as outage:
        db.migrate(down)
    assert db.is_outage(outage.value)
    assert db.describe(outage.value) == "OperationalError: unable to open database file"
    assert not db.is_outage(ValueError("not a database error"))
