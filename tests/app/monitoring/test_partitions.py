"""Time partitions of the prediction log on the real PostgreSQL: layout, conversion, partitions ahead, retention by
dropping partitions, and the monitoring queries answering as on the plain tables; SQLite left as it is."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import Engine, func, insert, inspect, select, text

from app.monitoring import commits, labels, partitions, timeline, volume
from app.monitoring import database as db
from app.monitoring.job import performance_of
from app.monitoring.store import Store
from app.monitoring.tables import (
    MIGRATIONS,
    SCHEMA_VERSION,
    feedback,
    predictions,
    schema_version,
    shadow_predictions,
)
from tests.support import Database, log_row

POSTGRES = pytest.mark.parametrize("database", ["postgresql"], indirect=True)
DAY = 86400.0
# 2026-11-15 12:00 UTC: mid-month, so month and day boundaries are both near.
NOW = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()


def at(year: int, month: int, day: int = 1, hour: int = 12) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)  # type: ignore[arg-type]


def homes(engine: Engine, table: str = "predictions") -> dict[str, str]:
    """Commit id → the partition its row lives in."""
    with engine.connect() as conn:
        query = f"SELECT commit_id, tableoid::regclass::text FROM {partitions.qualified(conn, table)}"
        found = conn.execute(text(query))
        return {commit: home.split(".")[-1].strip('"') for commit, home in found}


def names(engine: Engine, table: str = "predictions") -> list[str]:
    with engine.connect() as conn:
        return [name for name, _, _ in partitions.bounds(conn, table)]


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    connected = db.connect(database.url, database.schema)  # connects lazily: the schema is created here
    if database.schema is not None:
        with connected.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
    yield connected
    connected.dispose()


def test_periods_are_utc_months_and_days() -> None:
    assert partitions.periods("monthly", at(2026, 11, 30), at(2027, 1, 1)) == [
        (at(2026, 11, 1, 0), at(2026, 12, 1, 0)), (at(2026, 12, 1, 0), at(2027, 1, 1, 0)),
        (at(2027, 1, 1, 0), at(2027, 2, 1, 0)),
    ]  # fmt: skip
    assert partitions.periods("daily", at(2026, 2, 28, 23), at(2026, 3, 1, 0)) == [
        (at(2026, 2, 28, 0), at(2026, 3, 1, 0)), (at(2026, 3, 1, 0), at(2026, 3, 2, 0)),
    ]  # fmt: skip
    assert partitions.partition_name("predictions", at(2026, 12, 1, 0)) == "predictions_p20261201"


@POSTGRES
def test_rows_land_in_their_month_and_outside_every_partition_in_default(engine: Engine) -> None:
    assert db.migrate(engine, "monthly", now=NOW) == SCHEMA_VERSION
    assert names(engine) == ["predictions_default", "predictions_p20261101", "predictions_p20261201",
                             "predictions_p20270101"]  # fmt: skip
    rows = [
        log_row(at(2026, 11, 1, 0), commit_id="first-second"),  # a lower bound is inclusive
        log_row(at(2026, 12, 1, 0) - 0.001, commit_id="last-of-november"),
        log_row(at(2026, 12, 31, 23), commit_id="december"),
        log_row(at(2027, 3, 1), commit_id="beyond"),  # no partition yet: DEFAULT takes it, the insert never fails
        log_row(at(2020, 1, 1), commit_id="clock-skew"),
    ]
    with engine.begin() as conn:
        conn.execute(insert(predictions), rows)
    assert homes(engine) == {
        "first-second": "predictions_p20261101", "last-of-november": "predictions_p20261101",
        "december": "predictions_p20261201", "beyond": "predictions_default", "clock-skew": "predictions_default",
    }  # fmt: skip
    # Weeks later the job creates March: its row moves out of DEFAULT into it.
    with engine.begin() as conn:
        created = partitions.create_ahead(conn, "monthly", at(2027, 1, 10))
    assert "predictions_p20270301" in created and homes(engine)["beyond"] == "predictions_p20270301"
    assert count(engine, predictions) == 5


@POSTGRES
def test_daily_partitions_and_shadow_scores_are_partitioned_too(engine: Engine) -> None:
    db.migrate(engine, "daily", now=NOW)
    days = [n for n in names(engine, "shadow_predictions") if n != "shadow_predictions_default"]
    assert days[0] == "shadow_predictions_p20261115" and len(days) == 1 + partitions.AHEAD["daily"]
    pair = {"request_id": "r", "model_version": 1, "probability": 0.2, "shadow_version": 2, "shadow_probability": 0.3}
    with engine.begin() as conn:
        conn.execute(insert(shadow_predictions), [{**pair, "commit_id": "a", "time": NOW + DAY}])
    assert homes(engine, "shadow_predictions") == {"a": "shadow_predictions_p20261116"}


@POSTGRES
def test_switching_from_monthly_to_daily_fills_only_the_gaps(engine: Engine) -> None:
    db.migrate(engine, "monthly", now=NOW)
    db.migrate(engine, "daily", now=at(2027, 1, 25))  # January is a month already: February in days
    found = names(engine)
    assert "predictions_p20270101" in found and "predictions_p20270201" in found and "predictions_p20270202" in found
    with engine.connect() as conn:
        spans = sorted((lo or 0.0, hi or 0.0) for _, lo, hi in partitions.bounds(conn, "predictions") if lo is not None)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # never overlapping


def old_schema_with_rows(engine: Engine, now: float) -> None:
    """The schema every earlier version built (migrations 1-5, no partitions), with logged rows and labels."""
    with engine.begin() as conn:
        schema_version.create(conn)
        for number, description, upgrade in MIGRATIONS[:5]:
            upgrade(conn)
            conn.execute(insert(schema_version).values(version=number, description=description, applied_at=0.0))
        conn.execute(insert(predictions), [log_row(now - k * 9 * DAY, commit_id=f"c{k}") for k in range(40)])
        pair = {"request_id": "r", "model_version": 1, "probability": 0.2, "shadow_version": 2}
        conn.execute(
            insert(shadow_predictions),
            [{**pair, "commit_id": f"c{k}", "time": now - k * 9 * DAY, "shadow_probability": 0.3} for k in range(10)],
        )
        conn.execute(insert(feedback), [{"commit_id": "c3", "buggy": True, "received_at": now}])


@POSTGRES
def test_a_database_of_the_old_schema_is_converted_keeping_every_row_and_id(engine: Engine) -> None:
    old_schema_with_rows(engine, NOW)
    with engine.connect() as conn:
        before = conn.execute(select(predictions.c.id, predictions.c.commit_id).order_by(predictions.c.id)).all()
    assert db.migrate(engine, "monthly", now=NOW) == SCHEMA_VERSION
    with engine.connect() as conn:
        after = conn.execute(select(predictions.c.id, predictions.c.commit_id).order_by(predictions.c.id)).all()
        tables = set(inspect(conn).get_table_names(schema=engine.get_execution_options()["schema_translate_map"][None]))
        assert partitions.is_partitioned(conn, "predictions") and partitions.is_partitioned(conn, "shadow_predictions")
    assert after == before and len(after) == 40
    assert count(engine, shadow_predictions) == 10 and count(engine, feedback) == 1
    assert not {"predictions_unpartitioned", "shadow_predictions_unpartitioned"} & tables
    assert set(homes(engine).values()) >= {"predictions_p20261101", "predictions_p20251201"}  # 351 days back
    with engine.begin() as conn:  # the id sequence goes on after the copied rows
        conn.execute(insert(predictions), [log_row(NOW, commit_id="new")])
        assert conn.execute(select(predictions.c.id).where(predictions.c.commit_id == "new")).scalar() == 41
    assert db.migrate(engine, "monthly", now=NOW) == SCHEMA_VERSION and count(engine, predictions) == 41


@POSTGRES
def test_retention_drops_expired_partitions_and_nothing_else(engine: Engine) -> None:
    db.migrate(engine, "monthly", now=at(2026, 8, 15))
    db.migrate(engine, "monthly", now=NOW)  # August to January exist
    rows = {
        "august": at(2026, 8, 20), "september-early": at(2026, 9, 2), "september-late": at(2026, 9, 28),
        "october": at(2026, 10, 5), "november": at(2026, 11, 10),
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(predictions), [log_row(t, commit_id=c) for c, t in rows.items()])
        conn.execute(insert(predictions), [log_row(at(2019, 1, 1), commit_id="default-old")])
        conn.execute(insert(predictions), [log_row(at(2027, 6, 1), commit_id="default-new")])
        pair = {"request_id": "r", "model_version": 1, "probability": 0.2, "shadow_version": 2}
        shadows = [{**pair, "commit_id": c, "time": t, "shadow_probability": 0.1} for c, t in rows.items()]
        conn.execute(insert(shadow_predictions), shadows)
        conn.execute(insert(feedback), [{"commit_id": "august", "buggy": True, "received_at": at(2026, 8, 21)}])
    # Cutoff 2026-09-16: August ends before it (dropped); September straddles it (kept whole, early row too).
    db.apply_retention(engine, retention_days=60, now=NOW, period="monthly")
    assert "predictions_p20260801" not in names(engine) and "shadow_predictions_p20260801" not in names(
        engine, "shadow_predictions"
    )
    assert set(homes(engine)) == {"september-early", "september-late", "october", "november", "default-new"}
    assert set(homes(engine, "shadow_predictions")) == {"september-early", "september-late", "october", "november"}
    assert {"predictions_p20260901", "predictions_p20261001", "predictions_p20270101"} <= set(names(engine))
    assert count(engine, feedback) == 1  # labels are not the log's to drop


@POSTGRES
def test_labels_of_a_dropped_partition_move_on_and_those_of_a_kept_one_stay(database: Database) -> None:
    store = Store.open(database.url, schema=database.schema, partition="monthly")
    try:
        db.migrate(store.engine, "monthly", now=at(2026, 8, 15))
        store.insert_predictions([
            log_row(at(2026, 8, 20), commit_id="reposted", probability=0.1),
            log_row(at(2026, 10, 5), commit_id="reposted", probability=0.5),
            log_row(at(2026, 8, 21), commit_id="august", probability=0.2),
            log_row(at(2026, 9, 2), commit_id="straddling", probability=0.3),  # older than the cutoff, kept
        ])  # fmt: skip
        store.upsert_feedback([{"commit_id": c, "buggy": True} for c in ("reposted", "august", "straddling")])
        store.apply_retention(60.0, now=NOW)  # cutoff 2026-09-16: August dropped, September kept whole
        assert "predictions_p20260801" not in names(store.engine)
        with store.engine.connect() as conn:
            query = select(feedback.c.commit_id, feedback.c.prediction_time).order_by(feedback.c.commit_id)
            assert conn.execute(query).all() == [
                ("august", None), ("reposted", at(2026, 10, 5)), ("straddling", at(2026, 9, 2)),
            ]  # fmt: skip
        assert labelled(store) == by_rule(store) == [(at(2026, 9, 2), 0.3, True), (at(2026, 10, 5), 0.5, True)]
    finally:
        store.close()


@POSTGRES
def test_a_dropped_partition_is_counted_and_a_rerun_removes_nothing_more(engine: Engine) -> None:
    db.migrate(engine, "daily", now=NOW - 3 * DAY)
    with engine.begin() as conn:
        conn.execute(insert(predictions), [log_row(NOW - 3 * DAY, commit_id=f"c{i}") for i in range(50)])
        conn.execute(text(f"ANALYZE {partitions.qualified(conn, 'predictions')}"))
    assert db.apply_retention(engine, retention_days=1, now=NOW, period="daily") == 50
    assert db.apply_retention(engine, retention_days=1, now=NOW, period="daily") == 0
    assert count(engine, predictions) == 0


def test_sqlite_stays_one_plain_file(tmp_path: object) -> None:
    engine = db.connect(f"sqlite:///{tmp_path}/log.db")
    assert db.migrate(engine, "monthly", now=NOW) == SCHEMA_VERSION
    with engine.begin() as conn:
        conn.execute(insert(predictions), [log_row(NOW - 400 * DAY), log_row(NOW)])
        assert not partitions.is_partitioned(conn, "predictions")
    assert db.apply_retention(engine, retention_days=180, now=NOW, period="monthly") == 1
    assert set(inspect(engine).get_table_names()) >= {"predictions", "shadow_predictions"}
    assert not [n for n in inspect(engine).get_table_names() if "_p20" in n or n.endswith("_default")]
    engine.dispose()


def fill(store: Store, now: float) -> None:
    """The same log in any store: three repositories over 100 days, reposts, named labels, shadow pairs."""
    rng = np.random.default_rng(5)
    rows, pairs, labelled = [], [], []
    for i in range(600):
        t = now - 100 * DAY + i * (100 * DAY / 600)
        p = float(rng.random())
        churn = {"la": float(rng.integers(0, 500)), "ld": float(rng.integers(0, 50))}
        band = "high" if p > 0.6 else "low"
        row = log_row(t, repository=f"repo-{i % 3}", band=band, probability=p, commit_id=f"c{i % 500}", **churn)
        rows.append(row | {"request_id": f"r{i}"})
        pairs.append({"time": t, "request_id": f"r{i}", "commit_id": f"c{i % 500}", "model_version": 1,
                      "probability": p, "shadow_version": 2, "shadow_probability": float(rng.random())})  # fmt: skip
    for k in range(0, 500, 2):
        named = f"r{k + 500}" if k < 100 and k % 4 == 0 else None  # some labels name the repost
        labelled.append({"commit_id": f"c{k}", "buggy": bool(rng.random() < 0.3), "request_id": named})
    early = [row for row in labelled if row["commit_id"] in {"c498", "c2", "c4", "c6"}]
    store.upsert_feedback([*early, {"commit_id": "never-logged", "buggy": True}])  # before their predictions
    store.insert_predictions(rows)
    with store.engine.begin() as conn:
        conn.execute(insert(shadow_predictions), pairs)
    store.upsert_feedback([row for row in labelled if row not in early])


def by_rule(store: Store) -> list[tuple[object, ...]]:
    """(time, probability, buggy) of each label's prediction by the rule applied at read time (before schema 8)."""
    chosen = labels.labelled_ids()
    query = select(predictions.c.time, predictions.c.probability, chosen.c.buggy).join(
        chosen, chosen.c.id == predictions.c.id
    )
    with store.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def labelled(store: Store) -> list[tuple[object, ...]]:
    """The same from the labelled window (resolved labels by their prediction id, pending ones by the rule)."""
    window, buggy = store.labelled_window(rows=10**6)
    return sorted(zip(window.time.tolist(), window.probability.tolist(), buggy.tolist(), strict=True))


def answers(store: Store, now: float) -> list[object]:
    """What the monitoring job, the API and the pages read from the log."""
    found: list[object] = []
    for kwargs in ({"rows": 50}, {"days": 30.0, "now": now}, {"rows": 40, "repository": "repo-1"}, {"rows": 10**6}):
        window = store.window(**kwargs)
        labelled, buggy = store.labelled_window(**kwargs)
        found += [window.commit_id, window.probability.tolist(), labelled.commit_id, buggy.tolist()]
    found.append(labels.labelled_shadow_scores(store.engine, 2))
    found.append({key: sorted(values.tolist()) for key, values in timeline.labelled_rows(store.engine).items()})
    found.append(performance_of(store, 300, None).model_dump())
    found.append(performance_of(store, 300, 60.0, repository="repo-2").model_dump())
    found.append(volume.count_volume(store.engine, None, 180.0, now=now).by_repository)
    where = commits.CommitFilter(repository="repo-0")
    found.append([dataclasses.astuple(c) for c in commits.list_commits(store.engine, where, 0, 25)])
    found.append(commits.count_commits(store.engine, where))
    return [np.asarray(x).tolist() if isinstance(x, tuple) else x for x in found]


@POSTGRES
def test_monitoring_queries_answer_as_on_the_plain_tables(database: Database) -> None:
    now = time.time()
    plain = Store.open(database.url, schema=database.schema)
    split_schema = f"{database.schema}_p"
    split = Store.open(database.url, schema=split_schema)
    try:
        for store in (plain, split):
            fill(store, now)
        db.migrate(split.engine, "daily")  # converted with its rows: a hundred days, a hundred partitions
        with split.engine.connect() as conn:
            assert partitions.is_partitioned(conn, "predictions") and len(names(split.engine)) > 100
        assert answers(split, now) == answers(plain, now)
        assert labelled(split) == labelled(plain) == by_rule(plain) and len(by_rule(plain)) == 250
        for store in (plain, split):  # first posts expire: labels move to the reposts, as the rule picks
            store.apply_retention(60.0, now=now)  # (the split log keeps the day straddling the cutoff whole)
            assert labelled(store) == by_rule(store) and 0 < len(by_rule(store)) < 250
    finally:
        plain.close()
        with split.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{split_schema}" CASCADE'))
        split.close()


@POSTGRES
def test_a_row_from_a_clock_far_off_waits_in_default_instead_of_a_partition_per_month_since(engine: Engine) -> None:
    db.migrate(engine, now=NOW)  # plain tables first, as a database of today's schema
    with engine.begin() as conn:
        conn.execute(insert(predictions), [log_row(1.0, commit_id="1970"), log_row(NOW, commit_id="now")])
    db.migrate(engine, "monthly", now=NOW)
    assert homes(engine) == {"1970": "predictions_default", "now": "predictions_p20261101"}
    assert len(names(engine)) <= 2 + partitions.BACK_DAYS["monthly"] // 28 + partitions.AHEAD["monthly"]
    assert db.apply_retention(engine, retention_days=180, now=NOW, period="monthly") == 1  # deleted from DEFAULT
