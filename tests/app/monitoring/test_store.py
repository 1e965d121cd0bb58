"""The prediction log's store on SQLite and PostgreSQL: opening migrates, log rows, windows, labelled windows.

Migrations and retention are tested in test_database.py, labels in test_labels.py, reports in test_reports.py;
here only that the store reaches them on its one engine.
"""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import func, inspect, select

from app.contract import FEATURES
from app.monitoring.store import Store
from app.monitoring.tables import SCHEMA_VERSION, schema_version, shadow_predictions
from tests.support import Database


def prediction(i: int, t: float, commit_id: str | None = None, p: float = 0.5) -> dict[str, object]:
    row: dict[str, object] = {name: float(i + k) for k, name in enumerate(FEATURES)}
    return row | {
        "time": t,
        "request_id": f"r{i}",
        "commit_id": commit_id if commit_id is not None else f"c{i}",
        "repository": "repo",
        "probability": p,
        "label": p >= 0.5,
        "risk_band": "high" if p >= 0.6 else "low",
        "model_version": 1,
    }


def test_open_migrates_once_and_is_idempotent(database: Database, store: Store) -> None:
    assert store.version() == SCHEMA_VERSION
    again = Store.open(database.url, schema=database.schema)  # a second worker starting up
    assert again.version() == SCHEMA_VERSION
    with again.engine.connect() as conn:
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
        tables = set(inspect(conn).get_table_names(schema=database.schema))
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"predictions", "shadow_predictions", "feedback", "rejections", "drift_reports", "schema_version"} <= tables
    again.close()


def test_window_returns_newest_rows_first_with_features(store: Store) -> None:
    now = time.time()
    store.insert_predictions([prediction(i, now - 100 + i) for i in range(10)])
    window = store.window(rows=3)
    assert window.rows == 3
    assert window.commit_id == ["c9", "c8", "c7"]
    assert window.features["ns"].tolist() == [9.0, 8.0, 7.0]
    assert window.features["sexp"].tolist() == [23.0, 22.0, 21.0]
    assert store.window(days=95.5 / 86400, now=now).rows == 5  # rows logged at now-95 … now-91
    assert store.window().rows == 10
    assert store.count_predictions() == 10


def test_empty_window_has_typed_empty_columns(store: Store) -> None:
    window = store.window(rows=100)
    assert window.rows == 0
    assert window.features["la"].shape == (0,)


def test_a_label_joins_the_first_prediction_of_its_commit_not_a_later_repost(store: Store) -> None:
    # Issue 13: anyone may post /predict; a repost with other metrics must not change what the label joins.
    store.insert_predictions([prediction(1, 1.0, "same", p=0.1), prediction(2, 2.0, "same", p=0.9)])
    store.upsert_feedback([{"commit_id": "same", "buggy": True}])
    labelled, buggy = store.labelled_window(rows=10)
    assert labelled.probability.tolist() == [0.1] and labelled.features["ns"].tolist() == [1.0]
    assert buggy.tolist() == [True]
    store.insert_predictions([prediction(3, 3.0, "same", p=0.95)])  # a third post, after the label arrived
    assert store.labelled_window(rows=10)[0].probability.tolist() == [0.1]


def test_a_label_naming_a_request_id_joins_exactly_that_prediction(store: Store) -> None:
    store.insert_predictions([prediction(i, float(i), "same", p=0.1 * i) for i in (1, 2, 3)])
    store.insert_predictions([prediction(4, 4.0, "other", p=0.4)])
    store.upsert_feedback([{"commit_id": "same", "buggy": False, "request_id": "r2"}])
    labelled, buggy = store.labelled_window()
    assert labelled.probability.tolist() == [0.2] and buggy.tolist() == [False]
    # The request id of another commit's prediction joins nothing: a label never moves to another commit.
    store.upsert_feedback([{"commit_id": "same", "buggy": True, "request_id": "r4"}])
    assert store.labelled_window()[0].rows == 0


def test_labelled_window_joins_labels_to_the_log(store: Store) -> None:
    store.upsert_feedback([{"commit_id": "c1", "buggy": True}, {"commit_id": "c2", "buggy": False}])
    store.upsert_feedback([{"commit_id": "c2", "buggy": True}])
    store.insert_predictions([prediction(1, 1.0), prediction(2, 2.0), prediction(3, 3.0)])
    labelled, buggy = store.labelled_window()
    assert labelled.commit_id == ["c2", "c1"]  # c3 has no label yet
    assert buggy.tolist() == [True, True]
    assert store.labelled_window(days=1.0, now=3.0 + 86400 - 1.5)[0].commit_id == ["c2"]


def test_retention_and_reports_work_on_the_store_engine(store: Store) -> None:
    now = time.time()
    store.insert_predictions([prediction(1, now - 10 * 86400), prediction(2, now - 86400)])
    shadow_pair = ("r", "c1", 1, 0.5, 2, 0.6)
    store.append_log([], [(now - 10 * 86400, *shadow_pair), (now - 86400, *shadow_pair)], [])
    store.insert_rejections([{"time": now - 10 * 86400, "reason": "x", "count": 1}])
    for i in range(5):
        store.save_drift_report("ok", {"i": i}, html=f"<p>{i}</p>")
    assert store.apply_retention(retention_days=5, keep_reports=2, now=now) == 1
    assert store.count_predictions() == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(shadow_predictions)).scalar() == 1
    assert store.rejection_counts(since=0) == {}
    newest = store.latest_drift_report(with_html=True)
    assert newest is not None and newest.report == {"i": 4} and newest.html == "<p>4</p>"


def test_rejection_counts_sum_by_reason(store: Store) -> None:
    store.insert_rejections(
        [
            {"time": 10.0, "reason": "invalid_input", "count": 2},
            {"time": 20.0, "reason": "invalid_input", "count": 1},
            {"time": 5.0, "reason": "batch_too_large", "count": 1},
        ]
    )
    assert store.rejection_counts(since=6.0) == {"invalid_input": 3}


def test_non_finite_probability_column_round_trips_as_float(store: Store) -> None:
    store.insert_predictions([prediction(1, 1.0, p=0.123456789)])
    assert np.isclose(store.window().probability[0], 0.123456789)
